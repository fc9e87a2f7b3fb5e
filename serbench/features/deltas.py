"""Savitzky-Golay deltas (``librosa.feature.delta``) without importing :mod:`scipy.signal`.

``librosa.feature.delta`` is ``scipy.signal.savgol_filter(x, width, polyorder=order,
deriv=order, axis=-1, mode=mode)``; importing scipy.signal costs ``serbench predict`` about
0.8 s, while the two modules the filter actually runs on (:mod:`scipy.ndimage` and
:mod:`scipy.linalg`) cost about a third of that. :func:`savgol_delta` makes the same library
calls as SciPy 1.17's ``savgol_filter`` on the same arrays, so its values are the same to the
bit (tests/features/test_melseg_deltas.py compares them):

- the filter taps are ``savgol_coeffs(width, order, deriv=order)``, stored below as exact
  float64 constants for the widths melseg uses (3, 5, 7, 9) and orders 1 and 2;
- the interior is ``scipy.ndimage.convolve1d`` with those taps (``mode='constant'`` under
  'interp', else the requested mode);
- in 'interp' mode the first and last ``width // 2`` frames come from a least-squares
  polynomial of degree ``order`` fitted to the first / last ``width`` frames: the same
  column-scaled Vandermonde matrix, ``scipy.linalg.lstsq`` call and ``cond``, coefficient
  unscaling, derivative and Horner evaluation as SciPy's edge fit.

Anything else (another width or order, not a 2-D float64 array, another mode) is handed to
``scipy.signal.savgol_filter`` itself: slower to import, never different.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: ``scipy.signal.savgol_coeffs(width, order, deriv=order)`` (convolution order, delta 1) as
#: ``float.hex`` strings, keyed ``(order, width)``. The values are SciPy's lstsq solution to the
#: last bit, so they are stored, not derived from the closed-form Savitzky-Golay weights.
_COEFFS: dict[tuple[int, int], tuple[str, ...]] = {
    (1, 3): (
        "0x1.0000000000000p-1", "0x1.0000000000000p-55", "-0x1.0000000000001p-1",
    ),
    (1, 5): (
        "0x1.999999999999bp-3", "0x1.9999999999998p-4", "-0x1.816d383866f7ap-57", "-0x1.999999999999ep-4",
        "-0x1.999999999999ep-3",
    ),
    (1, 7): (
        "0x1.b6db6db6db6ddp-4", "0x1.2492492492493p-4", "0x1.2492492492493p-5", "-0x1.c937005c70c08p-59",
        "-0x1.2492492492493p-5", "-0x1.2492492492493p-4", "-0x1.b6db6db6db6ddp-4",
    ),
    (1, 9): (
        "0x1.1111111111111p-4", "0x1.999999999999cp-5", "0x1.1111111111110p-5", "0x1.111111111110fp-6",
        "-0x1.8000000000000p-57", "-0x1.1111111111115p-6", "-0x1.1111111111114p-5", "-0x1.999999999999cp-5",
        "-0x1.1111111111112p-4",
    ),
    (2, 3): (
        "0x1.0000000000001p+0", "-0x1.0000000000001p+1", "0x1.ffffffffffffep-1",
    ),
    (2, 5): (
        "0x1.2492492492490p-2", "-0x1.2492492492495p-3", "-0x1.2492492492493p-2", "-0x1.2492492492495p-3",
        "0x1.2492492492491p-2",
    ),
    (2, 7): (
        "0x1.e79e79e79e79ap-4", "0x1.1e58cce6d609cp-59", "-0x1.2492492492491p-4", "-0x1.8618618618616p-4",
        "-0x1.2492492492492p-4", "-0x1.5c34e663253ecp-56", "0x1.e79e79e79e798p-4",
    ),
    (2, 9): (
        "0x1.f07c1f07c1f07p-5", "0x1.f07c1f07c1f13p-7", "-0x1.1bb4a4046ed25p-6", "-0x1.2d6fee44b5bf8p-5",
        "-0x1.62a1cd058a870p-5", "-0x1.2d6fee44b5bf8p-5", "-0x1.1bb4a4046ed21p-6", "0x1.f07c1f07c1f0ep-7",
        "0x1.f07c1f07c1f08p-5",
    ),
}


def savgol_coeffs(width: int, order: int) -> np.ndarray:
    """The stored taps for ``(width, order)``: float64 ``(width,)``, read-only; KeyError if none are stored."""
    return _coeffs(int(width), int(order))


@lru_cache(maxsize=None)
def _coeffs(width: int, order: int) -> np.ndarray:
    taps = np.array([float.fromhex(h) for h in _COEFFS[(order, width)]], dtype=np.float64)
    taps.flags.writeable = False
    return taps


def savgol_delta(x: np.ndarray, width: int, order: int, mode: str = "interp") -> np.ndarray:
    """``scipy.signal.savgol_filter(x, width, polyorder=order, deriv=order, delta=1.0, axis=-1, mode=mode)``.

    Parameters
    ----------
    x : ndarray, shape (rows, T)
        float64 rows filtered along the last axis; ``T >= width`` in 'interp' mode.
    width : int
        Odd window length.
    order : int
        Polynomial order, which is also the derivative taken (1: delta, 2: delta-delta).
    mode : str
        'interp' or any mode ``savgol_filter`` accepts.

    Returns
    -------
    ndarray, shape (rows, T), float64: a new array, bit-identical to ``savgol_filter``'s.
    """
    x = np.asarray(x)
    if (order, width) not in _COEFFS or mode not in ("interp", "nearest") or x.ndim != 2 \
            or x.dtype != np.float64:
        from scipy.signal import savgol_filter

        return savgol_filter(x, width, polyorder=order, deriv=order, delta=1.0, axis=-1, mode=mode)
    from scipy.ndimage import convolve1d

    taps = _coeffs(width, order)
    if mode == "nearest":
        return convolve1d(x, taps, axis=-1, mode="nearest", cval=0.0)
    n = x.shape[-1]
    if width > n:
        raise ValueError(f"interp mode needs at least width={width} frames along the last axis, got {n}")
    y = convolve1d(x, taps, axis=-1, mode="constant")
    half = width // 2
    y[:, :half] = _edge_derivative(x[:, :width], order, 0, half)
    y[:, n - half:] = _edge_derivative(x[:, n - width:], order, width - half, width)
    return y


def _edge_derivative(window: np.ndarray, order: int, start: int, stop: int) -> np.ndarray:
    """The ``order``-th derivative of each row's degree-``order`` least-squares polynomial over its
    ``width`` frames (positions 0 .. width-1), at positions ``start .. stop-1``: shape (rows, stop - start).

    Every operation is SciPy's edge fit's, on arrays of the same shape, dtype and layout, so rounding
    agrees: the frames go to lstsq as the transposed view SciPy passes.
    """
    from scipy.linalg import lstsq

    width = window.shape[-1]
    t = np.arange(0, width, dtype=np.float64)
    powers = np.flip(np.arange(order + 1, dtype=np.float64))
    lhs = t[:, None] ** powers[None, :]
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))
    lhs /= scale
    coef = lstsq(lhs, window.T, cond=width * np.finfo(np.float64).eps)[0]
    coef = (coef.T / scale).T                         # highest power first, one column per row of x
    # differentiate `order` times: of a degree-`order` polynomial only the leading term is left
    n_coef = coef.shape[0]
    deriv = np.array(coef[:n_coef - order], copy=True)
    for k in range(order):
        deriv *= np.arange(n_coef - k - 1, order - k - 1, -1, dtype=np.float64).reshape(n_coef - order, 1)
    at = np.arange(start, stop, dtype=np.float64).reshape(-1, 1)
    values = np.zeros_like(at)
    for row in deriv:                                 # Horner
        values = values * at + row
    return (values / (1.0 ** order)).T
