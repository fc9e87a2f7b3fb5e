"""Grid search of an SVC over precomputed kernels: the result of ``GridSearchCV``, far sooner.

``GridSearchCV(Pipeline(StandardScaler, SVC))`` makes libsvm recompute the kernel in every
fit, row by row and without BLAS, and shares nothing between the values of ``C``. Here each
(inner or outer) training split is standardized once, with a scaler fitted on that split's
training rows only, its kernel matrix is computed once with BLAS (linear: ``Xs @ Xs.T``;
RBF: the squared distances once, then ``exp(-gamma * D)`` per ``gamma``), and every ``C`` is
fitted on it with ``SVC(kernel='precomputed')``. Candidates, inner splits, scoring, the
choice among equal scores (the first best in grid order, as ``rank_test_score``) and the
refit on all training rows are those of ``GridSearchCV``; only the kernel's rounding differs
(BLAS vs libsvm's loops, ~1e-13 relative).

Memory: a kernel over ``n`` training rows costs ``8 n^2`` bytes. An inner split holds its
training kernel and its validation block (``8 n_train (n_train + n_val)`` bytes), twice for
RBF (distances kept across gammas, plus the kernel of the current gamma); the refit holds
``8 n^2``. :func:`kernel_bytes` is that estimate; libsvm adds at most ``cache_size`` MB per
concurrent fit. With ``jobs`` > 1 up to ``jobs`` inner splits run side by side, next to the
refit's kernel, within :data:`CONCURRENT_KERNEL_BYTES` (:func:`concurrent_tasks`).

Threads: every kernel product runs on one BLAS thread (:func:`one_blas_thread`), so the kernels,
hence the choice, the refit and the decision scores, are bit-identical for every ``jobs``, every
``--threads`` and every executor. Where the time of a fold goes (CREMA-D's shape, 7,360 training
rows of IS10, ``benchmarks/bench_svm_loso.py``): about half in libsvm's SMO iterations (30 inner
fits and the refit; ``select_working_set``), a third in the kernel products, the rest in libsvm's
predictions of the validation rows and the scalers. None of it can be shared between folds or
inner splits without changing the numbers: each split's kernel is over rows standardized with
that split's own per-feature scale, which sits inside the inner product.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
from joblib import effective_n_jobs
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils import check_array

# The kernel arithmetic lives with the array model that predicts from bundles, so both compute the same bits.
from serbench.baselines.svm_arrays import KERNELS, kernel_base, kernel_finish, one_blas_thread, squared_norms


def scale_gamma(Xs: np.ndarray) -> float:
    """``gamma='scale'`` as :class:`~sklearn.svm.SVC` resolves it on the rows it is fitted on.

    ``Xs`` (n_rows, n_features) float64: ``1 / (n_features * Xs.var())``, or 1.0 when the
    variance is 0, computed on the same array so the value is bit-identical.
    """
    var = Xs.var()
    return 1.0 / (Xs.shape[1] * var) if var != 0 else 1.0


def kernel_bytes(n_train: int, kernel: str, n_val: int = 0) -> int:
    """Bytes of the kernel matrices held at once for ``n_train`` training and ``n_val`` validation rows.

    Linear: the training kernel (n_train, n_train) and the validation block (n_val, n_train)
    in float64. RBF: twice that (distances and the kernel of one gamma), except for a refit
    (``n_val == 0``), whose single gamma is applied in place.
    """
    per = 8 * n_train * (n_train + n_val)
    return 2 * per if kernel == "rbf" and n_val else per


class TrainingKernel(TransformerMixin, BaseEstimator):
    """Maps rows to their kernel against the (standardized) training rows it was fitted on.

    ``fit(Xs)`` keeps ``Xs`` (n_train, n_features); ``transform(X)`` gives (n_rows, n_train),
    the input ``SVC(kernel='precomputed')`` expects. ``gamma`` is a number for RBF (resolve
    'scale' with :func:`scale_gamma` first) and unused for the linear kernel.
    """

    def __init__(self, kernel: str = "linear", gamma: float | None = None) -> None:
        self.kernel = kernel
        self.gamma = gamma

    def fit(self, X: np.ndarray, y: Any = None) -> "TrainingKernel":
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        self.rows_ = np.ascontiguousarray(X, dtype=np.float64)
        self.sq_norms_ = squared_norms(self.rows_)
        return self

    def base(self, X: np.ndarray | None = None) -> np.ndarray:
        """The gamma-free matrix against the training rows: dot products (linear) or squared distances (RBF).

        ``X=None`` means the training rows themselves; the result is then symmetric and, for
        RBF, has an exactly zero diagonal. Shape (n_rows, n_train), float64, C-contiguous.
        """
        return kernel_base(self.kernel, self.rows_, self.sq_norms_, X)

    def finish(self, base: np.ndarray, gamma: float | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The kernel from :meth:`base`: itself (linear) or ``exp(-gamma * base)`` (RBF) into ``out``."""
        return kernel_finish(self.kernel, base, self.gamma if gamma is None else gamma, out=out)

    def transform(self, X: np.ndarray) -> np.ndarray:
        base = self.base(X)
        return self.finish(base, out=base)

    def gram(self) -> np.ndarray:
        """The training kernel (n_train, n_train), built in place from :meth:`base`."""
        base = self.base()
        return self.finish(base, out=base)


