"""Probabilities for the SVMs: a softmax of the decision values with one temperature fitted out of fold.

The SVMs' one-vs-rest ``decision_function`` (libsvm's one-vs-one votes, 0 .. C-1, plus a
tie-break fraction in (-1/3, 1/3)) is a ranking, not a probability: its mean over windows
follows the vote counts, not how sure the model is. A model bundle turns it into
probabilities with

    p_k = exp(a * d_k) / sum_j exp(a * d_j),     a > 0,

where ``d`` are the decision values of the model fitted on all training rows and ``a`` (one
number) is fitted by maximum likelihood on **out-of-fold** decision values: the training
rows are split by speaker (:func:`serbench.experiments.protocol.inner_cv`, as the model
selection splits them), the chosen pipeline is refit on the other speakers of each split and
scores the held-out speakers' rows, so ``a`` is learned on rows its SVM never saw, from
speakers it never heard: the situation of a new recording. Never fitted on the rows the SVM
was fitted on (those are nearly separable, which would make ``a`` far too confident).

One shared slope keeps the order of the decision values, so the arg-max of the probabilities
is the arg-max of the decision values: the predicted class and the largest probability never
disagree. Measured on CASIA (IS10 ``svm-linear``, the four leave-one-speaker-out folds, 1200
test rows; ``a`` fitted on each fold's training speakers): Brier score 0.813 for a plain
softmax of the decision values, 0.758 with the fitted slope (log loss 1.81 -> 1.58, expected
calibration error 0.25 -> 0.14; ``a`` = 0.21-0.46). Per-class sigmoids (Platt scaling per
one-vs-rest column, as scikit-learn's ``CalibratedClassifierCV(method='sigmoid')``, on the
same out-of-fold values) were worse (Brier 0.778) and moved the arg-max away from the
vote on 18% of the rows (accuracy 0.407 -> 0.374). See :func:`brier_score` and
:func:`reliability` for the measures.

Shapes: decision values ``(n_rows, n_classes)`` float64, NaN for a class the model never saw
(its probability is then 0); ``y`` (n_rows,) class indices into the same columns.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

#: Bounds of the fitted log-slope ``log a``: a from e^-8 (all classes equal) to e^4 (one class ~1).
LOG_SCALE_BOUNDS = (-8.0, 4.0)


def probabilities(decisions: np.ndarray, scale: float) -> np.ndarray:
    """``softmax(scale * decisions)`` row by row, (n_rows, n_classes); NaN columns get probability 0."""
    d = np.asarray(decisions, dtype=np.float64) * float(scale)
    d = np.where(np.isnan(d), -np.inf, d)
    top = np.max(d, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(d - top)
    total = e.sum(axis=1, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


def _nll(log_scale: float, d: np.ndarray, y: np.ndarray) -> float:
    p = probabilities(d, float(np.exp(log_scale)))
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-300, None))))


def fit_scale(decisions: np.ndarray, y: Sequence[int]) -> float:
    """The slope ``a`` of :func:`probabilities` that maximizes the likelihood of ``y`` (class indices).

    ``decisions`` (n_rows, n_classes) must be out-of-fold values (see the module docstring).
    """
    from scipy.optimize import minimize_scalar

    d = np.asarray(decisions, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if d.ndim != 2 or len(d) != len(y) or len(y) == 0:
        raise ValueError(f"decisions {d.shape} and y ({len(y)},) must have the same rows, at least one")
    res = minimize_scalar(_nll, bounds=LOG_SCALE_BOUNDS, args=(d, y), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def out_of_fold_decisions(estimator: Any, X: np.ndarray, y: Sequence, groups: Sequence, labels: Sequence[str],
                          cv: Any = None) -> np.ndarray:
    """Decision values (n_rows, len(labels)) of every row from ``estimator`` refit without its speaker's split.

    ``estimator``: an unfitted (or fitted: it is cloned) pipeline with the chosen
    hyper-parameters; ``y`` class labels (strings in ``labels``); ``groups`` the speaker of
    each row; ``cv`` the splitter (default :func:`~serbench.experiments.protocol.inner_cv`).
    """
    from sklearn.base import clone

    from serbench.baselines.svm import decision_scores
    from serbench.experiments.protocol import inner_cv

    X = np.asarray(X)
    y = np.asarray(y).astype(str)
    groups = np.asarray(groups, dtype=str)
    cv = inner_cv(groups) if cv is None else cv
    out = np.full((len(y), len(labels)), np.nan)
    for tr, val in cv.split(X, y, groups):
        if len(np.unique(y[tr])) < 2:
            continue                      # one class only: no SVM; those rows stay NaN and are left out
        model = clone(estimator).fit(X[tr], y[tr])
        out[val] = decision_scores(model, X[val], labels)
    return out


def brier_score(prob: np.ndarray, y: Sequence[int]) -> float:
    """Multi-class Brier score: mean over rows of ``sum_k (p_k - [y == k])^2`` (0 best, 2 worst)."""
    prob = np.asarray(prob, dtype=np.float64)
    onehot = np.zeros_like(prob)
    onehot[np.arange(len(prob)), np.asarray(y, dtype=np.int64)] = 1.0
    return float(np.mean(np.sum((prob - onehot) ** 2, axis=1)))


def log_loss(prob: np.ndarray, y: Sequence[int]) -> float:
    """Mean negative log-probability of the true class (natural log; clipped at 1e-15)."""
    prob = np.asarray(prob, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(prob[np.arange(len(prob)), np.asarray(y, dtype=np.int64)], 1e-15, 1))))


def reliability(prob: np.ndarray, y: Sequence[int], bins: int = 10) -> list[dict]:
    """Reliability of the top probability: per bin of confidence, rows, mean confidence, accuracy.

    Returns ``[{"bin": "0.3-0.4", "n", "confidence", "accuracy"}, ...]`` for non-empty bins,
    and the expected calibration error is ``sum n * |accuracy - confidence| / N``
    (:func:`expected_calibration_error`).
    """
    prob = np.asarray(prob, dtype=np.float64)
    conf = prob.max(axis=1)
    right = prob.argmax(axis=1) == np.asarray(y, dtype=np.int64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = which == b
        if m.any():
            rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(m.sum()),
                         "confidence": float(conf[m].mean()), "accuracy": float(right[m].mean())})
    return rows


def expected_calibration_error(prob: np.ndarray, y: Sequence[int], bins: int = 10) -> float:
    """Row-weighted mean of ``|accuracy - confidence|`` over the bins of :func:`reliability`."""
    rows = reliability(prob, y, bins)
    n = sum(r["n"] for r in rows)
    return float(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / n) if n else float("nan")


__all__ = ["probabilities", "fit_scale", "out_of_fold_decisions", "brier_score", "log_loss", "reliability",
           "expected_calibration_error", "LOG_SCALE_BOUNDS"]
