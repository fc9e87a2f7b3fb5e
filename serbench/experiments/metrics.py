"""Metrics of SER papers, always computed from predictions.

WA (weighted accuracy) is plain accuracy; UA (unweighted accuracy) is the mean of
per-class recalls over the classes present in ``y_true``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def weighted_accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of correct predictions."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    _check(t, p)
    return float(np.mean(t == p))


def per_class_recall(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Recall of each class present in ``y_true``, keyed by label, sorted by label."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    _check(t, p)
    return {str(c): float(np.mean(p[t == c] == c)) for c in sorted(np.unique(t))}


def unweighted_accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    return float(np.mean(list(per_class_recall(y_true, y_pred).values())))


def confusion(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> pd.DataFrame:
    """Counts, rows = true label, columns = predicted label, in ``labels`` order."""
    labels = [str(x) for x in labels]
    index = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)):
        if t in index and p in index:  # pairs outside ``labels`` are not counted, as scikit-learn's
            m[index[t], index[p]] += 1
    return pd.DataFrame(m, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))


def summarize(predictions: pd.DataFrame) -> dict:
    """Pooled and per-fold WA/UA of a predictions table (columns ``fold``, ``true``, ``predicted``).

    Returns ``{"wa", "ua", "wa_mean", "wa_sd", "ua_mean", "ua_sd", "per_class_recall", "folds": [...]}``;
    sd is the sample standard deviation over folds (ddof=1; NaN for one fold).
    """
    if predictions.empty:
        raise ValueError("no predictions to summarize")
    folds = []
    for fold, g in predictions.groupby("fold", sort=True):
        folds.append({"fold": str(fold), "n_test": int(len(g)),
                      "wa": weighted_accuracy(g["true"], g["predicted"]),
                      "ua": unweighted_accuracy(g["true"], g["predicted"])})
    wa_f = np.array([f["wa"] for f in folds])
    ua_f = np.array([f["ua"] for f in folds])
    sd = (lambda a: float(np.std(a, ddof=1)) if len(a) > 1 else float("nan"))
    return {
        "wa": weighted_accuracy(predictions["true"], predictions["predicted"]),
        "ua": unweighted_accuracy(predictions["true"], predictions["predicted"]),
        "wa_mean": float(wa_f.mean()), "wa_sd": sd(wa_f),
        "ua_mean": float(ua_f.mean()), "ua_sd": sd(ua_f),
        "per_class_recall": per_class_recall(predictions["true"], predictions["predicted"]),
        "folds": folds,
    }


def _check(t: np.ndarray, p: np.ndarray) -> None:
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} labels but y_pred has {p.shape[0]}")
    if t.size == 0:
        raise ValueError("empty label arrays")
