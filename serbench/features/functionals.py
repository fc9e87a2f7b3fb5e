"""Utterance-level statistics of frame-level descriptors (the paper's MFCC/PLP/HuWSF sets).

Jiang et al. (CNN+SRU) summarise each low-level descriptor (LLD) contour, following
Sun, Wen and Wang (2015), by eight statistics -- mean, standard deviation, maximum,
minimum, kurtosis, skewness, range and median -- of the contour and of its first and
second-order differences. :func:`paper_statistics` computes exactly that.

Conventions (fixed here so that every set built on this module agrees):

* Differences are plain frame differences, ``d1[t] = x[t+1] - x[t]`` and
  ``d2 = diff(d1)`` (``numpy.diff``), not regression deltas: the paper says
  "first and second-order difference". ``d1`` has ``T - 1`` frames, ``d2`` ``T - 2``.
* Standard deviation, skewness and kurtosis use population moments (``ddof=0``,
  ``scipy.stats`` with ``bias=True``), as openSMILE does. Kurtosis is the *excess*
  (Fisher) kurtosis: 0 for a normal distribution.
* A contour whose variance is zero up to rounding (silence floored to a constant,
  a constant difference) has skewness 0 and excess kurtosis 0 -- the values of a
  symmetric, normal-like "no shape information" distribution -- instead of
  scipy's 0/0 = NaN. This keeps such rows usable while the extraction layer's
  'nan' status stays reserved for inputs that really carry no information.
* NaN is returned for every statistic when the utterance has fewer than
  :data:`MIN_FRAMES` frames (the second difference would be empty), and propagates
  for a descriptor column that holds NaN itself; it is never replaced by 0.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from serbench.errors import SerbenchError

STATISTICS = ("mean", "std", "max", "min", "kurtosis", "skewness", "range", "median")

#: The contours each statistic is applied to, in output order, and their name suffixes.
ORDERS = ("", "_d1", "_d2")

#: Fewest frames for which all 3 x 8 statistics are defined (``d2`` needs 3 frames).
MIN_FRAMES = 3

# A standard deviation below this fraction of the contour's magnitude is rounding
# noise (e.g. float sums of identical values); its higher moments would be garbage.
_RELATIVE_STD_TOL = 1e-9


class FeatureInputError(SerbenchError, ValueError):
    """A signal or array handed to a feature computation cannot be used as given."""


def check_signal(signal: np.ndarray, sr: int) -> np.ndarray:
    """Validate a mono signal and return it as a contiguous float64 array of shape (n,).

    Raises :class:`FeatureInputError` for a non-1-D or empty array, non-finite samples
    or a non-positive sample rate (the caller's file name is added by the extraction layer).
    """
    arr = np.asarray(signal)
    if arr.ndim != 1:
        raise FeatureInputError(f"signal must be mono with shape (n,), got shape {arr.shape}")
    if arr.size == 0:
        raise FeatureInputError("signal is empty (0 samples)")
    if not np.issubdtype(arr.dtype, np.number):
        raise FeatureInputError(f"signal must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise FeatureInputError("signal contains NaN or infinite samples")
    if int(sr) != sr or sr <= 0:
        raise FeatureInputError(f"sample rate must be a positive integer, got {sr!r}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def contour_statistics(x: np.ndarray) -> np.ndarray:
    """The 8 :data:`STATISTICS` of each column of ``x``.

    Parameters
    ----------
    x : ndarray, shape (T, D)
        ``T >= 1`` frames of ``D`` descriptors.

    Returns
    -------
    ndarray, shape (D, 8), float64, columns in :data:`STATISTICS` order.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise FeatureInputError(f"contour must have shape (T >= 1, D), got {x.shape}")
    mean = x.mean(axis=0)
    centred = x - mean
    m2 = np.mean(centred**2, axis=0)
    m3 = np.mean(centred**3, axis=0)
    m4 = np.mean(centred**4, axis=0)
    std = np.sqrt(m2)
    xmax = x.max(axis=0)
    xmin = x.min(axis=0)
    scale = np.max(np.abs(x), axis=0)
    degenerate = std <= _RELATIVE_STD_TOL * scale  # also true for an all-zero column
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(degenerate, 0.0, m3 / np.where(degenerate, 1.0, m2) ** 1.5)
        kurt = np.where(degenerate, 0.0, m4 / np.where(degenerate, 1.0, m2) ** 2 - 3.0)
    # A NaN column is not "degenerate" (NaN <= y is False), so NaN propagates, never 0.
    median = np.median(x, axis=0)
    out = np.stack([mean, std, xmax, xmin, kurt, skew, xmax - xmin, median], axis=1)
    return out


def paper_statistics(lld: np.ndarray) -> np.ndarray:
    """Statistics of LLD contours, of their first and of their second differences.

    Parameters
    ----------
    lld : ndarray, shape (T, D)
        Frame-level descriptors, one row per frame.

    Returns
    -------
    ndarray, shape (D * 3 * 8,), float64
        Descriptor-major: for descriptor 0 the 8 statistics of the contour, then of its
        first difference, then of its second difference; then descriptor 1, and so on
        (the order of :func:`statistic_names`). All NaN when ``T <`` :data:`MIN_FRAMES`.
    """
    lld = np.asarray(lld, dtype=np.float64)
    if lld.ndim != 2:
        raise FeatureInputError(f"LLD array must have shape (T, D), got {lld.shape}")
    n_frames, n_lld = lld.shape
    if n_frames < MIN_FRAMES:
        return np.full(n_lld * len(ORDERS) * len(STATISTICS), np.nan)
    d1 = np.diff(lld, n=1, axis=0)
    d2 = np.diff(lld, n=2, axis=0)
    stats = np.stack([contour_statistics(c) for c in (lld, d1, d2)], axis=1)  # (D, 3, 8)
    return stats.reshape(-1)


def statistic_names(lld_names: Sequence[str]) -> list[str]:
    """Names matching :func:`paper_statistics`, e.g. ``mfcc1_mean``, ``mfcc1_d1_mean``."""
    return [f"{name}{order}_{stat}" for name in lld_names for order in ORDERS for stat in STATISTICS]
