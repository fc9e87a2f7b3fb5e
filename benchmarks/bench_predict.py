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

Per bundle it also measures ``cli``: the ``serbench predict`` command in a fresh process on one file,
median of 5 (``cold_s``), the same refused at once (``arg_error_s``: a missing input; ``bundle_error_s``:
a changed weights file), and ``breakdown``: the medians of 5 fresh processes timing each stage in
turn (interpreter and CLI import, the bundle's light checks, numpy/pandas, loading the model with its
libraries, building the extractor, the first file's features, scoring and the table); and
``throughput``: ``serbench predict`` on 500 short files (quick: 60) with ``--jobs 1`` and ``--jobs 2``,
side by side, rows identical, beside the rate of decoding and extracting alone in one process and in
two at once (``cores_available``: what the machine lets two processes gain). With ``$SERBENCH_BENCH_BASELINE`` set to another serbench source tree
(e.g. ``git archive`` of an older commit), its ``serbench predict`` is timed alongside, interleaved.
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


_LAUNCH = """
import sys
root = sys.argv.pop(1)
if root:  # another source tree: bypass the editable install's finder
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, root)
from serbench.cli import main
sys.argv[0] = "serbench"
main()
"""

_STAGES = """
import sys, time, json
t0 = time.perf_counter(); marks = {}
def mark(name):
    marks[name] = time.perf_counter()
import serbench.cli; mark("import_cli")
from serbench.bundles.model import check_bundle
checked = check_bundle(sys.argv[1]); mark("check_bundle")
from serbench.bundles import inference; mark("import_inference")
from serbench.bundles.model import load_model
model = load_model(checked); mark("load_model")
model.extractor(); mark("make_extractor")
from serbench.audio import load_audio
x = load_audio(sys.argv[2]).signal
inference._features(model, x); mark("first_features")
df = model.predict([sys.argv[2]]); df.to_string(); mark("predict_and_table")
names = list(marks); out = {}; prev = t0
for n in names:
    out[n] = marks[n] - prev; prev = marks[n]
out["heavy"] = sorted(m for m in ("sklearn", "skops", "torch", "pandas", "opensmile", "librosa", "dask") if m in sys.modules)
print(json.dumps(out))
"""


def _timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    import subprocess

    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, timeout=600)
    took = time.perf_counter() - t0
    assert res.returncode in ok, res.stderr.decode()[-2000:]
    return took


def _cli_cold(bundle: Path, file: Path, tmp: Path, reps: int = 5) -> dict:
    """``serbench predict`` in fresh processes (this tree and, with $SERBENCH_BENCH_BASELINE, another),
    interleaved: medians of ``reps`` for one file, an argument error and a bundle error."""
    import shutil
    import sys

    changed = tmp / f"{bundle.name}-changed"
    if not changed.exists():
        shutil.copytree(bundle, changed)
        weights = next(p for p in changed.iterdir() if p.suffix in (".skops", ".safetensors"))
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    trees = {"this": ""}
    if os.environ.get("SERBENCH_BENCH_BASELINE"):
        trees["baseline"] = os.environ["SERBENCH_BENCH_BASELINE"]
    cases = {"cold_s": ([str(file)], (0,)), "arg_error_s": ([str(tmp / "absent.wav")], (2,)),
             "bundle_error_s": ([str(file)], (2,))}
    runs: dict = {t: {c: [] for c in cases} for t in trees}
    for _ in range(reps):
        for case, (inputs, ok) in cases.items():
            for tree, root in trees.items():
                model = changed if case == "bundle_error_s" else bundle
                runs[tree][case].append(_timed([sys.executable, "-c", _LAUNCH, root, "predict", "--model", str(model),
                                                *inputs], ok))
    out = {tree: {case: statistics.median(v) for case, v in r.items()} for tree, r in runs.items()}
    python_s = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(reps))
    return {**out["this"], "python_startup_s": python_s, "runs": runs["this"],
            **({"baseline": {**out["baseline"], "runs": runs["baseline"]}} if "baseline" in out else {})}


