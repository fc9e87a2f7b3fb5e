"""PLP (Hermansky 1990): each step against an independent computation, and its properties."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from serbench.features import plp
from serbench.features.functionals import FeatureInputError

SR = 16000


def _autocorr(x: np.ndarray, lags: int) -> np.ndarray:
    return np.array([x[: len(x) - k] @ x[k:] for k in range(lags + 1)])


def _ar_signal(seed: int, n: int = 4000) -> np.ndarray:
    """A stable AR(4) process: a resonant, non-white spectrum."""
    rng = np.random.default_rng(seed)
    return scipy.signal.lfilter([1.0], [1.0, -1.3, 0.9, -0.3, 0.1], rng.standard_normal(n))


@pytest.mark.parametrize("order", [1, 4, 12])
def test_levinson_matches_solve_toeplitz(order):
    r = np.column_stack([_autocorr(_ar_signal(s), order) for s in range(3)])
    a, err = plp.levinson(r, order)
    for j in range(r.shape[1]):
        ref = scipy.linalg.solve_toeplitz(r[:order, j], -r[1:order + 1, j])
        np.testing.assert_allclose(a[:, j], ref, rtol=1e-9, atol=1e-12)
        # the error power of the optimal predictor: r0 + sum a_k r_k
        assert err[j] == pytest.approx(r[0, j] + a[:, j] @ r[1:order + 1, j], rel=1e-9)


def test_levinson_rejects_bad_autocorrelation():
    with pytest.raises(FeatureInputError):
        plp.levinson(np.zeros((13, 2)), 12)
    with pytest.raises(FeatureInputError):
        plp.levinson(np.ones((5, 2)), 12)


def test_cepstrum_recursion_matches_log_model_spectrum():
    r = _autocorr(_ar_signal(5), 12)[:, None]
    a, err = plp.levinson(r, 12)
    c = plp.lpc_to_cepstrum(a, err, 20)[0]  # beyond the order too
    n_fft = 8192
    log_model = np.log(err[0] / np.abs(np.fft.rfft(np.r_[1.0, a[:, 0]], n_fft)) ** 2)
    ref = np.fft.irfft(log_model, n_fft)  # = c0, then c_n for n >= 1 (cosine series / 2)
    np.testing.assert_allclose(c, ref[:20], atol=1e-10)


def test_masking_curve_values():
    dz = np.array([-2.0, -1.3, -0.5, 0.0, 0.5, 1.5, 2.5, 3.0])
    np.testing.assert_allclose(plp.masking_curve(dz), [0.0, 0.01, 1.0, 1.0, 1.0, 0.1, 0.01, 0.0])


def test_bark_warping_and_bands():
    z = np.linspace(0, 20, 7)
    np.testing.assert_allclose(plp.hz_to_bark(plp.bark_to_hz(z)), z)
    centres = plp.band_centres(SR)
    assert len(centres) == 21 and centres[0] == 0.0
    assert centres[-1] == pytest.approx(plp.hz_to_bark(8000.0))
    assert np.all(np.diff(centres) < 1.0)


def test_equal_loudness_rises_through_the_speech_band():
    e = plp.equal_loudness(np.array([100.0, 300.0, 1000.0, 3000.0]))
    assert np.all(np.diff(e) > 0)


@pytest.mark.parametrize("n, frames", [(399, 0), (400, 1), (560, 2), (16000, 98)])
def test_shape_and_finite(n, frames):
    out = plp.lld(np.random.default_rng(0).standard_normal(n).astype(np.float32), SR)
    assert out.shape == (frames, 13) and np.all(np.isfinite(out))


def test_gain_changes_only_c0():
    x = np.random.default_rng(1).standard_normal(8000) * 0.1
    a, b = plp.lld(x, SR), plp.lld(100.0 * x, SR)
    np.testing.assert_allclose(b[:, 1:], a[:, 1:], atol=1e-7)
    np.testing.assert_allclose(b[:, 0] - a[:, 0], 2 * 0.33 * np.log(100.0), rtol=1e-6)


def _model_log_spectrum(c: np.ndarray, n_points: int = 512) -> np.ndarray:
    """ln of the all-pole model on [0, pi] from the cepstrum c0 .. c12 (mean over frames)."""
    w = np.linspace(0, np.pi, n_points)
    cm = c.mean(axis=0)
    return cm[0] + 2 * np.cos(np.outer(w, np.arange(1, len(cm)))) @ cm[1:]


def test_tone_and_noise_have_clearly_different_envelopes():
    t = np.arange(SR // 2) / SR
    rng = np.random.default_rng(2)
    tone = plp.lld(0.3 * np.sin(2 * np.pi * 1000 * t), SR)
    noise1 = plp.lld(0.3 * rng.standard_normal(t.size), SR)
    noise2 = plp.lld(0.3 * rng.standard_normal(t.size), SR)
    shape = lambda c: c[:, 1:].mean(axis=0)  # noqa: E731 - gain-free envelope shape
    assert np.linalg.norm(shape(tone) - shape(noise1)) > 10 * np.linalg.norm(shape(noise1) - shape(noise2))
    # The tone's model spectrum peaks at 1 kHz: the PLP axis is linear in Bark, 0 to Nyquist.
    spec = _model_log_spectrum(tone)
    peak_bark = np.argmax(spec) / (len(spec) - 1) * plp.hz_to_bark(SR / 2)
    assert abs(peak_bark - plp.hz_to_bark(1000.0)) < 1.0
    assert spec.max() - np.median(spec) > 3.0  # a sharp peak (> 13 dB in power)
    noise_spec = _model_log_spectrum(noise1)
    assert noise_spec.max() - np.median(noise_spec) < spec.max() - np.median(spec)


def test_silence_is_finite_and_constant():
    out = plp.lld(np.zeros(4000, dtype=np.float32), SR)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape))
    assert np.all(np.isfinite(plp.extract(np.zeros(4000), SR)))


def test_extract_and_names():
    x = np.random.default_rng(3).standard_normal(4000)
    feats = plp.extract(x, SR)
    assert feats.shape == (312,) == (len(plp.feature_names()),)
    assert plp.feature_names()[:2] == ["plp0_mean", "plp0_std"] and plp.lld_names()[-1] == "plp12"
    assert np.all(np.isnan(plp.extract(x[:500], SR)))  # 1 frame
