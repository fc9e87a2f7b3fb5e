"""Benchmark: the paper's baseline grid (PLP, MFCC, HuWSF, IS09, IS10; linear SVM; nested LOSO) on CASIA.

Features are extracted into the cache first and that is not timed; the timed part is
each ``run_baseline`` call (reading the cached features, the outer LOSO folds, the inner
speaker-grouped grid search, the refits and predictions). Reports the total seconds and
the share spent in model selection (inner grid search, excluding the final refits).

Environment: ``SERBENCH_BENCH_CASIA`` (default ``../shared/corpora/casia`` next to the
repository), ``SERBENCH_BENCH_JOBS`` (default 2), ``SERBENCH_CACHE`` (feature cache).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES = ("PLP", "MFCC", "HuWSF", "IS09", "IS10")
QUICK_FEATURES = ("MFCC", "IS09")


def run(out: Path, quick: bool = False) -> dict:
    """Run the grid; returns a JSON-able dict (``skipped`` with a ``note`` when CASIA is absent).

    ``quick`` runs only MFCC and IS09. ``out`` is not written to: run records go to a
    temporary store, since a benchmark measures time and should not add runs to a user's store.
    """
    root = Path(os.environ.get("SERBENCH_BENCH_CASIA", REPO.parent / "shared" / "corpora" / "casia"))
    result: dict = {"name": "baseline", "corpus": "casia", "root": str(root), "quick": quick,
                    "classifier": "svm-linear", "protocol": "loso", "cpu_count": os.cpu_count()}
    if not root.is_dir():
        return {**result, "skipped": True,
                "note": f"CASIA not found at {root}; set SERBENCH_BENCH_CASIA to its folder"}

    from serbench import features
    from serbench.settings import cache_root
    from serbench.systems.run import run_baseline

    jobs = int(os.environ.get("SERBENCH_BENCH_JOBS", "2"))
    names = QUICK_FEATURES if quick else FEATURES
    cache = cache_root()
    t0 = time.perf_counter()
    for name in names:  # fill the cache; extraction is not part of the measurement
        features.load("casia", name, root=root, cache=cache, jobs=jobs, progress=False)
    extract_s = time.perf_counter() - t0

    systems = {}
    with tempfile.TemporaryDirectory(prefix="serbench-bench-runs-") as runs:
        for name in names:
            t = time.perf_counter()
            res = run_baseline("casia", root, name, classifier="svm-linear", cache=cache, runs=runs, jobs=jobs,
                               threads=jobs, resume=False)
            wall = time.perf_counter() - t
            tm = res.record["timings"]
            systems[res.system] = {
                "seconds": wall, "model_selection_s": tm["model_selection_s"], "refit_s": tm["refit_s"],
                "predict_s": sum(f["timings"]["predict_s"] for f in res.record["folds"]),
                "load_features_s": tm["load_features_s"],
                "n_features": res.record["config"]["inputs"]["n_features"],
                "wa": res.wa, "ua": res.ua, "n_excluded": len(res.excluded),
                "best_params": {f["fold"]: f["best_params"] for f in res.record["folds"]},
            }
    total = sum(s["seconds"] for s in systems.values())
    ms = sum(s["model_selection_s"] for s in systems.values())
    return {**result, "skipped": False, "jobs": jobs, "features": list(names),
            "cache_fill_s_not_timed": extract_s, "total_s": total, "model_selection_s": ms,
            "model_selection_share": ms / total if total > 0 else None, "systems": systems}


if __name__ == "__main__":  # python -m benchmarks.bench_baseline [--quick]
    import json
    import sys

    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv), indent=2))
