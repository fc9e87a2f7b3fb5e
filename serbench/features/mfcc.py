"""MFCC feature set: 13 mel-frequency cepstral coefficients and their paper statistics.

Frame analysis shared with :mod:`serbench.features.plp` and :mod:`serbench.features.huwsf`
(so that their frames align): 25 ms Hamming window, 10 ms hop, FFT size = window
length (400 points at 16 kHz), frames taken without centre padding -- frame ``t``
covers samples ``[t * hop, t * hop + win)``, so no reflected or zero-padded audio is
analysed and a signal shorter than one window has 0 frames.

MFCC pipeline (per frame):

1. pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``y[0] = x[0]``), the HTK/openSMILE
   convention for speech cepstra;
2. power spectrum ``|FFT|^2`` of the Hamming-windowed frame;
3. 40 triangular mel filters (librosa's Slaney mel scale and area normalisation,
   0 Hz to Nyquist);
4. ``10 log10(max(E, 1e-10))``: dB with a fixed absolute floor, *not* librosa's
   per-utterance ``top_db`` clipping, so a frame's value does not depend on the
   loudest frame of its utterance;
5. orthonormal DCT-II, coefficients ``c0 .. c12``.

Steps 2 and 3 were defined with ``librosa.stft`` and ``librosa.filters.mel``;
:mod:`serbench.features.spectrum` gives the same values to the bit without importing librosa.

Why ``c0 .. c12`` rather than ``c1 .. c12`` + log energy: ``c0`` is (up to a constant
factor) the mean log mel-band energy, i.e. a perceptually weighted log energy, which
carries the loudness cues that separate e.g. anger from sadness; taking it from the
same filterbank avoids a second energy definition and keeps all 13 coefficients on one
scale. Utterance statistics follow :func:`serbench.features.functionals.paper_statistics`.
"""
from __future__ import annotations

import numpy as np

from serbench.features import spectrum
from serbench.features.functionals import check_signal, paper_statistics, statistic_names

VERSION = "1"

PARAMS: dict = {
    "win_ms": 25.0,
    "hop_ms": 10.0,
    "window": "hamming",
    "preemphasis": 0.97,
    "n_mels": 40,
    "fmin": 0.0,
    "fmax": None,  # Nyquist
    "mel_scale": "slaney",
    "log": "10*log10(max(E, 1e-10))",
    "dct": "II-ortho",
    "n_coefficients": 13,  # c0 .. c12
    "differences": "numpy.diff orders 1 and 2",
}

_LOG_FLOOR = 1e-10


def frame_sizes(sr: int, win_ms: float = PARAMS["win_ms"], hop_ms: float = PARAMS["hop_ms"]) -> tuple[int, int]:
    """Window and hop length in samples at ``sr`` (400 and 160 at 16 kHz)."""
    return int(round(win_ms * sr / 1000.0)), int(round(hop_ms * sr / 1000.0))


def n_frames(n_samples: int, sr: int) -> int:
    """Number of complete analysis frames in ``n_samples`` samples (0 if shorter than a window)."""
    win, hop = frame_sizes(sr)
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


def preemphasis(signal: np.ndarray, coef: float = PARAMS["preemphasis"]) -> np.ndarray:
    """First-order high-pass ``y[n] = x[n] - coef * x[n-1]`` with ``y[0] = x[0]``; shape (n,)."""
    x = np.asarray(signal, dtype=np.float64)
    y = x.copy()
    y[1:] -= coef * x[:-1]
    return y


def power_spectrogram(signal: np.ndarray, sr: int) -> np.ndarray:
    """Power spectrum of each frame of the standard framing (see module docstring).

    Parameters
    ----------
    signal : ndarray, shape (n,)
    sr : int

    Returns
    -------
    ndarray, shape (win // 2 + 1, T), float64; ``T`` may be 0.
    """
    x = np.asarray(signal, dtype=np.float64)
    win, hop = frame_sizes(sr)
    if x.size < win:
        return np.zeros((win // 2 + 1, 0))
    return spectrum.power_spectrogram(x, win, hop, PARAMS["window"])


def log_mel_energies(power: np.ndarray, sr: int, n_mels: int = PARAMS["n_mels"]) -> np.ndarray:
    """Log mel-band energies in dB (fixed floor) from a power spectrogram.

    Parameters
    ----------
    power : ndarray, shape (n_fft // 2 + 1, T)

    Returns
    -------
    ndarray, shape (n_mels, T), float64
    """
    return 10.0 * np.log10(np.maximum(mel_energies(power, sr, n_mels), _LOG_FLOOR))


def mel_energies(power: np.ndarray, sr: int, n_mels: int = PARAMS["n_mels"]) -> np.ndarray:
    """Mel filterbank energies (linear power) of a power spectrogram; shape (n_mels, T)."""
    n_fft = 2 * (power.shape[0] - 1)
    return spectrum.mel_filterbank(sr, n_fft, n_mels, PARAMS["fmin"], sr / 2.0, dtype=np.float64) @ power


def cepstrum(log_energies: np.ndarray, n_coefficients: int = PARAMS["n_coefficients"]) -> np.ndarray:
    """Orthonormal DCT-II over bands; (n_bands, T) -> (T, n_coefficients), coefficients c0 first."""
    import scipy.fft

    return scipy.fft.dct(log_energies, type=2, norm="ortho", axis=0)[:n_coefficients].T


def lld(signal: np.ndarray, sr: int) -> np.ndarray:
    """MFCC ``c0 .. c12`` per frame.

    Parameters
    ----------
    signal : ndarray, shape (n,)
        Mono audio, float (16 kHz normally).
    sr : int

    Returns
    -------
    ndarray, shape (T, 13), float64; ``T = 1 + (n - win) // hop`` (0 when ``n < win``).
    """
    x = check_signal(signal, sr)
    power = power_spectrogram(preemphasis(x), sr)
    return cepstrum(log_mel_energies(power, sr))


def lld_names() -> list[str]:
    """``mfcc0 .. mfcc12``, the columns of :func:`lld`."""
    return [f"mfcc{i}" for i in range(PARAMS["n_coefficients"])]


def extract(signal: np.ndarray, sr: int) -> np.ndarray:
    """Utterance features, shape (312,) = 13 MFCCs x (contour, d1, d2) x 8 statistics.

    NaN throughout when the signal has fewer than 3 frames (about 45 ms at 16 kHz).
    """
    return paper_statistics(lld(signal, sr))


def feature_names() -> list[str]:
    """Names of :func:`extract`'s outputs, e.g. ``mfcc0_mean``, ``mfcc0_d1_std``."""
    return statistic_names(lld_names())
