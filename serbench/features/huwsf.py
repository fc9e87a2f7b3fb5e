"""HuWSF feature set: weighted spectral features based on local Hu moments.

Y. Sun, G. Wen and J. Wang, "Weighted spectral features based on local Hu moments for
speech emotion recognition", Biomedical Signal Processing and Control 18 (2015) 80-90.

The paper's idea (from its abstract; no public implementation exists): MFCCs ignore
how energy is distributed among neighbouring mel filters of a frame and among the same
filters of neighbouring frames. Treat the mel spectrogram as an image, describe the
local energy distribution around each time-frequency point by Hu moments of a small
neighbourhood -- they measure how strongly the energy concentrates at the local centre
of gravity, which the paper reports to vary with emotion (abrupt energy changes in
anger/joy, smooth ones in sadness/fear) -- weight the spectral energies with them, and
take cepstral-like coefficients of the weighted spectrum.

What this module computes, per frame ``t`` and mel band ``m``:

1. the MFCC front end of :mod:`serbench.features.mfcc` (pre-emphasis 0.97, 25 ms
   Hamming window, 10 ms hop, 40 Slaney mel bands), linear mel energies ``E[m, t]``
   floored at ``1e-10`` (the same floor as the log, so digital silence is a flat image);
2. the 3 x 3 neighbourhood (bands ``m-1..m+1`` x frames ``t-1..t+1``; mirrored at the
   edges of the image) normalised to unit total energy, and its first Hu invariant
   ``phi1 = eta20 + eta02`` (:func:`local_hu_phi1`): the spread of the local energy
   around its centre of gravity, in band/frame units; 0 when all energy sits in one
   point, 4/3 for a flat patch, at most 2;
3. weighted energies ``W = phi1 * E``; ``10 log10(max(W, 1e-10))``; orthonormal DCT-II
   over bands, coefficients ``c0 .. c12`` -- so HuWSF = MFCC + DCT(10 log10 phi1).

Choices where the description is vague, made here and fixed by ``PARAMS``/``VERSION``:
the image is the linear mel energy (the abstract speaks of energy and of Mel filter
coefficients), the neighbourhood is 3 x 3, the patch is normalised to unit mass before
the moments are taken (so the weight describes the *shape* of the local distribution,
not its level, which ``E`` already carries), only ``phi1`` weights the energies (it is
the invariant that measures concentration about the centroid; ``phi2 .. phi7`` describe
elongation, skew and symmetry and :func:`hu_moments` computes them for analysis), and
the weight multiplies the energy before the log (a multiplicative spectral weight, as in
weighted filter-bank analysis). Utterance statistics follow
:func:`serbench.features.functionals.paper_statistics`.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from serbench.features.functionals import FeatureInputError, check_signal, paper_statistics, statistic_names
from serbench.features.mfcc import cepstrum, mel_energies, power_spectrogram, preemphasis

VERSION = "1"

PARAMS: dict = {
    "win_ms": 25.0,
    "hop_ms": 10.0,
    "window": "hamming",
    "preemphasis": 0.97,
    "n_mels": 40,
    "mel_scale": "slaney",
    "energy_floor": 1e-10,
    "neighbourhood": 3,
    "edge": "reflect",
    "moment": "phi1 of the unit-mass patch",
    "weighting": "phi1 * E before log",
    "log": "10*log10(max(W, 1e-10))",
    "dct": "II-ortho",
    "n_coefficients": 13,  # c0 .. c12
    "differences": "numpy.diff orders 1 and 2",
}


def _central_moments(image: np.ndarray) -> tuple[float, dict[tuple[int, int], float]]:
    """Mass and central moments ``mu_pq`` (p + q in 2..3, p along columns) of an image."""
    rows, cols = np.indices(image.shape, dtype=np.float64)
    mass = float(image.sum())
    xc = float((cols * image).sum()) / mass
    yc = float((rows * image).sum()) / mass
    dx, dy = cols - xc, rows - yc
    mu = {(p, q): float((dx**p * dy**q * image).sum())
          for p, q in [(2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3)]}
    return mass, mu


def hu_moments(image: np.ndarray) -> np.ndarray:
    """The seven Hu (1962) moment invariants of a non-negative image.

    Invariant to translation, scaling and rotation (``phi7`` changes sign under
    reflection). Moments are normalised as ``eta_pq = mu_pq / mu_00^(1 + (p+q)/2)``.

    Parameters
    ----------
    image : ndarray, shape (H, W), non-negative with positive total mass.

    Returns
    -------
    ndarray, shape (7,), float64: ``phi1 .. phi7``.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or np.any(image < 0) or not np.all(np.isfinite(image)) or image.sum() <= 0:
        raise FeatureInputError("Hu moments need a finite, non-negative 2-D image with positive mass")
    mass, mu = _central_moments(image)
    eta = {pq: v / mass ** (1.0 + sum(pq) / 2.0) for pq, v in mu.items()}
    n20, n11, n02 = eta[2, 0], eta[1, 1], eta[0, 2]
    n30, n21, n12, n03 = eta[3, 0], eta[2, 1], eta[1, 2], eta[0, 3]
    a, b = n30 + n12, n21 + n03  # recurring sums
    return np.array([
        n20 + n02,
        (n20 - n02) ** 2 + 4 * n11**2,
        (n30 - 3 * n12) ** 2 + (3 * n21 - n03) ** 2,
        a**2 + b**2,
        (n30 - 3 * n12) * a * (a**2 - 3 * b**2) + (3 * n21 - n03) * b * (3 * a**2 - b**2),
        (n20 - n02) * (a**2 - b**2) + 4 * n11 * a * b,
        (3 * n21 - n03) * a * (a**2 - 3 * b**2) - (n30 - 3 * n12) * b * (3 * a**2 - b**2),
    ])