class KernelGridSearch:
    """What :func:`kernel_grid_search` returns: the ``GridSearchCV`` attributes callers read.

    ``best_params_``, ``best_score_``, ``best_index_``, ``cv_results_`` (``params``,
    ``split<i>_test_score``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``),
    ``refit_time_``, ``n_splits_``, ``cv``, ``scoring``, ``classes_``, and
    ``best_estimator_``: ``Pipeline([('scaler', StandardScaler), ('kernel', TrainingKernel),
    ('svc', SVC(kernel='precomputed'))])`` fitted on all training rows.
    ``predict``/``decision_function`` take raw rows (n_rows, n_features).
    """

    multimetric_ = False

    def __init__(self, cv, scoring: str, param_grid: dict[str, list]) -> None:
        self.cv = cv
        self.scoring = scoring
        self.param_grid = param_grid

    @property
    def classes_(self) -> np.ndarray:
        return self.best_estimator_.classes_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (n_rows,)."""
        return self.best_estimator_.predict(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """libsvm's one-vs-rest scores, (n_rows, n_classes), or (n_rows,) with two classes."""
        return self.best_estimator_.decision_function(X)


def _standardize(X: np.ndarray, fit_rows: np.ndarray, *others: np.ndarray) -> tuple[StandardScaler, list]:
    """A scaler fitted on ``X[fit_rows]`` only and the float64 transforms of those rows and of ``others``.

    float64 after scaling, as SVC converts its input, so 'scale' sees the same numbers as in
    the pipeline.
    """
    scaler = StandardScaler().fit(X[fit_rows])
    return scaler, [np.asarray(scaler.transform(X[rows]), dtype=np.float64) for rows in (fit_rows, *others)]


def _fit_score(svc: SVC, C: float, K_tr: np.ndarray, y_tr: np.ndarray, K_val: np.ndarray,
               y_val: np.ndarray) -> float:
    model = clone(svc).set_params(C=C).fit(K_tr, y_tr)
    return float(balanced_accuracy_score(y_val, model.predict(K_val)))


#: Kernel bytes that the inner splits and the refit computed side by side (``jobs`` > 1) may hold at once;
#: above it fewer run at a time (down to one: the sequential path). Results do not depend on it.
CONCURRENT_KERNEL_BYTES = 8 * 2**30


def concurrent_tasks(n_jobs: int, split_bytes: int, refit_bytes: int, n_splits: int,
                     budget: int | None = None) -> int:
    """How many inner splits (with the refit's kernel) run side by side: ``n_jobs``, at most one per task,
    fewer where their kernels would exceed ``budget`` bytes (:data:`CONCURRENT_KERNEL_BYTES`); 1 means
    the sequential path."""
    budget = CONCURRENT_KERNEL_BYTES if budget is None else budget
    workers = max(1, min(int(n_jobs), n_splits + 1))
    while workers > 1 and refit_bytes + workers * split_bytes > budget:
        workers -= 1
    return workers


def _split_scores(X: np.ndarray, y: np.ndarray, tr: np.ndarray, val: np.ndarray, kernel: str, gammas: list,
                  candidates: list[dict], template: SVC) -> np.ndarray:
    """Validation UA of every candidate on one inner split, (n_candidates,): a scaler fitted on ``X[tr]``
    only, the split's kernel once (distances once for RBF, then each gamma), every C fitted on it."""
    out = np.empty(len(candidates), dtype=np.float64)
    _, (X_tr, X_val) = _standardize(X, tr, val)
    km = TrainingKernel(kernel).fit(X_tr)
    base_tr, base_val = km.base(), km.base(X_val)
    K_tr = np.empty_like(base_tr) if kernel == "rbf" else base_tr
    K_val = np.empty_like(base_val) if kernel == "rbf" else base_val
    scale = scale_gamma(X_tr) if "scale" in gammas else None
    for gamma in gammas:
        if kernel == "rbf":
            g = scale if gamma == "scale" else float(gamma)
            km.finish(base_tr, g, out=K_tr)
            km.finish(base_val, g, out=K_val)
        for i, p in enumerate(candidates):
            if p.get("svc__gamma") == gamma:
                out[i] = _fit_score(template, p["svc__C"], K_tr, y[tr], K_val, y[val])
    return out


