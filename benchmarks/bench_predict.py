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
(e.g. ``git archive`` of an older commit), its ``serbench predict`` is timed alongside, interleaved, with a
bundle that tree trains itself with the same settings (a tree refuses a newer bundle format).

For the cnn-sru bundle also ``imports`` (``python -X importtime`` of that ``serbench predict``: the
top-level imports' cumulative seconds and a few named modules wherever they load, medians of 3 per
tree) and ``logmel3`` (seconds of :func:`serbench.features.melseg.logmel3` per second of audio on
3-s and 60-s signals, warm; the baseline tree's ``melseg.py`` loaded beside this one, calls
alternating). ``python -m benchmarks.bench_predict --deep-startup`` trains only the cnn-sru bundle
and measures just its start-up: ``cli``, ``breakdown``, ``imports`` and ``logmel3``.
"""
from __future__ import annotations

import os
import re
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
from serbench.bundles import inference; from serbench.bundles.units import model_input; mark("import_inference")
from serbench.bundles.model import load_model
model = load_model(checked); mark("load_model")
model.extractor(); mark("make_extractor")
from serbench.audio import load_audio
x = load_audio(sys.argv[2]).signal
model_input(model, x); mark("first_features")
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


def _tree_bundles(bundle: Path, corpus: Path, tmp: Path, system: str, profile: str | None,
                  overrides: dict) -> dict[str, Path]:
    """Tree -> the bundle it predicts with: ``bundle`` (trained by this tree) for this tree; the baseline tree
    trains its own with the same settings (``serbench train`` run from it), since a tree refuses a bundle
    format newer than its own."""
    import sys

    out = {"this": bundle}
    for tree, root in _trees().items():
        if tree == "this":
            continue
        own = tmp / f"{bundle.name}-{tree}"
        if not own.exists():
            argv = [sys.executable, "-c", _LAUNCH, root, "train", "--corpus", "demo", "--root", str(corpus),
                    "--system", system, "--out", str(own), "--cache", str(tmp / f"cache-{tree}"),
                    "--runs", str(tmp / f"runs-{tree}"), "--device", "cpu"]
            argv += ["--profile", profile] if profile else []
            for key, value in overrides.items():
                argv += ["--feature", str(value)] if key == "feature" else ["--set", f"{key}={value}"]
            _timed(argv)
        out[tree] = own
    return out


def _cli_cold(bundles: dict[str, Path], file: Path, tmp: Path, reps: int = 5) -> dict:
    """``serbench predict`` in fresh processes (this tree and, with $SERBENCH_BENCH_BASELINE, another, each with
    its own bundle: :func:`_tree_bundles`), interleaved: medians of ``reps`` for one file, an argument error and
    a bundle error."""
    import shutil
    import sys

    changed = {}
    for tree, bundle in bundles.items():
        changed[tree] = tmp / f"{bundle.name}-changed"
        if not changed[tree].exists():
            shutil.copytree(bundle, changed[tree])
            weights = next(p for p in changed[tree].iterdir() if p.suffix in (".skops", ".safetensors"))
            data = bytearray(weights.read_bytes())
            data[len(data) // 2] ^= 0xFF
            weights.write_bytes(bytes(data))
    trees = _trees()
    cases = {"cold_s": ([str(file)], (0,)), "arg_error_s": ([str(tmp / "absent.wav")], (2,)),
             "bundle_error_s": ([str(file)], (2,))}
    runs: dict = {t: {c: [] for c in cases} for t in trees}
    for _ in range(reps):
        for case, (inputs, ok) in cases.items():
            for tree, root in trees.items():
                model = changed[tree] if case == "bundle_error_s" else bundles[tree]
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
from serbench.bundles.extraction import FeatureSpec, extract_chunk
from serbench.bundles.sources import Source
files = sorted(glob.glob(sys.argv[2] + "/*.wav"))
spec = FeatureSpec(sys.argv[1], {"model": {}, "training": {"audio": {}}})
spec.extractor()
t = time.perf_counter()
for k in range(0, len(files), 8):
    extract_chunk(spec, None, None, [(i, Source(f, path=Path(f))) for i, f in enumerate(files[k:k + 8])])
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


_IMPORT_LINE = re.compile(r"^import time:\s*(\d+) \|\s*(\d+) \| ( *)(\S+)$")

#: Modules whose cumulative import time (with their submodules') is reported wherever they load (0 when never).
_NAMED_IMPORTS = ("torch", "pandas", "numpy", "scipy.signal", "librosa", "numba", "serbench.bundles.inference")


def _trees() -> dict[str, str]:
    trees = {"this": ""}
    if os.environ.get("SERBENCH_BENCH_BASELINE"):
        trees["baseline"] = os.environ["SERBENCH_BENCH_BASELINE"]
    return trees


def _import_times(bundles: dict[str, Path], file: Path, reps: int = 3) -> dict:
    """``python -X importtime`` of ``serbench predict`` per tree (interleaved): medians over ``reps`` of the
    cumulative seconds of each top-level import of 20 ms or more, of :data:`_NAMED_IMPORTS`, and of all
    top-level imports together."""
    import subprocess
    import sys

    runs: dict = {tree: [] for tree in _trees()}
    for _ in range(reps):
        for tree, root in _trees().items():
            res = subprocess.run([sys.executable, "-X", "importtime", "-c", _LAUNCH, root, "predict", "--model",
                                  str(bundles[tree]), str(file)], capture_output=True, text=True, timeout=600)
            assert res.returncode == 0, res.stderr[-2000:]
            runs[tree].append(_parse_importtime(res.stderr))
    out = {}
    for tree, rows in runs.items():
        names = {n for top, _ in rows for n in top}
        top = {n: statistics.median(t.get(n, 0.0) for t, _ in rows) for n in names}
        out[tree] = {"total_import_s": statistics.median(sum(t.values()) for t, _ in rows),
                     "named_s": {n: statistics.median(nm.get(n, 0.0) for _, nm in rows) for n in _NAMED_IMPORTS},
                     "top_level_s": dict(sorted(((n, v) for n, v in top.items() if v >= 0.02),
                                                key=lambda kv: -kv[1]))}
    return out


def _parse_importtime(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """``(top-level imports, named)`` in seconds from ``-X importtime`` output. A named module counts with
    its submodules (librosa loads lazily: the package itself is cheap, ``librosa.core.*`` is not), each
    subtree once: an import inside another counted one is already in that one's cumulative time."""
    entries = []
    for line in text.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            entries.append((len(m.group(3)) // 2, m.group(4), int(m.group(2)) / 1e6))
    top: dict[str, float] = {}
    named = dict.fromkeys(_NAMED_IMPORTS, 0.0)
    stack: list[tuple[int, frozenset]] = []     # (depth, named modules counted at or above it)
    for depth, name, cumulative in reversed(entries):     # reversed: each parent before its imports
        while stack and stack[-1][0] >= depth:
            stack.pop()
        counted = stack[-1][1] if stack else frozenset()
        if depth == 0:
            top[name] = cumulative
        hits = {n for n in _NAMED_IMPORTS if name == n or name.startswith(n + ".")}
        for n in hits - counted:
            named[n] += cumulative
        stack.append((depth, counted | hits))
    return top, named


_LOGMEL = """
import sys, time, json, statistics, importlib.util
baseline, reps = sys.argv[1], int(sys.argv[2])
import numpy as np
from serbench.features.melseg import logmel3
fns = {"this": logmel3}
if baseline:  # the other tree's melseg.py as a module of its own; its imports resolve to this tree
    spec = importlib.util.spec_from_file_location("baseline_melseg", baseline + "/serbench/features/melseg.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fns["baseline"] = mod.logmel3
rng = np.random.default_rng(0)
out = {tree: {} for tree in fns}
for seconds in (3.0, 60.0):
    x = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    for f in fns.values():
        f(x, 16000)      # the first call pays the lazy imports: not a per-second cost
    times = {tree: [] for tree in fns}
    for _ in range(reps):
        for tree, f in fns.items():
            t = time.perf_counter(); f(x, 16000); times[tree].append(time.perf_counter() - t)
    for tree in fns:
        out[tree][f"{seconds:g}s"] = statistics.median(times[tree]) / seconds
print(json.dumps(out))
"""


def _logmel3_speed(reps: int = 15) -> dict:
    """Seconds of ``logmel3`` per second of audio (3-s and 60-s noise, warm): this tree's and, with
    ``$SERBENCH_BENCH_BASELINE``, that tree's ``melseg.py`` in one fresh process, calls alternating;
    medians of ``reps`` calls, and this / baseline."""
    import json
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _LOGMEL, _trees().get("baseline", ""), str(reps)],
                         capture_output=True, text=True, timeout=600, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if "baseline" in out:
        out["this_over_baseline"] = {k: out["this"][k] / out["baseline"][k] for k in out["this"]}
    return {"unit": "seconds per second of audio", **out}


def deep_startup(quick: bool = False) -> dict:
    """Train only the cnn-sru bundle of :func:`run` and measure its ``serbench predict`` start-up."""
    import torch

    from serbench.bundles import train

    result: dict = {"name": "predict-deep-startup", "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "trees": _trees()}
    with tempfile.TemporaryDirectory(prefix="serbench-bench-deep-startup-") as tmp:
        tmp = Path(tmp)
        corpus = _corpus(tmp / "corpus")
        file = _files(tmp / "files", 1)[0]
        bundle = tmp / "cnn-sru"
        overrides = {"segments": 3, "cnn_epochs": 1, "sru_epochs": 1}
        train("cnn-sru", "demo", corpus, bundle, profile="fast", overrides=overrides, cache=tmp / "cache",
              runs=tmp / "runs", device="cpu")
        bundles = _tree_bundles(bundle, corpus, tmp, "cnn-sru", "fast", overrides)
        cli = _cli_cold(bundles, file, tmp, reps=5)
        if "baseline" in cli:
            cli["this_over_baseline"] = cli["cold_s"] / cli["baseline"]["cold_s"]
        result.update(cli=cli, breakdown=_breakdown(bundle, file, reps=3 if quick else 5),
                      imports=_import_times(bundles, file, reps=1 if quick else 3),
                      logmel3=_logmel3_speed(reps=5 if quick else 15))
    return result


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
            bundles = _tree_bundles(tmp / label.split()[0], corpus, tmp, system, profile, overrides)
            result["bundles"][label] = {"train_s": train_s, "load_s": load_s, "cold_start_s": cold,
                                        "cli": _cli_cold(bundles, files[0], tmp),
                                        "breakdown": _breakdown(tmp / label.split()[0], files[0]),
                                        **_measure(model, files, long_file, long_s, reps)}
            if system == "cnn-sru":
                result["bundles"][label]["imports"] = _import_times(bundles, files[0], reps=1 if quick else 3)
                result["bundles"][label]["logmel3"] = _logmel3_speed(reps=5 if quick else 15)
        short = _short_files(tmp / "short", 60 if quick else 500)
        result["throughput"] = {"bundle": "IS10-svm-linear", "file_s": 1.0,
                                **_throughput(tmp / "IS10-svm-linear", short, tmp),
                                **_extraction_rates("IS10", short)}
    return result


if __name__ == "__main__":
    import json
    import sys

    quick = "--quick" in sys.argv
    print(json.dumps(deep_startup(quick) if "--deep-startup" in sys.argv else run(Path("bench-results"), quick=quick),
                     indent=2))
