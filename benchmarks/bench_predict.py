"""Benchmark: ``predict`` with a model bundle on CPU: files per second and the real-time factor of a long file.

Two bundles, as a user would train them: ``svm-linear`` on IS10 (openSMILE functionals) and
``cnn-sru`` with the ``fast`` profile (96x96 segments, quarter-width AlexNet, SRU 512), N = 3.
Prediction cost depends on the architecture, not on what the weights learned, so both are
trained on a small synthesized corpus (cnn-sru with one epoch per stage): the measured part
is only :meth:`Model.predict` on synthesized 3-s files (decoding, features, model), the way
``serbench predict`` runs it, and the same on one long file cut into 3-s windows every 1.5 s.

Reported per bundle: median seconds over the repetitions for the batch of files and
files/s; the share of that spent computing features (the extractor alone on the same
decoded signals, timed side by side); ``load_s`` (``load_model`` in this process, libraries
already imported); ``cold_start_s`` (a fresh interpreter: import, load, predict one file, as
one ``serbench predict`` call pays it); and ``rtf`` = predict seconds / audio seconds on the long file (below 1:
faster than real time). Quick mode: 12 files, a 60-s file, one repetition.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

SR = 16000
FILE_S = 3.0
WINDOW_S, HOP_S = 3.0, 1.5


def _tone(seconds: float, emotion: str, k: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = (260.0 if emotion == "angry" else 110.0) * (1 + 0.03 * (k % 7))
    vibrato = 1 + 0.02 * np.sin(2 * np.pi * 5 * t)          # a moving pitch: frames are not all alike
    x = sum(np.sin(2 * np.pi * f0 * h * np.cumsum(vibrato) / SR) / h for h in range(1, 9 if emotion == "angry" else 3))
    x = (0.5 if emotion == "angry" else 0.1) * x / np.max(np.abs(x)) + 0.005 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _corpus(root: Path) -> Path:
    import soundfile as sf

    for s, spk in enumerate(("spk1", "spk2", "spk3")):
        for e in ("angry", "sad"):
            (root / spk / e).mkdir(parents=True)
            for k in range(3):
                sf.write(root / spk / e / f"t{k}.wav", _tone(1.0 + 0.5 * k, e, k + s, 10 * s + k), SR)
    return root


def _files(folder: Path, n: int) -> list[Path]:
    import soundfile as sf

    folder.mkdir()
    out = []
    for i in range(n):
        path = folder / f"f{i:04d}.wav"
        sf.write(path, _tone(FILE_S, ("angry", "sad")[i % 2], i, 1000 + i), SR)
        out.append(path)
    return out


def _long(folder: Path, seconds: float) -> Path:
    import numpy as np
    import soundfile as sf

    parts = [_tone(20.0, ("angry", "sad")[i % 2], i, 5000 + i) for i in range(int(np.ceil(seconds / 20)))]
    path = folder / "long.wav"
    sf.write(path, np.concatenate(parts)[: int(seconds * SR)], SR)
    return path


def _measure(model, files: list[Path], long_file: Path, long_s: float, reps: int) -> dict:
    from serbench.audio import load_audio

    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        df = model.predict(files)
        times.append(time.perf_counter() - t0)
    assert (df["status"] == "ok").all(), df[df["status"] != "ok"]["error"].tolist()
    signals = [load_audio(f).signal for f in files]
    extract = model.extractor()
    feat = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for x in signals:
            extract(x, SR)
        feat.append(time.perf_counter() - t0)
    long_times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        wdf = model.predict([long_file], window=WINDOW_S, hop=HOP_S)
        long_times.append(time.perf_counter() - t0)
    med, fmed, lmed = statistics.median(times), statistics.median(feat), statistics.median(long_times)
    return {"n_files": len(files), "predict_s": med, "files_per_s": len(files) / med,
            "features_s": fmed, "features_share": fmed / med, "long_file_s": long_s,
            "long_windows": int((wdf["segment"] == "window").sum()), "long_predict_s": lmed, "rtf": lmed / long_s,
            "runs": {"predict_s": times, "features_s": feat, "long_predict_s": long_times}}


def _cold_start(bundle: Path, file: Path) -> float:
    """Seconds for a fresh interpreter to import serbench, load the bundle and predict one file."""
    import subprocess
    import sys

    code = "import sys, serbench; serbench.load_model(sys.argv[1]).predict([sys.argv[2]])"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(bundle), str(file)], check=True, timeout=600)
    return time.perf_counter() - t0


def run(out: Path, quick: bool = False) -> dict:
    """Train the two bundles on a synthesized corpus, then time ``predict``; ``out`` is not written to."""
    import torch

    from serbench.bundles import load_model, train

    n_files, long_s, reps = (12, 60.0, 1) if quick else (200, 600.0, 3)
    result: dict = {"name": "predict", "quick": quick, "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "file_s": FILE_S, "window_s": WINDOW_S, "hop_s": HOP_S,
                    "bundles": {}}
    specs = {
        "IS10-svm-linear": ("svm-linear", None, {"feature": "IS10"}),
        "cnn-sru-N3 (fast)": ("cnn-sru", "fast", {"segments": 3, "cnn_epochs": 1, "sru_epochs": 1}),
    }
    with tempfile.TemporaryDirectory(prefix="serbench-bench-predict-") as tmp:
        tmp = Path(tmp)
        corpus = _corpus(tmp / "corpus")
        files = _files(tmp / "files", n_files)
        long_file = _long(tmp, long_s)
        for label, (system, profile, overrides) in specs.items():
            t0 = time.perf_counter()
            train(system, "demo", corpus, tmp / label.split()[0], profile=profile, overrides=overrides,
                  cache=tmp / "cache", runs=tmp / "runs", device="cpu")
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            model = load_model(tmp / label.split()[0])
            load_s = time.perf_counter() - t0
            cold = _cold_start(tmp / label.split()[0], files[0])
            model.predict(files[:1])                     # warm-up: extractor and kernels built once
            result["bundles"][label] = {"train_s": train_s, "load_s": load_s, "cold_start_s": cold,
                                        **_measure(model, files, long_file, long_s, reps)}
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv), indent=2))
