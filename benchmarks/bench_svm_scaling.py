"""Benchmark: SVM model selection over precomputed kernels (``method='kernel'``) vs ``GridSearchCV`` ('grid').

Both run an outer fold as the SVM baseline systems do (:func:`serbench.baselines.svm.select_model`
on the training rows, ``predict`` and ``decision_scores`` on the test rows), on synthesized
corpora with a learnable structure (class means in a 16-dimensional subspace, a per-speaker offset, noise, feature
scales spread over e^-3 .. e^3), so the grid search makes real choices:

- ``ravdess``: RAVDESS's shape, 24 speakers x 60 utterances (4 neutral + 7 x 8 emotional),
  8 classes, 1582 features (IS10). LOSO, both methods, ``jobs`` 1 and 2, medians of 3
  interleaved repeats; svm-linear on all 24 folds, svm-rbf on the first 4 (today's RBF path
  takes minutes per fold). Predicted labels must be identical (checked after everything
  is measured; a mismatch raises with the figures in the message).
- ``casia_grid``: CASIA's paper grid, 5 feature sets (PLP/MFCC/HuWSF 312, IS09 384, IS10 1582
  dimensions) x (plain, per-speaker normalized), 4 speakers x 300 rows, 6 classes, LOSO,
  svm-linear, ``SERBENCH_BENCH_JOBS`` (default 2), medians of 3 interleaved repeats. Real
  CASIA features are used for a set when the feature cache holds it for every utterance of
  ``SERBENCH_BENCH_CASIA`` (default ``../shared/corpora/casia``); nothing is extracted.
- ``cremad`` (not quick): CREMA-D's shape, 91 speakers, 7442 utterances, 6 classes, 1582
  features; the kernel path on the first 3 LOSO folds (jobs 2). Today's path on one fold
  takes tens of minutes; set ``SERBENCH_BENCH_SVM_GRID_CREMAD=1`` to time it too.
- ``memory``: peak memory of one fold per method (the numpy/Python peak by ``tracemalloc``,
  and the RSS high-water mark over the fold from ``/proc/self/status`` after resetting it,
  which includes libsvm's allocations but misses memory the allocator reuses); and the
  kernel path's tracemalloc peak at 1000, 2000 and 4000 training rows, fitted as
  ``a n^2 + b n + c`` to estimate the largest fold that fits in 24 GiB (an extrapolation,
  labelled as such).

Quick mode (well under a minute): 6 speakers x 60 x 384 features, one fold, one repeat
(svm-rbf with jobs 1 only); CASIA's shape with the IS09 width only, one fold; memory of svm-linear at
200, 400 and 800 training rows.
Full mode takes roughly 1.5-2 hours on 2 cores, most of it today's path.
"""
from __future__ import annotations

import os
import re
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
METHODS = ("grid", "kernel")
CASIA_SETS = {"PLP": 312, "MFCC": 312, "HuWSF": 312, "IS09": 384, "IS10": 1582}
GIB = 2**30


def synth_corpus(rows_per_speaker: list[int], n_features: int, n_classes: int, *, seed: int = 0,
                 signal: float = 0.06, neutral: int | None = None):
    """A corpus with learnable classes: X (n, n_features) float64, y, speakers, utterance ids (n,).

    ``neutral`` rows of each speaker are class 0 and the rest cycle through the other classes
    (RAVDESS: 4 neutral + 8 of each of 7 emotions); without it all classes cycle. The class
    signal grows with sqrt(1582 / n_features) so that narrow sets are about as learnable.
    """
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(16, n_features))
    centers = rng.normal(size=(n_classes, 16))
    amp = signal * np.sqrt(1582 / n_features)
    X, y, spk, ids = [], [], [], []
    for s, n in enumerate(rows_per_speaker):
        if neutral is None:
            k = np.arange(n) % n_classes
        else:
            k = np.concatenate([np.zeros(neutral, int), 1 + np.arange(n - neutral) % (n_classes - 1)])
        X.append(amp * centers[k] @ basis + rng.normal(size=n_features) * 0.5 + rng.normal(size=(n, n_features)) * 3)
        y += [f"e{c}" for c in k]
        spk += [f"spk{s:02d}"] * n
        ids += [f"spk{s:02d}_{i:03d}" for i in range(n)]
    scale = np.exp(rng.uniform(-3, 3, n_features))
    return (np.vstack(X) * scale + rng.normal(size=n_features) * 10, np.array(y), np.array(spk),
            np.array(ids))


def loso_folds(speakers: np.ndarray, limit: int | None = None):
    from serbench.experiments.protocol import Fold

    names = sorted(np.unique(speakers))[:limit]
    return [Fold(str(s), np.flatnonzero(speakers != s), np.flatnonzero(speakers == s)) for s in names]