def kernel_grid_search(X: np.ndarray, y: Sequence, groups: Sequence, *, cv, kernel: str,
                       param_grid: dict[str, list], svc: SVC, scoring: str = "balanced_accuracy",
                       jobs: int = 1) -> KernelGridSearch:
    """Select ``C`` (and ``gamma`` for RBF) by ``cv`` over precomputed kernels, then refit on all rows.

    Parameters
    ----------
    X : (n_train, n_features) raw (unstandardized) training rows of one outer fold.
    y, groups : (n_train,) labels and speakers; ``cv.split(X, y, groups)`` gives the inner splits.
    kernel : 'linear' or 'rbf'.
    param_grid : ``{'svc__C': [...]}`` plus ``'svc__gamma'`` for RBF, as for the pipeline.
    svc : an unfitted SVC template (class_weight, random_state, cache_size ...); its kernel,
        C and gamma are replaced.
    scoring : only 'balanced_accuracy' (UA) is supported.
    jobs : inner splits run side by side in threads (numpy's BLAS and libsvm release the GIL); the
        results do not depend on it (kernels on one BLAS thread, see the module docstring).
    """
    if scoring != "balanced_accuracy":
        raise ValueError(f"kernel_grid_search scores with balanced_accuracy only, got {scoring!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    unknown = set(param_grid) - {"svc__C", "svc__gamma"}
    if unknown or (kernel == "linear" and "svc__gamma" in param_grid):
        raise ValueError(f"kernel_grid_search searches svc__C (and svc__gamma for rbf), got {sorted(param_grid)}")
    X = check_array(X, dtype=(np.float64, np.float32))
    y = np.asarray(y)
    groups = np.asarray(groups)
    # ParameterGrid is GridSearchCV's own candidate order, which decides ties.
    candidates = list(ParameterGrid(param_grid))
    gammas: list = []
    for p in candidates:
        if p.get("svc__gamma") not in gammas:
            gammas.append(p.get("svc__gamma"))
    template = clone(svc).set_params(kernel="precomputed")
    splits = list(cv.split(X, y, groups))
    scores = np.empty((len(candidates), len(splits)), dtype=np.float64)
    search = KernelGridSearch(cv, scoring, param_grid)
    search.n_splits_ = cv.get_n_splits(X, y, groups)

    n_jobs = effective_n_jobs(jobs)  # joblib's reading of jobs (-1: all cores)
    n_val_max = max((len(val) for _, val in splits), default=0)
    n_tr_max = max((len(tr) for tr, _ in splits), default=0)
    workers = concurrent_tasks(n_jobs, kernel_bytes(n_tr_max, kernel, n_val_max), kernel_bytes(len(X), kernel),
                               len(splits))
    refit: dict = {}

    def split_task(s: int) -> None:
        tr, val = splits[s]
        scores[:, s] = _split_scores(X, y, tr, val, kernel, gammas, candidates, template)

    def refit_task() -> None:
        t0 = time.perf_counter()
        scaler, (X_all,) = _standardize(X, np.arange(len(X)))
        km = TrainingKernel(kernel).fit(X_all)
        refit.update(scaler=scaler, X_all=X_all, km=km, base=km.base(), seconds=time.perf_counter() - t0)

    # Every kernel is computed by ONE BLAS thread, whatever ``jobs``: OpenBLAS rounds a product
    # differently with 1 and 2 threads (~1e-13), so a thread count inside the kernels would make the
    # predictions depend on --threads. Parallelism comes from running whole inner splits (and the
    # refit's kernel, which does not depend on the choice) side by side in threads: numpy's BLAS calls
    # and libsvm release the GIL. Each task's arithmetic is the sequential path's, so the scores, the
    # choice and the refit are bit-identical for every ``jobs`` (tests/baselines/test_kernel_grid_parallel.py).
    with one_blas_thread():
        if workers == 1:  # the order of the fits as in GridSearchCV: splits in order, then the refit
            for s in range(len(splits)):
                split_task(s)
            refit_task()
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                # the refit's kernel does not depend on the choice: computed while the splits run
                for fut in [pool.submit(refit_task)] + [pool.submit(split_task, s) for s in range(len(splits))]:
                    fut.result()

        # GridSearchCV's ranking: mean over splits, rank with ties at the minimum, first best.
        means = np.average(scores, axis=1)
        ranks = rankdata(-means, method="min").astype(np.int32, copy=False)
        best = int(ranks.argmin())
        search.cv_results_ = {
            "params": candidates, "mean_test_score": means,
            "std_test_score": np.sqrt(np.average((scores - means[:, None]) ** 2, axis=1)),
            "rank_test_score": ranks,
            **{f"split{s}_test_score": scores[:, s] for s in range(len(splits))},
        }
        search.best_index_ = best
        search.best_params_ = candidates[best]
        search.best_score_ = means[best]

        t0 = time.perf_counter()
        gamma = search.best_params_.get("svc__gamma")
        X_all, km, base = refit["X_all"], refit["km"], refit.pop("base")
        g = None if kernel == "linear" else (scale_gamma(X_all) if gamma == "scale" else float(gamma))
        km.gamma = g
        model = clone(template).set_params(C=search.best_params_["svc__C"]).fit(km.finish(base, out=base), y)
        del base
        search.best_estimator_ = Pipeline([("scaler", refit["scaler"]), ("kernel", km), ("svc", model)])
        search.refit_time_ = refit["seconds"] + time.perf_counter() - t0
    return search


__all__ = ["KERNELS", "KernelGridSearch", "TrainingKernel", "kernel_bytes", "kernel_grid_search", "scale_gamma"]
