"""The numpy spectra (serbench.features.spectrum) and the sets built on them give librosa's values to the bit.

The references call librosa the way the sets did before they stopped importing it, so a cached row or a
model bundle from then still matches what is computed now.
"""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal

from serbench.features import melseg, mfcc, spectrum


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _chirp(n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    return (0.3 * scipy.signal.chirp(t, f0=50.0, t1=max(t[-1], 1.0 / sr), f1=0.45 * sr)).astype(np.float32)


def _librosa_logmel3(x: np.ndarray, sr: int) -> np.ndarray:
    """melseg's values as librosa computed them: melspectrogram per chunk, log floor, delta."""
    x = np.asarray(x, dtype=np.float64)
    win, hop = mfcc.frame_sizes(sr)
    n_frames = 1 + (x.size - win) // hop
    static = np.empty((60, n_frames))
    for t0 in range(0, n_frames, melseg.CHUNK_FRAMES):
        t1 = min(n_frames, t0 + melseg.CHUNK_FRAMES)
        mel = librosa.feature.melspectrogram(
            y=x[t0 * hop:(t1 - 1) * hop + win], sr=sr, n_fft=win, hop_length=hop, win_length=win,
            window="hamming", center=False, power=2.0, n_mels=60, fmin=0.0, fmax=sr / 2.0, htk=False,
            norm="slaney")
        static[:, t0:t1] = np.log(np.maximum(mel, 1e-10))
    width, mode = melseg.delta_width(n_frames), ("interp" if n_frames >= 3 else "nearest")
    out = np.empty((3, 60, n_frames), dtype=np.float32)
    out[0] = static
    out[1] = librosa.feature.delta(static, width=width, order=1, axis=-1, mode=mode)
    out[2] = librosa.feature.delta(static, width=width, order=2, axis=-1, mode=mode)
    return out


def _n_samples(sr: int, n_frames: int, extra: int = 0) -> int:
    win, hop = mfcc.frame_sizes(sr)
    return win + hop * (n_frames - 1) + extra


@pytest.mark.parametrize("name", ["hamming", "hann"])
@pytest.mark.parametrize("n", [1, 2, 3, 200, 256, 400, 401, 551])
def test_window_is_scipys(name, n):
    assert np.array_equal(spectrum.periodic_window(name, n), scipy.signal.get_window(name, n, fftbins=True))


def test_unknown_window_or_length_is_refused():
    with pytest.raises(ValueError, match="window 'kaiser' is not supported"):
        spectrum.periodic_window("kaiser", 400)
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            spectrum.periodic_window("hamming", n)


@pytest.mark.parametrize("sr, n_fft, n_mels", [(16000, 400, 60), (8000, 200, 60), (16000, 400, 40),
                                                (8000, 200, 40), (22050, 551, 128), (16000, 512, 26)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mel_filterbank_is_librosas(sr, n_fft, n_mels, dtype):
    ours = spectrum.mel_filterbank(sr, n_fft, n_mels, dtype=dtype)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sr / 2.0, htk=False,
                              norm="slaney", dtype=dtype)
    assert ours.dtype == ref.dtype and np.array_equal(ours, ref)
    assert not ours.flags.writeable   # cached: a caller cannot change the next caller's filters


def test_mel_scale_round_trip_matches_librosa():
    hz = np.array([0.0, 100.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0, 11025.0])
    assert np.array_equal(spectrum.hz_to_mel(hz), librosa.hz_to_mel(hz, htk=False))
    assert spectrum.hz_to_mel(8000.0) == librosa.hz_to_mel(8000.0, htk=False)
    mels = spectrum.hz_to_mel(hz)
    assert np.array_equal(spectrum.mel_to_hz(mels), librosa.mel_to_hz(mels, htk=False))


@pytest.mark.parametrize("n", [400, 401, 560, 16000, 1030 * 160 + 400])   # the last: more than one block
def test_power_spectrogram_is_librosas(n):
    x = np.random.default_rng(n).standard_normal(n)
    ours = spectrum.power_spectrogram(x, 400, 160)
    ref = np.abs(librosa.stft(x, n_fft=400, hop_length=160, win_length=400, window="hamming", center=False)) ** 2
    assert ours.shape == ref.shape and np.array_equal(ours, ref)


@pytest.mark.parametrize("sr", [16000, 8000])
@pytest.mark.parametrize("kind", ["noise", "chirp"])
@pytest.mark.parametrize("n_frames", [1, 2, 3, 4, 5, 8, 9, 10, 301])
def test_logmel3_is_librosas_to_the_bit(sr, kind, n_frames):
    n = _n_samples(sr, n_frames, extra=n_frames % 5)   # a few samples past the last frame, sometimes
    x = _noise(n, seed=n_frames) if kind == "noise" else _chirp(n, sr)
    ours, ref = melseg.logmel3(x, sr), _librosa_logmel3(x, sr)
    assert ours.shape == ref.shape == (3, 60, n_frames) and ours.dtype == np.float32
    assert np.array_equal(ours, ref)


def test_logmel3_across_the_real_chunk_boundary_is_librosas():
    """CHUNK_FRAMES as shipped: 6000 frames and 3 more (60.03 s), the chunked reference bit for bit."""
    x = _noise(_n_samples(16000, melseg.CHUNK_FRAMES + 3), seed=7)
    ours = melseg.logmel3(x, 16000)
    assert ours.shape == (3, 60, melseg.CHUNK_FRAMES + 3)
    assert np.array_equal(ours, _librosa_logmel3(x, 16000))


@pytest.mark.parametrize("chunk", [1, 2, 7])
def test_logmel3_in_small_chunks_is_librosas(monkeypatch, chunk):
    monkeypatch.setattr(melseg, "CHUNK_FRAMES", chunk)
    x = _chirp(_n_samples(16000, 23), 16000)
    assert np.array_equal(melseg.logmel3(x, 16000), _librosa_logmel3(x, 16000))


@pytest.mark.parametrize("sr", [16000, 8000])
def test_mfcc_power_and_mel_energies_are_librosas(sr):
    x = mfcc.preemphasis(_chirp(sr, sr) + _noise(sr, seed=3))
    win, hop = mfcc.frame_sizes(sr)
    power = mfcc.power_spectrogram(x, sr)
    ref_power = np.abs(librosa.stft(x, n_fft=win, hop_length=hop, win_length=win, window="hamming",
                                    center=False)) ** 2
    assert np.array_equal(power, ref_power)
    fb = librosa.filters.mel(sr=sr, n_fft=win, n_mels=40, fmin=0.0, fmax=sr / 2.0, htk=False, norm="slaney",
                             dtype=np.float64)
    assert np.array_equal(mfcc.mel_energies(power, sr), fb @ ref_power)
