"""Predicting with an SVM bundle imports neither scikit-learn, SciPy nor skops (nor torch, librosa): the
bundle's arrays are scored with numpy, and scikit-learn with SciPy and skops cost more than a second of
every ``serbench predict``. Checked in a fresh interpreter, where nothing else loaded them; the rows it
writes are those of the fitted pipeline, bit for bit."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

SR = 16000
NEVER = ("sklearn", "skops", "torch", "librosa", "numba", "dask")


def predict_in_fresh_interpreter(bundle, wav, out) -> tuple[list[str], str]:
    """``serbench predict --scores decision`` in a new interpreter: (modules of interest loaded, stderr)."""
    code = textwrap.dedent(f"""
        import json, sys
        from serbench.cli import cli
        try:
            cli.main(["predict", "--model", {str(bundle)!r}, {str(wav)!r}, "--scores", "decision",
                      "--out", {str(out)!r}], prog_name="serbench")
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        print(json.dumps([code, sorted(m for m in {NEVER + ("scipy", "numpy", "threadpoolctl")!r}
                                       if m in sys.modules)]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    rc, loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert rc == 0, res.stderr
    return loaded, res.stderr


@pytest.fixture(scope="module")
def is10_model(tmp_path_factory, corpus):
    """An IS10 (openSMILE) svm-linear bundle: the feature set of the cold-start benchmark, which needs no SciPy."""
    from serbench.bundles import train

    base = tmp_path_factory.mktemp("is10")
    return train("svm-linear", "demo", corpus, base / "IS10-svm-linear", overrides={"feature": "IS10"},
                 cache=base / "cache", runs=base / "runs", device="cpu", threads=1)


@pytest.mark.parametrize("key", ["svm-linear", "IS10"])
def test_svm_prediction_imports_no_scikit_learn_scipy_or_skops(trained, is10_model, harmonic, tmp_path, key):
    model = is10_model if key == "IS10" else trained(key)
    wav = tmp_path / "one.wav"
    sf.write(wav, harmonic(1.3, "angry", seed=4), SR)
    out = tmp_path / "p.csv"
    loaded, err = predict_in_fresh_interpreter(model.path, wav, out)
    assert not set(NEVER) & set(loaded), loaded
    # MFCC's DCT is SciPy's (serbench.features.mfcc); IS10's openSMILE needs none
    assert ("scipy" in loaded) == (key != "IS10"), loaded
    assert "numpy" in loaded and "threadpoolctl" in loaded   # the kernel on one BLAS thread: it did score
    got = pd.read_csv(out)
    want = model.predict([str(wav)], scores="decision")       # the fitted pipeline, in this process
    assert got["file"].tolist() == [str(wav)] and got["status"].tolist() == ["ok"]
    cols = [c for c in want.columns if c.startswith("score_")]
    assert cols and got["emotion"].tolist() == want["emotion"].tolist()
    np.testing.assert_array_equal(got[cols].to_numpy(), want[cols].to_numpy())   # CSV floats round-trip
