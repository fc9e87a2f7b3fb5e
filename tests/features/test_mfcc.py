"""MFCC: agreement with a direct librosa computation, framing, deltas, gain behaviour."""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from serbench.features import mfcc
from serbench.features.functionals import paper_statistics

SR = 16000


def _speechlike(seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with noise: changes over time, so statistics are non-trivial."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 80 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_matches_direct_librosa_computation():
    x = _speechlike()
    y = x.astype(np.float64)
    y = np.concatenate([y[:1], y[1:] - 0.97 * y[:-1]])
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=400, hop_length=160, win_length=400,
                                         window="hamming", center=False, n_mels=40, power=2.0)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=13)
    out = mfcc.lld(x, SR)
    assert out.shape == (ref.shape[1], 13) and out.dtype == np.float64
    np.testing.assert_allclose(out, ref.T, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("n, frames", [(399, 0), (400, 1), (559, 1), (560, 2), (16000, 98)])
def test_frame_count(n, frames):
    x = np.random.default_rng(1).standard_normal(n)
    assert mfcc.lld(x, SR).shape == (frames, 13)
    assert mfcc.n_frames(n, SR) == frames


def test_extract_is_statistics_of_lld_with_frame_differences():
    x = _speechlike()
    lld = mfcc.lld(x, SR)
    feats = mfcc.extract(x, SR)
    names = mfcc.feature_names()
    assert feats.shape == (312,) == (len(names),) and len(set(names)) == 312
    np.testing.assert_array_equal(feats, paper_statistics(lld))
    v = dict(zip(names, feats))
    # the mean of first differences telescopes to (last - first) / (T - 1)
    assert v["mfcc3_d1_mean"] == pytest.approx((lld[-1, 3] - lld[0, 3]) / (len(lld) - 1))
    assert v["mfcc0_d2_max"] == pytest.approx(np.diff(lld[:, 0], n=2).max())
    assert mfcc.lld_names() == [f"mfcc{i}" for i in range(13)]


def test_gain_moves_only_c0():
    x = np.random.default_rng(2).standard_normal(8000) * 0.1
    a, b = mfcc.lld(x, SR), mfcc.lld(10 * x, SR)
    # +20 dB in each of 40 bands; the orthonormal DCT's c0 is sum / sqrt(40)
    np.testing.assert_allclose(b[:, 0] - a[:, 0], 20 * np.sqrt(40), rtol=1e-9)
    np.testing.assert_allclose(b[:, 1:], a[:, 1:], atol=1e-8)


def test_silence_is_finite_and_short_signal_is_nan():
    assert np.all(np.isfinite(mfcc.extract(np.zeros(SR, dtype=np.float32), SR)))
    assert np.all(np.isnan(mfcc.extract(np.zeros(600, dtype=np.float32), SR)))  # 2 frames


def test_other_sample_rate_scales_the_frames():
    x = np.random.default_rng(3).standard_normal(8000)
    assert mfcc.lld(x, 8000).shape == (98, 13)  # 200-sample window, 80-sample hop


def test_preemphasis():
    np.testing.assert_allclose(mfcc.preemphasis(np.array([1.0, 2.0, 3.0])), [1.0, 1.03, 1.06])


def test_deterministic():
    x = _speechlike(seed=4)
    np.testing.assert_array_equal(mfcc.extract(x, SR), mfcc.extract(x.copy(), SR))
