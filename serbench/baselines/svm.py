"""SVM baselines of the paper's Table V: standardize + SVM, hyper-parameters by grouped inner CV.

Grids (over the standardized features):

- ``svm-linear``: linear kernel, ``C`` in ``logspace(-4, 1, 6)`` = 1e-4 ... 10. High-dimensional
  functionals (IS10: 1582 dimensions for ~1000 utterances) are nearly separable, so the best
  C is often small; the grid reaches well below libsvm's default of 1.
- ``svm-rbf``: RBF kernel, ``C`` in {0.1, 1, 10, 100} x ``gamma`` in {'scale', 1e-4, 1e-3, 1e-2}
  ('scale' = 1 / (n_features * var(X)), which is 1 / n_features after standardization).
- ``svm-liblinear`` (not a paper setting; for corpora too large for a kernel matrix, see
  below): :class:`~sklearn.svm.LinearSVC` (liblinear: squared hinge loss, L2 penalty,
  one-vs-rest, primal or dual solver chosen by shape), ``C`` in ``logspace(-5, 0, 6)``;
  memory and time grow linearly with the training rows.

Model selection (:func:`select_model`) uses only the training rows of a fold, a
speaker-grouped inner CV (:func:`serbench.experiments.protocol.inner_cv`) and
``balanced_accuracy`` scoring, which is UA (mean per-class recall); each inner split
standardizes with a scaler fitted on its own training rows, and the winning setting
(the first best in grid order) is refit on all training rows.

For ``svm-linear`` and ``svm-rbf`` the default ``method='kernel'``
(:mod:`serbench.baselines.kernel_grid`) computes each split's kernel matrix once with BLAS
and fits every ``C`` on it with a precomputed-kernel SVC: the choice of
``GridSearchCV(Pipeline(StandardScaler, SVC))`` (``method='grid'``, kept for comparison), an
order of magnitude sooner. A kernel matrix costs ``8 n^2`` bytes for ``n`` training rows
(RBF holds about twice that during the inner CV), so ``method='kernel'`` refuses folds of
more than :data:`MAX_KERNEL_ROWS` training rows with a :class:`BaselineError`: use
``svm-liblinear`` there (a different classifier, named as such in the results), or
``method='grid'`` if hours of libsvm are acceptable. Nothing is swapped silently.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from serbench.errors import SerbenchError
from serbench.experiments.protocol import inner_cv

if TYPE_CHECKING:  # scikit-learn loads where a model is fitted: a client that only plans folds never needs it
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from serbench.baselines.kernel_grid import KernelGridSearch

CLASSIFIERS: tuple[str, ...] = ("svm-linear", "svm-rbf", "svm-liblinear")
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
#: How :func:`select_model` searches the kernel SVMs' grid: precomputed kernels, or GridSearchCV.
METHODS: tuple[str, ...] = ("kernel", "grid")
#: Inner-CV scoring: balanced accuracy is UA, the paper's class-balanced metric.
SCORING = "balanced_accuracy"
#: The most training rows ``method='kernel'`` accepts: the refit's kernel then takes 3.2 GB,
#: an RBF inner split at most 6.4 GB, well inside a 24 GiB machine next to the data.
MAX_KERNEL_ROWS = 20_000
_KERNELS = {"svm-linear": "linear", "svm-rbf": "rbf"}


class BaselineError(SerbenchError):
    """A baseline cannot run as configured (unknown classifier, unusable data)."""


def param_grid(classifier: str) -> dict[str, list]:
    """The hyper-parameter grid of ``classifier`` (one of :data:`CLASSIFIERS`), keyed for the pipeline."""
    if classifier == "svm-linear":
        return {"svc__C": [float(c) for c in np.logspace(-4, 1, 6)]}
    if classifier == "svm-rbf":
        return {"svc__C": [0.1, 1.0, 10.0, 100.0], "svc__gamma": ["scale", 1e-4, 1e-3, 1e-2]}
    if classifier == "svm-liblinear":
        return {"svc__C": [float(c) for c in np.logspace(-5, 0, 6)]}
    raise BaselineError(f"unknown classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")


def _class_weight(class_weight: str | None) -> str | None:
    if class_weight in (None, "none"):
        return None
    if class_weight == "balanced":
        return "balanced"
    raise BaselineError(f"unknown class weight {class_weight!r}; choose one of {', '.join(CLASS_WEIGHTS)}")


def make_svm(classifier: str = "svm-linear", seed: int = 0, *,
             class_weight: str | None = None) -> tuple[Pipeline, dict[str, list]]:
    """An unfitted ``Pipeline(StandardScaler, svc)`` and its hyper-parameter grid.

    Parameters
    ----------
    classifier : one of :data:`CLASSIFIERS`
        'svm-linear' / 'svm-rbf': ``SVC`` (libsvm); 'svm-liblinear': ``LinearSVC``. See the
        module docstring for each grid.
    seed : int
        ``random_state=seed``; libsvm's solver is deterministic (the seed is recorded for
        completeness), liblinear's dual solver shuffles with it.
    class_weight : None/'none' (default, as the paper) or 'balanced'
        'balanced' weights classes inversely to their frequency in the training rows.

    The pipeline takes X of shape (n_rows, n_features) float and y (n_rows,) labels;
    ``decision_function`` gives one-vs-rest scores of shape (n_rows, n_classes).
    """
    grid = param_grid(classifier)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise BaselineError(f"seed must be an integer, got {seed!r}")
    if classifier == "svm-liblinear":
        # dual='auto' takes the primal solver when rows outnumber features: linear in the rows.
        from sklearn.svm import LinearSVC

        svc = LinearSVC(class_weight=_class_weight(class_weight), dual="auto", random_state=int(seed),
                        max_iter=10_000)
    else:
        from sklearn.svm import SVC

        svc = SVC(kernel=_KERNELS[classifier], class_weight=_class_weight(class_weight),
                  decision_function_shape="ovr", random_state=int(seed), cache_size=500)
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scaler", StandardScaler()), ("svc", svc)]), grid


def check_kernel_rows(n_train: int, classifier: str) -> None:
    """Raise :class:`BaselineError` when ``n_train`` rows exceed :data:`MAX_KERNEL_ROWS` for a kernel SVM."""
    if classifier in _KERNELS and n_train > MAX_KERNEL_ROWS:
        from serbench.baselines.kernel_grid import kernel_bytes

        gib = kernel_bytes(n_train, _KERNELS[classifier]) / 2**30
        raise BaselineError(
            f"{classifier} with precomputed kernels needs a {n_train} x {n_train} kernel matrix ({gib:.1f} GiB, "
            f"more during the inner CV) for this fold's {n_train} training rows, above the limit of "
            f"{MAX_KERNEL_ROWS} rows; use --classifier svm-liblinear (a linear SVM by liblinear, memory linear "
            "in the rows) or fewer rows (--emotions)")


def select_model(X: np.ndarray, y: Sequence, speakers: Sequence, *, classifier: str = "svm-linear",
                 seed: int = 0, class_weight: str | None = None, jobs: int = 1,
                 method: str = "kernel") -> KernelGridSearch | GridSearchCV:
    """Select hyper-parameters on one fold's TRAINING rows only; return the search, refit on them.

    ``X`` (n_train, n_features), ``y`` (n_train,), ``speakers`` (n_train,): the inner CV holds
    out whole training speakers (:func:`~serbench.experiments.protocol.inner_cv`), so the
    chosen hyper-parameters are those that generalize to unseen speakers. ``jobs``
    parallelizes the grid.

    ``method='kernel'`` (default; 'svm-linear' and 'svm-rbf') searches over precomputed
    kernels (:func:`~serbench.baselines.kernel_grid.kernel_grid_search`) and raises
    :class:`BaselineError` above :data:`MAX_KERNEL_ROWS` training rows; ``method='grid'`` is
    ``GridSearchCV(Pipeline(StandardScaler, SVC))``, which chooses the same. 'svm-liblinear'
    always uses ``GridSearchCV``. Either result has ``predict``, ``decision_function``
    (n_rows, n_classes), ``classes_``, ``best_params_`` (e.g. ``{'svc__C': 0.01}``),
    ``best_score_`` (inner-CV UA), ``refit_time_``, ``n_splits_``, ``cv`` and ``best_estimator_``.
    """
    if method not in METHODS:
        raise BaselineError(f"unknown model-selection method {method!r}; choose one of {', '.join(METHODS)}")
    pipe, grid = make_svm(classifier, seed, class_weight=class_weight)
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise BaselineError(f"the training rows hold one class only ({np.unique(y).tolist()}); "
                            "an SVM needs at least 2 emotions: check --emotions")
    groups = np.asarray(speakers, dtype=str)
    cv = inner_cv(groups)
    if method == "kernel" and classifier in _KERNELS:
        check_kernel_rows(len(y), classifier)
        from serbench.baselines.kernel_grid import kernel_grid_search

        return kernel_grid_search(X, y, groups, cv=cv, kernel=_KERNELS[classifier], param_grid=grid,
                                  svc=pipe.named_steps["svc"], scoring=SCORING, jobs=jobs)
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(pipe, grid, scoring=SCORING, cv=cv, n_jobs=jobs, refit=True, error_score="raise")
    search.fit(X, y, groups=groups)
    return search


def decision_scores(model, X: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """One-vs-rest decision scores of shape (n_rows, len(labels)), columns in ``labels`` order.

    Classes absent from the model's training rows get NaN; with two classes libsvm returns one
    score for ``classes_[1]``, which is spread to (-s, s).
    """
    d = np.asarray(model.decision_function(X), dtype=np.float64)
    classes = [str(c) for c in model.classes_]
    if d.ndim == 1:
        d = np.column_stack([-d, d])
    out = np.full((len(X), len(labels)), np.nan)
    for j, c in enumerate(classes):
        out[:, list(labels).index(c)] = d[:, j]
    return out


__all__ = ["CLASSIFIERS", "CLASS_WEIGHTS", "METHODS", "SCORING", "MAX_KERNEL_ROWS", "BaselineError", "make_svm",
           "param_grid", "check_kernel_rows", "select_model", "decision_scores"]