def local_hu_phi1(energies: np.ndarray, size: int = PARAMS["neighbourhood"]) -> np.ndarray:
    """``phi1`` of the unit-mass ``size x size`` neighbourhood of every point of an image.

    Equals ``hu_moments(patch / patch.sum())[0]`` for the patch centred on each point,
    with the image mirrored (``numpy.pad`` mode 'reflect') beyond its edges.

    Parameters
    ----------
    energies : ndarray, shape (M, T), strictly positive
    size : int, odd >= 3

    Returns
    -------
    ndarray, shape (M, T), float64, in ``[0, 2 * ((size // 2) ** 2)]``.
    """
    if size < 3 or size % 2 == 0:
        raise FeatureInputError(f"neighbourhood size must be odd and >= 3, got {size}")
    e = np.asarray(energies, dtype=np.float64)
    if e.ndim != 2 or np.any(e <= 0):
        raise FeatureInputError("local Hu moments need a strictly positive 2-D energy image")
    half = size // 2
    patches = sliding_window_view(np.pad(e, half, mode="reflect"), (size, size))  # (M, T, size, size)
    p = patches / patches.sum(axis=(2, 3), keepdims=True)
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    p_rows, p_cols = p.sum(axis=3), p.sum(axis=2)  # marginals over the two axes
    var_rows = p_rows @ offsets**2 - (p_rows @ offsets) ** 2
    var_cols = p_cols @ offsets**2 - (p_cols @ offsets) ** 2
    return np.maximum(var_rows + var_cols, 0.0)  # rounding can leave -1e-17


def weighted_log_mel(signal: np.ndarray, sr: int) -> np.ndarray:
    """The Hu-weighted log mel spectrogram in dB, shape (n_mels, T), before the DCT."""
    power = power_spectrogram(preemphasis(signal), sr)
    floor = PARAMS["energy_floor"]
    energies = np.maximum(mel_energies(power, sr, PARAMS["n_mels"]), floor)
    if energies.shape[1] == 0:
        return energies
    weights = local_hu_phi1(energies, PARAMS["neighbourhood"])
    return 10.0 * np.log10(np.maximum(weights * energies, floor))


def lld(signal: np.ndarray, sr: int) -> np.ndarray:
    """HuWSF coefficients ``c0 .. c12`` per frame.

    Parameters
    ----------
    signal : ndarray, shape (n,)
    sr : int

    Returns
    -------
    ndarray, shape (T, 13), float64 (``T`` as :func:`serbench.features.mfcc.lld`).
    """
    x = check_signal(signal, sr)
    return cepstrum(weighted_log_mel(x, sr), PARAMS["n_coefficients"])


def lld_names() -> list[str]:
    """``huwsf0 .. huwsf12``, the columns of :func:`lld`."""
    return [f"huwsf{i}" for i in range(PARAMS["n_coefficients"])]


def extract(signal: np.ndarray, sr: int) -> np.ndarray:
    """Utterance features, shape (312,) = 13 HuWSF x (contour, d1, d2) x 8 statistics.

    NaN throughout when the signal has fewer than 3 frames.
    """
    return paper_statistics(lld(signal, sr))


def feature_names() -> list[str]:
    """Names of :func:`extract`'s outputs, e.g. ``huwsf0_mean``, ``huwsf4_d1_kurtosis``."""
    return statistic_names(lld_names())