def _breakdown(bundle: Path, file: Path, reps: int = 5) -> dict:
    """Medians over ``reps`` fresh processes of each stage of a one-file prediction (seconds)."""
    import json
    import subprocess
    import sys

    rows = []
    for _ in range(reps):
        res = subprocess.run([sys.executable, "-c", _STAGES, str(bundle), str(file)], capture_output=True, text=True,
                             timeout=600, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    out = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "heavy"}
    out["total_s"] = sum(out.values())
    out["modules_loaded"] = rows[0]["heavy"]
    return out


def _throughput(bundle: Path, folder: Path, tmp: Path, jobs: tuple[int, ...] = (1, 2)) -> dict:
    """``serbench predict FOLDER --out CSV`` with each ``--jobs``, side by side; the rows must be identical."""
    import sys

    out: dict = {"n_files": len(list(folder.glob("*.wav")))}
    tables = {}
    for j in jobs:
        csv = tmp / f"throughput-jobs{j}.csv"
        took = _timed([sys.executable, "-c", _LAUNCH, "", "predict", "--model", str(bundle), str(folder), "--jobs",
                       str(j), "--out", str(csv), "--overwrite", "--no-progress"])
        tables[j] = csv.read_bytes()
        out[f"jobs{j}_s"] = took
        out[f"jobs{j}_files_per_s"] = out["n_files"] / took
    out["same_rows"] = len(set(tables.values())) == 1
    assert out["same_rows"], "predictions differ between --jobs values"
    out["speedup_2_vs_1"] = out["jobs1_s"] / out["jobs2_s"]
    return out


_EXTRACT_ONLY = """
import sys, time, glob
from pathlib import Path
from serbench.bundles.inference import FeatureSpec, Source, _extract_chunk
files = sorted(glob.glob(sys.argv[2] + "/*.wav"))
spec = FeatureSpec(sys.argv[1], {"model": {}, "training": {"audio": {}}})
spec.extractor()
t = time.perf_counter()
for k in range(0, len(files), 8):
    _extract_chunk(spec, None, None, [(i, Source(f, path=Path(f))) for i, f in enumerate(files[k:k + 8])])
print(len(files) / (time.perf_counter() - t))
"""


def _extraction_rates(feature_set: str, folder: Path) -> dict:
    """Files/s of decoding + extracting alone (the extractor built beforehand), in one process and in two
    processes at once: ``cores_available`` = their summed rate / the single rate (2.0 on an idle 2-core
    machine; near 1 when other work holds a core), which bounds what --jobs 2 can gain here."""
    import subprocess
    import sys

    argv = [sys.executable, "-c", _EXTRACT_ONLY, feature_set, str(folder)]
    one = float(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout.strip())
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    both = [float(p.communicate(timeout=600)[0].strip()) for p in procs]
    return {"extract_only_files_per_s": one, "extract_only_two_processes_files_per_s": sum(both),
            "cores_available": sum(both) / one}


def _short_files(folder: Path, n: int, seconds: float = 1.0) -> Path:
    import soundfile as sf

    folder.mkdir()
    for i in range(n):
        sf.write(folder / f"s{i:04d}.wav", _tone(seconds, ("angry", "sad")[i % 2], i, 9000 + i), SR)
    return folder


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
                                        "cli": _cli_cold(tmp / label.split()[0], files[0], tmp),
                                        "breakdown": _breakdown(tmp / label.split()[0], files[0]),
                                        **_measure(model, files, long_file, long_s, reps)}
        short = _short_files(tmp / "short", 60 if quick else 500)
        result["throughput"] = {"bundle": "IS10-svm-linear", "file_s": 1.0,
                                **_throughput(tmp / "IS10-svm-linear", short, tmp),
                                **_extraction_rates("IS10", short)}
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv), indent=2))
