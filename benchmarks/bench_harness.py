"""The harness on its executors: CASIA's SVM grid sequential vs local processes vs a Dask LocalCluster.

The grid is the paper's Table V grid (PLP, MFCC, HuWSF, IS09, IS10 x no / per-speaker
normalization, svm-linear, LOSO with the inner speaker-grouped CV): 10 runs, 40 fold tasks.
Features are extracted into the cache first (not timed); each timed call is one
``run_experiment(..., force=True)`` into a fresh store, executor start-up included, on:

* ``sequential``: in this process, default threads (what ``serbench grid`` does without options);
* ``sequential_1_thread``: in this process, ``--threads 1``;
* ``workers_2``: ``--workers 2`` (two local processes, one thread each);
* ``dask_local_2``: ``--scheduler local:2`` (a LocalCluster of two single-threaded workers).

Repeats are interleaved (each repeat runs every mode once), medians reported, and every
mode's predicted labels are checked equal to the sequential ones. Not in quick mode: CASIA
``cnn-sru`` (``fast`` profile, N = 3) on 1 worker process vs 2 (one thread each).

Environment: ``SERBENCH_BENCH_CASIA`` (default ``../shared/corpora/casia``), ``SERBENCH_CACHE``.
By hand: ``python -m benchmarks.bench_harness [--quick]``.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES = ("PLP", "MFCC", "HuWSF", "IS09", "IS10")
QUICK_FEATURES = ("MFCC", "IS09")
MODES = {
    "sequential": {},
    "sequential_1_thread": {"threads": 1},
    "workers_2": {"workers": 2},
    "dask_local_2": {"scheduler": "local:2"},
}


def _grid(root: Path, cache, names, mode: dict) -> tuple[float, dict]:
    from serbench.experiments.store import RunStore
    from serbench.systems.experiment import parse_experiment, run_experiment

    exp = parse_experiment({"experiment": {"name": "bench"}, "run": [
        {"system": "svm-linear", "matrix": {"feature": list(names), "speaker_norm": [False, True]}}]})
    with tempfile.TemporaryDirectory(prefix="serbench-bench-grid-") as runs:
        t0 = time.perf_counter()
        out = run_experiment(exp, "casia", root, cache=cache, runs=runs, force=True, log=lambda _m: None, **mode)
        wall = time.perf_counter() - t0
        bad = [o for o in out if o.action != "ran"]
        if bad:
            raise RuntimeError(f"grid failed: {bad}")
        store = RunStore(runs)
        labels = {}
        for path in store.run_dirs("casia"):
            from serbench.experiments.store import load_run

            run = load_run(path)
            labels[run.system] = run.predictions.sort_values("utterance_id")["predicted"].tolist()
    return wall, labels


def _deep(root: Path, cache, workers: int, quick: bool) -> dict:
    from serbench.systems.run import run_deep

    overrides = {"cnn_epochs": 1, "sru_epochs": 1} if quick else {}
    with tempfile.TemporaryDirectory(prefix="serbench-bench-deep-") as runs:
        t0 = time.perf_counter()
        res = run_deep("casia", root, model="cnn-sru", segments=3, profile="fast", device="cpu", cache=cache,
                       runs=runs, workers=workers, threads=1, overrides=overrides, resume=False)
        return {"wall_s": time.perf_counter() - t0, "ua": res.ua, "fold_wall_s_mean": res.timings["fold_wall_s_mean"]}


def run(out: Path, quick: bool = False) -> dict:
    root = Path(os.environ.get("SERBENCH_BENCH_CASIA", REPO.parent / "shared" / "corpora" / "casia"))
    result: dict = {"name": "harness", "corpus": "casia", "root": str(root), "quick": quick,
                    "cpu_count": os.cpu_count()}
    if not root.is_dir():
        return {**result, "skipped": True, "note": f"CASIA not found at {root}; set SERBENCH_BENCH_CASIA"}
    from serbench import features
    from serbench.settings import cache_root

    cache = cache_root()
    names = QUICK_FEATURES if quick else FEATURES
    t0 = time.perf_counter()
    for name in names + (() if quick else ("melseg",)):  # fill the cache; not part of the measurement
        if name == "melseg":
            features.load_arrays("casia", name, root=root, cache=cache, jobs=2)
        else:
            features.load("casia", name, root=root, cache=cache, jobs=2)
    result["cache_fill_s_not_timed"] = time.perf_counter() - t0

    repeats = 1 if quick else 3
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    reference = None
    for _ in range(repeats):
        for mode, kw in MODES.items():
            wall, labels = _grid(root, cache, names, kw)
            walls[mode].append(wall)
            if reference is None:
                reference = labels
            elif labels != reference:
                raise RuntimeError(f"{mode}: predictions differ from the sequential run")
    med = {m: statistics.median(w) for m, w in walls.items()}
    result["svm_grid"] = {
        "features": list(names), "runs": 2 * len(names), "repeats": repeats, "wall_s_all": walls,
        "wall_s_median": med, "identical_predictions": True,
        "speedup_vs_sequential": {m: med["sequential"] / med[m] for m in MODES},
        "speedup_vs_sequential_1_thread": {m: med["sequential_1_thread"] / med[m] for m in MODES},
        "dask_over_workers": med["dask_local_2"] / med["workers_2"],
    }
    if not quick:
        one = _deep(root, cache, 1, quick)
        two = _deep(root, cache, 2, quick)
        result["cnn_sru_fast_N3"] = {"workers_1": one, "workers_2": two, "speedup": one["wall_s"] / two["wall_s"]}
    return {**result, "skipped": False}


if __name__ == "__main__":
    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv[1:]), indent=2))
