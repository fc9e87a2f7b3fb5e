"""Benchmark: IS10 svm-linear leave-one-speaker-out at CREMA-D's size, and its time against corpus size.

Synthesized corpora of :func:`benchmarks.bench_svm_scaling.synth_corpus` (learnable classes, speaker
offsets, feature scales spread over e^-3 .. e^3), 1582 features (IS10), 6 classes; each fold runs as
the SVM systems run it (:func:`benchmarks.bench_svm_scaling.run_fold`: ``select_model`` on the
training rows, labels and decision scores of the test rows).

- ``cremad``: CREMA-D's shape (91 speakers, 7442 utterances: 71 x 82 + 20 x 81). The first
  ``SERBENCH_BENCH_LOSO_FOLDS`` folds (default 10; 0 = all 91) in three ways in this run, one repeat
  each (the two in-process ways interleaved fold by fold, the order flipping each fold, then the workers):

  * ``today_inprocess_jobs2``: the kernel path as of ``LEGACY_COMMIT`` (its ``kernel_grid.py``
    read from git), folds one after another in this process, ``jobs=2`` (2 BLAS threads for the
    kernels, the C values of a kernel fitted on 2 threads) -- the 18.6 s per fold measured before;
  * ``new_inprocess_jobs2``: today's code, ``jobs=2`` in one process (inner splits side by side,
    kernels on one BLAS thread);
  * ``new_workers2_threads1``: today's code on :class:`serbench.executors.LocalProcesses` with 2
    workers of 1 thread, one task per fold (``--workers 2 --threads 1``); worker start-up counted.

  The full-LOSO time is projected as seconds per fold x 91 (said in ``projected``). Predictions are
  compared with the first: labels, decision scores (bit-identical or the largest difference) and
  the chosen C per fold. ``equality_threads1``: the first 2 folds by the legacy code with every
  BLAS call on one thread (what ``--threads 1`` / ``--workers 2`` ran before) against the new code:
  bit-identical is the claim.
- ``scaling``: the new path (2 workers x 1 thread) at 1k, 2k, 4k and 8k utterances with 12, 24, 48
  and 96 speakers (about 83 utterances each); all 12 folds at 1k, the first 8 at 2k, 4 at 4k and 2
  at 8k, projected to all folds from the measured wall per fold (labelled; the wall includes the
  workers' start-up of a few seconds, so a projection errs long).

Every run records the median CPU seconds of a fold (all threads of the process that ran it) and
``cpu_bound_min``: that work over all folds spread on 2 idle cores, the least wall any scheduling of
it can take; on a machine shared with other jobs it is the steadier figure, the wall is what it was.

Quick mode: 8 speakers x 40 rows x 384 features, 3 folds; scaling at 6 and 12 speakers.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_svm_scaling import loso_folds, run_fold, synth_corpus

REPO = Path(__file__).resolve().parent.parent
#: The last commit whose kernel_grid.py computed the kernels with ``jobs`` BLAS threads.
LEGACY_COMMIT = "d80de6f023de1deb1e2bb9f4ee9570aab265d7e1"
CREMAD_ROWS = [82] * 71 + [81] * 20

_CACHE: dict = {}


def legacy_source() -> str:
    return subprocess.run(["git", "show", f"{LEGACY_COMMIT}:serbench/baselines/kernel_grid.py"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


class use_kernel_grid:
    """Within the block ``select_model`` runs the given ``kernel_grid.py`` source (None: today's)."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def __enter__(self):
        import serbench.baselines.kernel_grid as kg

        self._saved = kg.kernel_grid_search
        if self.source is not None:
            mod = types.ModuleType("serbench_legacy_kernel_grid")
            exec(compile(self.source, "legacy_kernel_grid.py", "exec"), mod.__dict__)
            kg.kernel_grid_search = mod.kernel_grid_search
        return self

    def __exit__(self, *exc):
        import serbench.baselines.kernel_grid as kg

        kg.kernel_grid_search = self._saved


def corpus(spec: tuple) -> tuple:
    """``spec = (rows per speaker, n_features, n_classes, seed)``, synthesized once per process."""
    if spec not in _CACHE:
        rows, d, k, seed = spec
        _CACHE.clear()
        _CACHE[spec] = synth_corpus(list(rows), d, k, seed=seed)
    return _CACHE[spec]


def fold_task(spec: tuple, index: int, jobs: int) -> tuple[pd.DataFrame, dict, float, float]:
    """One LOSO fold (the ``index``-th speaker) in a worker: predictions, the choice, wall and CPU seconds."""
    data = corpus(spec)
    fold = loso_folds(data[2])[index]
    t0, c0 = time.perf_counter(), time.process_time()
    preds, info = run_fold(data, fold, "svm-linear", jobs, "kernel")
    return preds, info, time.perf_counter() - t0, time.process_time() - c0


def interleaved(spec: tuple, n_folds: int, configs: dict[str, tuple[int, str | None]],
                blas_threads: int | None = None) -> dict[str, dict]:
    """Folds one after another in this process, each fold run by every config in turn (the order flips
    each fold), so a slow spell of the machine falls on all of them. ``configs``: name -> (jobs,
    kernel_grid source or None for today's). Per config: wall and CPU (all threads) seconds per fold."""
    from threadpoolctl import threadpool_limits

    data = corpus(spec)
    folds = loso_folds(data[2])[:n_folds]
    out = {k: {"fold_s": [], "cpu_s": [], "preds": [], "infos": []} for k in configs}
    names = list(configs)
    with threadpool_limits(blas_threads):
        for i, fold in enumerate(folds):
            for name in (names if i % 2 == 0 else names[::-1]):
                jobs, source = configs[name]
                with use_kernel_grid(source):
                    t0, c0 = time.perf_counter(), time.process_time()
                    p, info = run_fold(data, fold, "svm-linear", jobs, "kernel")
                    out[name]["fold_s"].append(time.perf_counter() - t0)
                    out[name]["cpu_s"].append(time.process_time() - c0)
                out[name]["preds"].append(p)
                out[name]["infos"].append(info)
    for r in out.values():
        r["wall_s"] = sum(r["fold_s"])
        r["preds"] = pd.concat(r["preds"], ignore_index=True)
    return out


def on_workers(spec: tuple, n_folds: int, workers: int = 2, threads: int = 1) -> dict:
    from serbench.executors import LocalProcesses

    t0 = time.perf_counter()
    with LocalProcesses(workers, threads=threads, preload=("benchmarks.bench_svm_loso",
                                                           "serbench.baselines.kernel_grid")) as ex:
        token = ex.share(spec)
        futures = [ex.submit(fold_task, token, i, threads) for i in range(n_folds)]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "fold_s": [r[2] for r in results], "cpu_s": [r[3] for r in results],
            "preds": pd.concat([r[0] for r in results], ignore_index=True), "infos": [r[1] for r in results]}