def run_fold(data, fold, classifier: str, jobs: int, method: str) -> tuple[pd.DataFrame, dict]:
    """One outer fold as a baseline system runs it: ``select_model`` on the training rows, then
    ``predict`` and ``decision_scores`` on the test rows. Predictions (one row per test utterance)
    and the fold's choice."""
    from serbench.baselines import svm

    X, y, spk, ids = data
    labels = sorted(np.unique(y).tolist())
    tr, te = fold.train, fold.test
    search = svm.select_model(X[tr], y[tr], spk[tr], classifier=classifier, seed=0, jobs=jobs, method=method)
    preds = pd.DataFrame({"utterance_id": ids[te], "fold": fold.name, "true": y[te],
                          "predicted": np.asarray(search.predict(X[te])).astype(str)})
    scores = svm.decision_scores(search, X[te], labels)
    for j, label in enumerate(labels):
        preds[f"score_{label}"] = scores[:, j]
    return preds, {"best_params": dict(search.best_params_), "inner_cv_ua": float(search.best_score_),
                   "refit_s": float(search.refit_time_)}


def run_loso(data, folds, classifier: str, jobs: int, method: str) -> tuple[float, pd.DataFrame, list[dict]]:
    """Seconds for all ``folds``, the predictions and each fold's choice."""
    preds, infos = [], []
    t0 = time.perf_counter()
    for fold in folds:
        p, info = run_fold(data, fold, classifier, jobs, method)
        preds.append(p)
        infos.append(info)
    return time.perf_counter() - t0, pd.concat(preds, ignore_index=True), infos


def _proc_status() -> dict[str, int] | None:
    try:
        text = Path("/proc/self/status").read_text()
        return {k: int(re.search(rf"{k}:\s+(\d+) kB", text).group(1)) * 1024 for k in ("VmRSS", "VmHWM")}
    except (OSError, AttributeError):
        return None


def peak_memory(fn: Callable[[], object]) -> dict:
    """Run ``fn`` once; its peak memory above the start: RSS high-water mark (Linux) and tracemalloc's peak."""
    rss0 = None
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        status = _proc_status()
        rss0 = status["VmRSS"] if status else None
    except OSError:
        pass
    tracemalloc.start()
    try:
        fn()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    status = _proc_status()
    rss = status["VmHWM"] - rss0 if status and rss0 is not None else None
    return {"rss_peak_above_start_mib": None if rss is None else rss / 2**20, "tracemalloc_peak_mib": traced / 2**20}


def compare(data, folds, classifier: str, jobs_list, repeats: int) -> dict:
    """Both methods side by side, interleaved (the order flips each repeat); medians and identity checks."""
    seconds = {(m, j): [] for m in METHODS for j in jobs_list}
    predictions, best = {}, {}
    for r in range(repeats):
        for jobs in jobs_list:
            for method in (METHODS if r % 2 == 0 else METHODS[::-1]):
                s, p, infos = run_loso(data, folds, classifier, jobs, method)
                seconds[(method, jobs)].append(s)
                predictions[(method, jobs, r)] = p
                best[(method, jobs, r)] = [i["best_params"] for i in infos]
    ref = predictions[("grid", jobs_list[0], 0)]
    score_cols = [c for c in ref.columns if c.startswith("score_")]
    mismatched, max_score_diff, params_differ = 0, 0.0, 0
    for key, p in predictions.items():
        mismatched = max(mismatched, int((p["predicted"].to_numpy() != ref["predicted"].to_numpy()).sum()))
        max_score_diff = max(max_score_diff, float(np.abs(p[score_cols].to_numpy() - ref[score_cols].to_numpy()).max()))
        params_differ += int(best[key] != best[("grid", jobs_list[0], 0)])
    out = {"classifier": classifier, "n_folds": len(folds), "repeats": repeats,
           "n_test": int(len(ref)), "ua": float(_ua(ref)), "identical_predictions": mismatched == 0,
           "max_mismatched_predictions": mismatched, "max_abs_score_diff": max_score_diff,
           "runs_with_other_best_params": params_differ, "by_jobs": {}}
    for jobs in jobs_list:
        g = statistics.median(seconds[("grid", jobs)])
        k = statistics.median(seconds[("kernel", jobs)])
        out["by_jobs"][str(jobs)] = {"grid_median_s": g, "kernel_median_s": k, "speedup": g / k,
                                     "grid_s": seconds[("grid", jobs)], "kernel_s": seconds[("kernel", jobs)]}
    return out


