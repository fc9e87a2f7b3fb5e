"""Benchmark: the cold start of ``serbench predict`` with an SVM bundle, and where its imports go.

The ``IS10-svm-linear`` bundle of :mod:`benchmarks.bench_predict` (trained on its synthesized corpus)
predicts one 3-s file in fresh processes. Each tree predicts with the bundle it writes itself (``serbench
train`` run from that tree: the same fit, stored in that tree's bundle format; a tree refuses a newer
format), and every tree's rows must be identical (``same_rows``). Reported:

``cold``: the command's wall and CPU seconds (the child's user + system time, which other load on a
shared machine inflates less than the wall time), medians of ``reps`` (5; quick: 3), this tree and,
with ``$SERBENCH_BENCH_BASELINE`` set to another serbench source tree (e.g. ``git archive`` of an older
commit), that one, interleaved, and this / baseline.

``imports``: ``python -X importtime`` of the same command per tree, interleaved, medians over ``reps``:
the self seconds summed per top-level package (what each library costs wherever it is imported from),
their total, the modules loaded, and which of :data:`UNNEEDED` (modules a prediction does not use) load.

``cold`` also times, interleaved with those, fresh processes that only import what an SVM prediction
loads (``libraries: ...``): with a skops bundle numpy, scikit-learn's pipeline, scaler and SVMs, skops as
serbench imports it and openSMILE; with an array bundle numpy, pandas, openSMILE, safetensors and
threadpoolctl (the kernel's one BLAS thread): the floor a cold start keeps while serbench uses them.

``breakdown``: :func:`benchmarks.bench_predict._breakdown` (stage by stage, this tree).

The environment's ``PYTHONDONTWRITEBYTECODE`` (serbench's own modules are then compiled in every
process) is recorded; ``python -m benchmarks.bench_predict_svm_imports [--quick]`` runs it alone.
"""
from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.bench_predict import _LAUNCH, _breakdown, _corpus, _files

#: Modules an SVM prediction from an array bundle does not use; which of them load (imported by scikit-learn,
#: skops, openSMILE or serbench) is reported per tree. (threadpoolctl is used: the kernel runs on one BLAS
#: thread, as in training.)
UNNEEDED = ("sklearn", "scipy", "skops", "sklearn.model_selection", "sklearn.ensemble", "sklearn.cluster",
            "sklearn.tree", "scipy.stats", "scipy.optimize", "rich", "matplotlib", "joblib", "torch", "dask",
            "librosa", "serbench.cli.deep", "serbench.cli.experiments", "serbench.cli.reports")

_IMPORT_LINE = re.compile(r"^import time:\s*(\d+) \|\s*(\d+) \| ( *)(\S+)$")

_PROBE = """
import sys, json
code = sys.argv.pop(1)
names = json.loads(sys.argv.pop(1))
try:
    exec(compile(code, "<launch>", "exec"), {"__name__": "__main__"})
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps([len(sys.modules), [n for n in names if n in sys.modules]]))
"""

#: What an SVM prediction must import, as serbench imports it (skops through serbench's skops_io).
_LIBRARIES = {
    "numpy+sklearn+skops+opensmile": "import numpy, sklearn.pipeline, sklearn.preprocessing, sklearn.svm; "
                                     "from serbench.bundles.format import skops_io; skops_io(); import opensmile",
    "numpy+sklearn+opensmile": "import numpy, sklearn.pipeline, sklearn.preprocessing, sklearn.svm; import opensmile",
    "numpy+pandas+opensmile+safetensors+threadpoolctl": "import numpy, pandas, opensmile, safetensors.numpy, "
                                                        "threadpoolctl",
    "numpy+pandas+opensmile": "import numpy, pandas, opensmile",
    "python": "pass",
}


def _trees() -> dict[str, str]:
    trees = {"this": ""}
    if os.environ.get("SERBENCH_BENCH_BASELINE"):
        trees["baseline"] = os.environ["SERBENCH_BENCH_BASELINE"]
    return trees


def _run_child(argv: list[str]) -> tuple[float, float, str]:
    """``(wall s, CPU s, stderr)`` of a child process that must succeed."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert res.returncode == 0, res.stderr[-2000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, res.stderr


def _predict_argv(root: str, bundle: Path, file: Path, importtime: bool = False) -> list[str]:
    import sys

    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", _LAUNCH, root, "predict",
            "--model", str(bundle), str(file)]


def _train_argv(root: str, corpus: Path, bundle: Path, tmp: Path) -> list[str]:
    """``serbench train`` of the benchmark's bundle, run from the tree at ``root``."""
    import sys

    return [sys.executable, "-c", _LAUNCH, root, "train", "--corpus", "demo", "--root", str(corpus), "--system",
            "svm-linear", "--feature", "IS10", "--out", str(bundle), "--cache", str(tmp / "cache"), "--runs",
            str(tmp / "runs"), "--device", "cpu"]