def compare(ref: dict, other: dict) -> dict:
    a = ref["preds"].sort_values("utterance_id").reset_index(drop=True)
    b = other["preds"].sort_values("utterance_id").reset_index(drop=True)
    cols = [c for c in a.columns if c.startswith("score_")]
    sa, sb = a[cols].to_numpy(), b[cols].to_numpy()
    return {"n_test": int(len(a)), "same_rows": bool((a["utterance_id"] == b["utterance_id"]).all()),
            "labels_identical": bool((a["predicted"] == b["predicted"]).all()),
            "n_labels_differ": int((a["predicted"] != b["predicted"]).sum()),
            "scores_bit_identical": bool(np.array_equal(sa, sb)),
            "max_abs_score_diff": float(np.abs(sa - sb).max()),
            "chosen_C_identical": [i["best_params"] for i in ref["infos"]] == [i["best_params"] for i in other["infos"]],
            "inner_ua_identical": [i["inner_cv_ua"] for i in ref["infos"]] == [i["inner_cv_ua"] for i in other["infos"]]}


def summary(res: dict, n_all: int, cores: int = 2) -> dict:
    """Wall per fold (the run's wall / its folds: with workers, folds overlap), the median fold, CPU
    seconds per fold (all threads), and both projected to all ``n_all`` folds; ``cpu_bound_min`` is the
    CPU work spread over ``cores`` idle cores, the least wall any scheduling of it could take."""
    per_fold = res["wall_s"] / len(res["fold_s"])
    cpu = statistics.median(res["cpu_s"])
    return {"wall_s": res["wall_s"], "n_folds": len(res["fold_s"]), "wall_per_fold_s": per_fold,
            "median_fold_s": statistics.median(res["fold_s"]), "median_fold_cpu_s": cpu,
            "projected_all_folds_s": per_fold * n_all, "projected_all_folds_min": per_fold * n_all / 60,
            "cpu_bound_min": cpu * n_all / cores / 60}