def _ua(preds: pd.DataFrame) -> float:
    from serbench.experiments.metrics import unweighted_accuracy

    return unweighted_accuracy(preds["true"], preds["predicted"])


def fold_memory(data, fold, classifier: str, method: str) -> dict:
    return peak_memory(lambda: run_loso(data, [fold], classifier, 1, method))


def casia_features(name: str):
    """Real cached CASIA features of ``name`` as (X, y, speakers, ids), or None when not fully cached."""
    root = Path(os.environ.get("SERBENCH_BENCH_CASIA", REPO.parent / "shared" / "corpora" / "casia"))
    if not root.is_dir():
        return None
    try:
        from serbench.corpora import scan
        from serbench.features import get_feature_set
        from serbench.features.cache import FeatureCache
        from serbench.settings import cache_root

        manifest = scan("casia", root).manifest
        table = FeatureCache("casia", get_feature_set(name), cache_root()).read()
        if table is None:
            return None
        df = table.to_pandas().set_index("utterance_id")
        ids = manifest["utterance_id"].astype(str)
        if not ids.isin(df.index).all():
            return None
        ok = (df.loc[ids, "status"] == "ok").to_numpy()
        cols = FeatureCache("casia", get_feature_set(name), cache_root()).feature_columns
        X = df.loc[ids[ok], cols].to_numpy(np.float64)
        m = manifest[ok]
        return X, m["emotion"].astype(str).to_numpy(), m["speaker"].astype(str).to_numpy(), ids[ok].to_numpy()
    except Exception:  # any unreadable or foreign cache: synthesize instead, and say so
        return None


def casia_grid(sets: dict[str, int], jobs: int, repeats: int, folds_limit: int | None) -> dict:
    from serbench.experiments.normalize import normalize_per_speaker

    systems = {}
    totals = {m: [0.0] * repeats for m in METHODS}
    for i, (name, dim) in enumerate(sets.items()):
        real = casia_features(name)
        source = "cache" if real is not None else "synthesized"
        data = real or synth_corpus([300] * 4, dim, 6, seed=10 + i)
        for norm in (False, True):
            X = normalize_per_speaker(data[0], data[2]) if norm else data[0]
            d = (X, *data[1:])
            res = compare(d, loso_folds(d[2], folds_limit), "svm-linear", [jobs], repeats)
            for m in METHODS:
                for r, s in enumerate(res["by_jobs"][str(jobs)][f"{m}_s"]):
                    totals[m][r] += s
            systems[f"{name}-svm-linear" + ("-spknorm" if norm else "")] = {"source": source, "n_features": X.shape[1],
                                                                            **res}
    g, k = statistics.median(totals["grid"]), statistics.median(totals["kernel"])
    return {"jobs": jobs, "grid_total_median_s": g, "kernel_total_median_s": k, "speedup": g / k,
            "identical_predictions": all(s["identical_predictions"] for s in systems.values()), "systems": systems}


