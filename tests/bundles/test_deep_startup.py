"""Predicting with a bundle loads neither librosa nor numba: their import chain cost every call of
``serbench predict`` more than a second. Nor scipy.signal (about 0.8 s): melseg's deltas are computed
with scipy.ndimage and scipy.linalg. Checked in a fresh interpreter, where nothing else loaded them."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest
import soundfile as sf

SR = 16000


@pytest.mark.parametrize("key", ["cnn-sru", "svm-linear"])   # melseg's path, and MFCC's
def test_predict_imports_neither_librosa_nor_numba(trained, harmonic, tmp_path, key):
    wav = tmp_path / "one.wav"
    sf.write(wav, harmonic(1.3, "angry", seed=4), SR)
    out = tmp_path / "p.csv"
    code = textwrap.dedent(f"""
        import json, sys
        from serbench.cli import cli
        try:
            cli.main(["predict", "--model", {str(trained(key).path)!r}, {str(wav)!r}, "--out", {str(out)!r}],
                     prog_name="serbench")
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        print(json.dumps([code, sorted(m for m in ("librosa", "numba", "torch", "sklearn", "scipy.signal")
                                       if m in sys.modules)]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    rc, loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert rc == 0, res.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["file"], r["status"]) for r in rows] == [(str(wav), "ok")]
    # the model's own library was loaded, so the prediction really ran in that interpreter (an SVM bundle's
    # arrays need numpy only: tests/bundles/test_svm_startup.py)
    assert ("torch" in loaded) if key == "cnn-sru" else ("sklearn" not in loaded)
    assert "librosa" not in loaded and "numba" not in loaded, loaded
    assert "scipy.signal" not in loaded, loaded