def ua(preds: pd.DataFrame) -> float:
    from serbench.experiments.metrics import unweighted_accuracy

    return float(unweighted_accuracy(preds["true"], preds["predicted"]))


def run(out: Path, quick: bool = False) -> dict:
    t_start = time.perf_counter()
    legacy = legacy_source()
    import scipy.stats  # noqa: F401  (imports before the first timed fold, not inside it)
    import sklearn.metrics, sklearn.model_selection, sklearn.pipeline, sklearn.svm  # noqa: F401,E401
    if quick:
        spec, n_folds = (tuple([40] * 8), 384, 6, 7), 3
        sizes = [(6, 40), (12, 40)]
        limits = {6: None, 12: 3}
    else:
        spec = (tuple(CREMAD_ROWS), 1582, 6, 7)
        n_folds = int(os.environ.get("SERBENCH_BENCH_LOSO_FOLDS", "10")) or len(CREMAD_ROWS)
        sizes = [(12, 83), (24, 83), (48, 83), (96, 83)]
        limits = {12: None, 24: 8, 48: 4, 96: 2}
    n_all = len(spec[0])
    shape = {"speakers": n_all, "rows": int(sum(spec[0])), "features": spec[1], "classes": spec[2]}
    runs = interleaved(spec, n_folds, {"today_inprocess_jobs2": (2, legacy), "new_inprocess_jobs2": (2, None)})
    runs["new_workers2_threads1"] = on_workers(spec, n_folds)
    ref = runs["today_inprocess_jobs2"]
    cremad = {"shape": shape, "legacy_commit": LEGACY_COMMIT, "folds_measured": n_folds,
              "projected": f"seconds per fold (wall / {n_folds} folds) x {n_all} folds" if n_folds < n_all else None,
              "ua_measured_folds": ua(ref["preds"]),
              "best_params": [i["best_params"] for i in ref["infos"]],
              "runs": {k: summary(v, n_all) for k, v in runs.items()},
              "vs_today": {k: compare(ref, v) for k, v in runs.items() if k != "today_inprocess_jobs2"},
              "new_inprocess_vs_new_workers": compare(runs["new_inprocess_jobs2"], runs["new_workers2_threads1"])}
    base = cremad["runs"]["today_inprocess_jobs2"]["wall_per_fold_s"]
    for k, v in cremad["runs"].items():
        v["speedup_vs_today"] = base / v["wall_per_fold_s"]
    # Bit-identity where both compute every product on one BLAS thread (the legacy code's --threads 1).
    k = min(int(os.environ.get("SERBENCH_BENCH_LOSO_EQUAL_FOLDS", "2")), n_folds)
    old1 = interleaved(spec, k, {"legacy": (1, legacy)}, blas_threads=1)["legacy"]
    new2 = {**runs["new_inprocess_jobs2"], "preds": runs["new_inprocess_jobs2"]["preds"].iloc[:sum(spec[0][:k])],
            "infos": runs["new_inprocess_jobs2"]["infos"][:k]}
    cremad["equality_threads1"] = {"folds": k, "legacy_jobs1_blas1_vs_new_inprocess_jobs2": compare(old1, new2)}

    scaling = []
    for n_spk, per in sizes:
        s = (tuple([per] * n_spk), spec[1], spec[2], 100 + n_spk)
        lim = limits[n_spk] or n_spk
        r = on_workers(s, lim)
        scaling.append({"utterances": n_spk * per, "speakers": n_spk, "folds_measured": lim,
                        "train_rows_per_fold": (n_spk - 1) * per, **summary(r, n_spk),
                        "projected": lim < n_spk})
    result = {"name": "svm_loso", "quick": quick, "cpu_count": os.cpu_count(), "cremad": cremad,
              "scaling_new_workers2_threads1": scaling, "bench_s": time.perf_counter() - t_start}
    return result


if __name__ == "__main__":  # python -m benchmarks.bench_svm_loso [--quick]
    import json

    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv), indent=2, default=str))