def memory_scaling(sizes: list[int], n_features: int, classifiers: tuple[str, ...]) -> dict:
    """Kernel path, one fold of ``n`` training rows (5 training speakers) per size: peak memory and seconds."""
    points = {}
    for classifier in classifiers:
        rows = []
        for n in sizes:
            data = synth_corpus([n // 5] * 6, n_features, 6, seed=n)
            fold = loso_folds(data[2])[0]
            t0 = time.perf_counter()
            mem = fold_memory(data, fold, classifier, "kernel")
            rows.append({"n_train": int(len(fold.train)), "seconds_traced": time.perf_counter() - t0, **mem})
        points[classifier] = rows
    return {"n_features": n_features, "points": points, "estimate_24GiB": _extrapolate(points)}


def _extrapolate(points: dict) -> dict:
    """Fit peak bytes = a n^2 + b n (+ c with 3+ points) and solve for 24 GiB, raw and with 25% headroom."""
    out = {}
    for classifier, rows in points.items():
        n = np.array([r["n_train"] for r in rows], float)
        # tracemalloc sees every numpy array exactly; the RSS high-water mark misses memory the
        # allocator reuses (small sizes) but includes libsvm's own allocations (bounded by cache_size).
        key = "tracemalloc_peak_mib"
        mib = np.array([r[key] for r in rows], float)
        design = np.column_stack([n**2, n] + ([np.ones_like(n)] if len(n) >= 3 else []))
        coef = np.linalg.lstsq(design, mib * 2**20, rcond=None)[0]
        a, b, c = coef[0], coef[1], coef[2] if len(coef) > 2 else 0.0

        def solve(budget):
            if a <= 0:
                return None
            return int((-b + np.sqrt(b * b + 4 * a * (budget - c))) / (2 * a))

        out[classifier] = {"measure": key, "bytes_per_n2": float(a), "bytes_per_n": float(b), "bytes_const": float(c),
                           "max_train_rows_24GiB": solve(24 * GIB), "max_train_rows_18GiB_headroom": solve(18 * GIB),
                           "note": "extrapolated from numpy's peak at the measured points, jobs=1; libsvm adds at "
                                   "most cache_size=500 MB per concurrent fit"}
    return out


def run(out: Path, quick: bool = False) -> dict:
    """Time both methods side by side; returns a JSON-able dict. ``out`` is not written to."""
    t_start = time.perf_counter()
    result: dict = {"name": "svm_scaling", "quick": quick, "cpu_count": os.cpu_count(), "methods": list(METHODS)}
    jobs_casia = int(os.environ.get("SERBENCH_BENCH_JOBS", "2"))
    if quick:
        rav = synth_corpus([60] * 6, 384, 8, neutral=4)
        rav_folds = {"svm-linear": loso_folds(rav[2], 1), "svm-rbf": loso_folds(rav[2], 1)}
        rav_jobs = {"svm-linear": [1, 2], "svm-rbf": [1]}
        repeats, sizes, sets, casia_folds = 1, [200, 400, 800], {"IS09": 384}, 1
    else:
        rav = synth_corpus([60] * 24, 1582, 8, neutral=4)
        # SERBENCH_BENCH_SVM_FOLDS=K times the first K of the 24 LOSO folds (today's path takes most of an
        # hour per repeat on all 24); per-fold medians and the 24-fold projection are reported either way.
        limit = int(os.environ.get("SERBENCH_BENCH_SVM_FOLDS", "0")) or None
        rav_folds = {"svm-linear": loso_folds(rav[2], limit), "svm-rbf": loso_folds(rav[2], min(4, limit or 4))}
        rav_jobs = {"svm-linear": [1, 2], "svm-rbf": [1, 2]}
        repeats, sizes, sets, casia_folds = 3, [1000, 2000, 4000], CASIA_SETS, None
    result["ravdess"] = {"shape": {"speakers": len(np.unique(rav[2])), "rows": len(rav[0]), "features": rav[0].shape[1],
                                   "classes": len(np.unique(rav[1]))}}
    for classifier, folds in rav_folds.items():
        result["ravdess"][classifier] = compare(rav, folds, classifier, rav_jobs[classifier], repeats)
        result["ravdess"][classifier]["memory_one_fold"] = {m: fold_memory(rav, folds[0], classifier, m)
                                                            for m in METHODS}
    result["casia_grid"] = casia_grid(sets, jobs_casia, repeats, casia_folds)
    if not quick:
        per = [82] * 71 + [81] * 20
        crema = synth_corpus(per, 1582, 6, seed=7)
        folds = loso_folds(crema[2], 3)
        s, p, infos = run_loso(crema, folds, "svm-linear", 2, "kernel")
        entry = {"shape": {"speakers": len(per), "rows": int(sum(per)), "features": 1582, "classes": 6},
                 "kernel_jobs2_s_per_fold": s / len(folds), "n_folds": len(folds),
                 "best_params": [i["best_params"] for i in infos],
                 "kernel_loso_projected_s": s / len(folds) * len(per),
                 "memory_one_fold_kernel": fold_memory(crema, folds[0], "svm-linear", "kernel")}
        if os.environ.get("SERBENCH_BENCH_SVM_GRID_CREMAD") == "1":
            gs, gp, _ = run_loso(crema, folds[:1], "svm-linear", 2, "grid")
            kp = p[p["fold"] == folds[0].name].reset_index(drop=True)
            entry.update({"grid_jobs2_s_one_fold": gs,
                          "identical_predictions_one_fold": bool((gp["predicted"].to_numpy()
                                                                  == kp["predicted"].to_numpy()).all())})
        result["cremad"] = entry
    result["memory_scaling"] = memory_scaling(sizes, 1582 if not quick else 384,
                                              ("svm-linear",) if quick else ("svm-linear", "svm-rbf"))
    result["bench_s"] = time.perf_counter() - t_start
    bad = [k for k, v in result["ravdess"].items() if isinstance(v, dict) and v.get("identical_predictions") is False]
    if bad or not result["casia_grid"]["identical_predictions"]:
        import json

        raise AssertionError(f"the methods predicted differently ({bad or 'casia_grid'}): "
                             + json.dumps(result, default=str))
    return result


if __name__ == "__main__":  # python -m benchmarks.bench_svm_scaling [--quick]
    import json
    import sys

    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv), indent=2, default=str))