def _same_rows(bundles: dict[str, Path], file: Path, tmp: Path) -> bool:
    """Does every tree write the same prediction table (decision scores, CSV) with its own bundle?"""
    tables = set()
    for tree, root in _trees().items():
        out = tmp / f"same-rows-{tree}.csv"
        _run_child([*_predict_argv(root, bundles[tree], file), "--scores", "decision", "--out", str(out)])
        tables.add(out.read_bytes())
    return len(tables) == 1


def _cold(bundles: dict[str, Path], file: Path, reps: int) -> dict:
    """Wall and CPU medians of the command per tree and of each :data:`_LIBRARIES` import, all interleaved."""
    import sys

    cases = {tree: _predict_argv(root, bundles[tree], file) for tree, root in _trees().items()}
    cases.update({f"libraries: {k}": [sys.executable, "-c", code] for k, code in _LIBRARIES.items()})
    runs = {case: {"wall_s": [], "cpu_s": []} for case in cases}
    for _ in range(reps):
        for case, argv in cases.items():
            wall, cpu, _err = _run_child(argv)
            runs[case]["wall_s"].append(wall)
            runs[case]["cpu_s"].append(cpu)
    out: dict = {case: {k: statistics.median(v) for k, v in r.items()} | {"runs": r} for case, r in runs.items()}
    if "baseline" in out:
        out["this_over_baseline"] = {k: out["this"][k] / out["baseline"][k] for k in ("wall_s", "cpu_s")}
    return out


def _by_package(stderr: str) -> tuple[Counter, int]:
    """Self seconds of every import summed per top-level package, and the number of imports timed."""
    per: Counter = Counter()
    n = 0
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            per[m.group(4).split(".")[0]] += int(m.group(1)) / 1e6
            n += 1
    return per, n


def _imports(bundles: dict[str, Path], file: Path, reps: int) -> dict:
    per_tree: dict = {tree: [] for tree in _trees()}
    for _ in range(reps):
        for tree, root in _trees().items():
            _wall, _cpu, err = _run_child(_predict_argv(root, bundles[tree], file, importtime=True))
            per_tree[tree].append(_by_package(err)[0])
    out: dict = {}
    for tree, rows in per_tree.items():
        names = set().union(*rows)
        med = {n: statistics.median(r.get(n, 0.0) for r in rows) for n in names}
        out[tree] = {"total_self_s": statistics.median(sum(r.values()) for r in rows),
                     "by_package_s": dict(sorted(((n, v) for n, v in med.items() if v >= 0.005),
                                                 key=lambda kv: -kv[1]))}
    return out


def _probe(bundles: dict[str, Path], file: Path) -> dict:
    """Per tree: modules loaded once the command is done, and which of :data:`UNNEEDED` they include."""
    import json
    import subprocess
    import sys

    out = {}
    for tree, root in _trees().items():
        res = subprocess.run([sys.executable, "-c", _PROBE, _LAUNCH, json.dumps(UNNEEDED), root, "predict", "--model",
                              str(bundles[tree]), str(file)], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        n, present = json.loads(res.stdout.strip().splitlines()[-1])
        out[tree] = {"modules": n, "unneeded_loaded": present}
    return out


def run(out: Path, quick: bool = False) -> dict:
    """Train the SVM bundle on a synthesized corpus, then time its cold start; ``out`` is not written to."""
    from serbench.bundles import train

    reps = 3 if quick else 5
    result: dict = {"name": "predict-svm-imports", "cpu_count": os.cpu_count(), "trees": _trees(),
                    "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")), "reps": reps}
    with tempfile.TemporaryDirectory(prefix="serbench-bench-svm-imports-") as tmp:
        tmp = Path(tmp)
        corpus = _corpus(tmp / "corpus")
        file = _files(tmp / "files", 1)[0]
        bundles = {}
        for tree, root in _trees().items():
            bundles[tree] = tmp / f"IS10-svm-linear-{tree}"
            if tree == "this":
                train("svm-linear", "demo", corpus, bundles[tree], overrides={"feature": "IS10"}, cache=tmp / "cache",
                      runs=tmp / "runs", device="cpu")
            else:
                _run_child(_train_argv(root, corpus, bundles[tree], tmp))
        result["bundle_files"] = {tree: sorted(p.name for p in b.iterdir()) for tree, b in bundles.items()}
        result["same_rows"] = _same_rows(bundles, file, tmp)   # also warms the disk cache for every tree
        result["cold"] = _cold(bundles, file, reps)
        result["imports"] = _imports(bundles, file, reps)
        result["loaded"] = _probe(bundles, file)
        result["breakdown"] = _breakdown(bundles["this"], file, reps=reps)
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv), indent=2))
