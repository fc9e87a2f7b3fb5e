"""SVM baselines of the paper's Table V: standardize + SVC, hyper-parameters by grouped inner CV.

Grids (over the standardized features):

- ``svm-linear``: linear kernel, ``C`` in ``logspace(-4, 1, 6)`` = 1e-4 ... 10. High-dimensional
  functionals (IS10: 1582 dimensions for ~1000 utterances) are nearly separable, so the best
  C is often small; the grid reaches well below libsvm's default of 1.
- ``svm-rbf``: RBF kernel, ``C`` in {0.1, 1, 10, 100} x ``gamma`` in {'scale', 1e-4, 1e-3, 1e-2}
  ('scale' = 1 / (n_features * var(X)), which is 1 / n_features after standardization).

Model selection (:func:`select_model`) is a :class:`~sklearn.model_selection.GridSearchCV`
over the training rows of a fold only, with a speaker-grouped inner CV
(:func:`serbench.experiments.protocol.inner_cv`) and ``balanced_accuracy`` scoring, which is
UA (mean per-class recall). The winning setting is refit on all training rows.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from serbench.errors import SerbenchError
from serbench.experiments.protocol import inner_cv

CLASSIFIERS: tuple[str, ...] = ("svm-linear", "svm-rbf")
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
#: Inner-CV scoring: balanced accuracy is UA, the paper's class-balanced metric.
SCORING = "balanced_accuracy"


class BaselineError(SerbenchError):
    """A baseline cannot run as configured (unknown classifier, unusable data)."""


def param_grid(classifier: str) -> dict[str, list]:
    """The hyper-parameter grid of ``classifier`` ('svm-linear' | 'svm-rbf'), keyed for the pipeline."""
    if classifier == "svm-linear":
        return {"svc__C": [float(c) for c in np.logspace(-4, 1, 6)]}
    if classifier == "svm-rbf":
        return {"svc__C": [0.1, 1.0, 10.0, 100.0], "svc__gamma": ["scale", 1e-4, 1e-3, 1e-2]}
    raise BaselineError(f"unknown classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")


def _class_weight(class_weight: str | None) -> str | None:
    if class_weight in (None, "none"):
        return None
    if class_weight == "balanced":
        return "balanced"
    raise BaselineError(f"unknown class weight {class_weight!r}; choose one of {', '.join(CLASS_WEIGHTS)}")


def make_svm(classifier: str = "svm-linear", seed: int = 0, *,
             class_weight: str | None = None) -> tuple[Pipeline, dict[str, list]]:
    """An unfitted ``Pipeline(StandardScaler, SVC)`` and its hyper-parameter grid.

    Parameters
    ----------
    classifier : 'svm-linear' or 'svm-rbf'
        Kernel; see the module docstring for each grid.
    seed : int
        ``SVC(random_state=seed)``; libsvm's solver is deterministic, the seed is recorded
        for completeness.
    class_weight : None/'none' (default, as the paper) or 'balanced'
        'balanced' weights classes inversely to their frequency in the training rows.

    The pipeline takes X of shape (n_rows, n_features) float and y (n_rows,) labels;
    ``decision_function`` gives one-vs-rest scores of shape (n_rows, n_classes).
    """
    grid = param_grid(classifier)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise BaselineError(f"seed must be an integer, got {seed!r}")
    kernel = "linear" if classifier == "svm-linear" else "rbf"
    svc = SVC(kernel=kernel, class_weight=_class_weight(class_weight), decision_function_shape="ovr",
              random_state=int(seed), cache_size=500)
    return Pipeline([("scaler", StandardScaler()), ("svc", svc)]), grid


def select_model(X: np.ndarray, y: Sequence, speakers: Sequence, *, classifier: str = "svm-linear",
                 seed: int = 0, class_weight: str | None = None, jobs: int = 1) -> GridSearchCV:
    """Fit a :class:`GridSearchCV` on one fold's TRAINING rows only and return it (refit on them).

    ``X`` (n_train, n_features), ``y`` (n_train,), ``speakers`` (n_train,): the inner CV holds
    out whole training speakers (:func:`~serbench.experiments.protocol.inner_cv`), so the
    chosen hyper-parameters are those that generalize to unseen speakers. ``jobs`` parallelizes
    the grid. Use ``.best_estimator_`` / ``.predict`` / ``.decision_function`` on test rows.
    """
    pipe, grid = make_svm(classifier, seed, class_weight=class_weight)
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise BaselineError(f"the training rows hold one class only ({np.unique(y).tolist()}); "
                            "an SVM needs at least 2 emotions: check --emotions")
    search = GridSearchCV(pipe, grid, scoring=SCORING, cv=inner_cv(speakers), n_jobs=jobs, refit=True,
                          error_score="raise")
    search.fit(X, y, groups=np.asarray(speakers, dtype=str))
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


__all__ = ["CLASSIFIERS", "CLASS_WEIGHTS", "SCORING", "BaselineError", "make_svm", "param_grid",
           "select_model", "decision_scores"]
