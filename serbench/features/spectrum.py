"""Short-time power spectra and Slaney mel filterbanks in numpy, with librosa's arithmetic.

The frame-based feature sets (MFCC, PLP, HuWSF, melseg) used ``librosa.stft`` and
``librosa.filters.mel``; importing librosa (numba, scipy.signal, ...) costs more than a
second, which ``serbench predict`` paid on every call. These functions repeat librosa
0.11's operations in the same order -- scipy's periodic cosine window, ``numpy.fft.rfft``
of the windowed frames, ``|X| ** 2``, the Slaney mel points and area normalisation -- so
their values are bit-identical to librosa's (tests/features/test_spectrum.py compares
them), and feature caches and model bundles keyed on the old values stay valid.

Framing is the uncentred one of :mod:`serbench.features.mfcc`: frame ``t`` covers samples
``[t * hop, t * hop + n_fft)``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: ``alpha`` of the generalized Hamming windows ``alpha - (1 - alpha) cos(2 pi n / N)``.
_COSINE_WINDOWS = {"hamming": 0.54, "hann": 0.5}

#: Frames transformed per step: bounds the windowed-frame and complex temporaries (~4 MB at 400 points).
_BLOCK_FRAMES = 1024


def periodic_window(name: str, n: int) -> np.ndarray:
    """``scipy.signal.get_window(name, n, fftbins=True)`` for ``'hamming'`` and ``'hann'``; float64 (n,).

    Written as scipy writes it (a cosine sum over ``n + 1`` points of ``linspace(-pi, pi)``,
    the last point dropped), so the values are the same to the bit.
    """
    if name not in _COSINE_WINDOWS:
        raise ValueError(f"window {name!r} is not supported; choose from {sorted(_COSINE_WINDOWS)}")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"window length must be a positive integer, got {n!r}")
    n = int(n)
    if n == 1:
        return np.ones(1, dtype=np.float64)
    alpha = _COSINE_WINDOWS[name]
    fac = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    w = np.zeros(n + 1, dtype=np.float64)
    for k, a in enumerate(np.asarray([alpha, 1.0 - alpha], dtype=np.float64)):
        w += a * np.cos(k * fac)
    return w[:-1]


def power_spectrogram(signal: np.ndarray, n_fft: int, hop: int, window: str = "hamming") -> np.ndarray:
    """``|rfft(window * frame)| ** 2`` of every complete frame, as ``abs(librosa.stft(center=False)) ** 2``.

    Parameters
    ----------
    signal : ndarray, shape (n,), float64
        At least ``n_fft`` samples.
    n_fft : int
        Frame length = window length = FFT size.
    hop : int

    Returns
    -------
    ndarray, shape (n_fft // 2 + 1, T), float64, ``T = 1 + (n - n_fft) // hop``; a transposed
    C-contiguous array (frames in rows in memory), the layout librosa's STFT has.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or x.size < n_fft:
        raise ValueError(f"need a 1-D signal of at least n_fft={n_fft} samples, got shape {x.shape}")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]      # (T, n_fft) view, no copy
    win = periodic_window(window, n_fft)
    out = np.empty((frames.shape[0], n_fft // 2 + 1), dtype=np.float64)
    for t0 in range(0, frames.shape[0], _BLOCK_FRAMES):
        spec = np.fft.rfft(frames[t0:t0 + _BLOCK_FRAMES] * win, axis=-1)
        # abs then square, not re**2 + im**2: librosa's order, so the bits agree.
        out[t0:t0 + _BLOCK_FRAMES] = np.abs(spec) ** 2.0
    return out.T


def hz_to_mel(frequencies: float | np.ndarray) -> float | np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as ``librosa.hz_to_mel(htk=False)``."""
    frequencies = np.asanyarray(frequencies)
    f_sp = 200.0 / 3
    mels = frequencies / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    if frequencies.ndim:
        log_t = frequencies >= min_log_hz
        mels[log_t] = min_log_mel + np.log(frequencies[log_t] / min_log_hz) / logstep
    elif frequencies >= min_log_hz:
        mels = min_log_mel + np.log(frequencies / min_log_hz) / logstep
    return mels


def mel_to_hz(mels: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`hz_to_mel`, as ``librosa.mel_to_hz(htk=False)``."""
    mels = np.asanyarray(mels)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    if mels.ndim:
        log_t = mels >= min_log_mel
        freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    elif mels >= min_log_mel:
        freqs = min_log_hz * np.exp(logstep * (mels - min_log_mel))
    return freqs


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                   dtype: type = np.float64) -> np.ndarray:
    """Triangular Slaney mel filters with Slaney area normalisation.

    The same matrix as ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
    fmax=fmax, htk=False, norm="slaney", dtype=dtype)``: filter ``i`` rises from mel point
    ``i`` to ``i + 1`` and falls to ``i + 2`` (``n_mels + 2`` points equally spaced in mel
    from ``fmin`` to ``fmax``, default Nyquist), scaled by ``2 / (f[i + 2] - f[i])`` so
    every filter has the same area in Hz.

    Returns
    -------
    ndarray, shape (n_mels, n_fft // 2 + 1), ``dtype``; read-only (cached per argument set).
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    return _mel_filterbank(float(sr), int(n_fft), int(n_mels), float(fmin), float(fmax), np.dtype(dtype))


@lru_cache(maxsize=16)
def _mel_filterbank(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float, dtype: np.dtype) -> np.ndarray:
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=dtype)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))   # computed in float64, stored as dtype
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    weights.flags.writeable = False
    return weights
