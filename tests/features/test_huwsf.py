"""HuWSF: Hu invariants against analytical values, the local moment map, the features."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from serbench.features import huwsf, mfcc
from serbench.features.functionals import FeatureInputError

SR = 16000


def _gaussian(shape, centre, sx, sy, amplitude=1.0):
    rows, cols = np.indices(shape, dtype=np.float64)
    return amplitude * np.exp(-0.5 * (((cols - centre[0]) / sx) ** 2 + ((rows - centre[1]) / sy) ** 2))


def _blob(scale: float = 1.0, shape=(160, 160)) -> np.ndarray:
    """An asymmetric smooth blob (two Gaussians, one elongated); ``scale`` stretches it spatially."""
    return (_gaussian(shape, (60 * scale, 50 * scale), 6 * scale, 3 * scale)
            + 0.5 * _gaussian(shape, (70 * scale, 62 * scale), 3 * scale, 3 * scale))


@pytest.mark.parametrize("sigma", [3.0, 6.0])
def test_isotropic_gaussian_has_analytical_moments(sigma):
    # eta20 = mu20 / m00^2 = sigma^2 / m00 with m00 = 2 pi sigma^2: phi1 = 1 / pi for every sigma
    phi = huwsf.hu_moments(_gaussian((80, 80), (40, 40), sigma, sigma))
    assert phi[0] == pytest.approx(1 / np.pi, rel=1e-6)
    np.testing.assert_allclose(phi[1:], 0.0, atol=1e-9)


def test_anisotropic_gaussian_has_analytical_moments():
    sx, sy, amp = 4.0, 2.0, 3.0
    phi = huwsf.hu_moments(_gaussian((60, 60), (30, 30), sx, sy, amp))
    m00 = amp * 2 * np.pi * sx * sy
    assert phi[0] == pytest.approx((sx**2 + sy**2) / m00, rel=1e-6)
    assert phi[1] == pytest.approx(((sx**2 - sy**2) / m00) ** 2, rel=1e-6)
    np.testing.assert_allclose(phi[2:], 0.0, atol=1e-9)  # symmetric: no third-order moments


@pytest.mark.parametrize("transform", [
    lambda b: np.roll(b, (13, -9), axis=(0, 1)),
    lambda b: np.rot90(b, 1), lambda b: np.rot90(b, 2), lambda b: np.rot90(b, 3), lambda b: b.T[::-1]])
def test_hu_moments_invariant_to_translation_and_rotation(transform):
    blob = _blob()
    phi = huwsf.hu_moments(blob)
    assert abs(phi[2]) > 1e-6 and abs(phi[6]) > 1e-12  # the blob is not symmetric: a real test
    np.testing.assert_allclose(huwsf.hu_moments(transform(blob)), phi, rtol=1e-9, atol=1e-18)


def test_hu_moments_invariant_to_scaling():
    phi = huwsf.hu_moments(_blob(1.0))
    np.testing.assert_allclose(huwsf.hu_moments(_blob(2.0, shape=(320, 320))), phi, rtol=1e-4)


def test_reflection_flips_phi7_only():
    blob = _blob()
    phi, mirrored = huwsf.hu_moments(blob), huwsf.hu_moments(blob[:, ::-1])
    np.testing.assert_allclose(mirrored[:6], phi[:6], rtol=1e-9)
    assert mirrored[6] == pytest.approx(-phi[6], rel=1e-9)


def test_hu_moments_reject_bad_images():
    for bad in (np.zeros((4, 4)), -np.ones((3, 3)), np.ones(5)):
        with pytest.raises(FeatureInputError):
            huwsf.hu_moments(bad)


@pytest.mark.parametrize("point", [(3, 4), (0, 0), (5, 7), (0, 5)])  # interior, corner, edges
def test_local_phi1_is_hu_phi1_of_the_normalised_patch(point):
    image = np.random.default_rng(0).random((6, 8)) + 0.01
    padded = np.pad(image, 1, mode="reflect")
    m, t = point
    patch = padded[m:m + 3, t:t + 3]
    assert huwsf.local_hu_phi1(image)[m, t] == pytest.approx(huwsf.hu_moments(patch / patch.sum())[0], rel=1e-12)


def test_local_phi1_limits():
    assert np.allclose(huwsf.local_hu_phi1(np.full((5, 5), 7.0)), 4 / 3)  # flat: level-free
    peak = np.full((5, 5), 1e-12)
    peak[2, 2] = 1.0
    local = huwsf.local_hu_phi1(peak)
    assert local[2, 2] < 1e-9 and local[1, 2] < 1e-9  # all energy in one point: no spread
    pair = np.full((5, 5), 1e-12)
    pair[2, 1] = pair[2, 3] = 1.0
    # half the energy one frame before, half one frame after: variance 1 along time only
    assert huwsf.local_hu_phi1(pair)[2, 2] == pytest.approx(1.0, rel=1e-9)
    rng = np.random.default_rng(1)
    values = huwsf.local_hu_phi1(rng.random((20, 30)) ** 8 + 1e-9)
    assert values.min() >= 0 and values.max() <= 2


def test_local_phi1_rejects_bad_input():
    with pytest.raises(FeatureInputError):
        huwsf.local_hu_phi1(np.zeros((4, 4)))
    with pytest.raises(FeatureInputError):
        huwsf.local_hu_phi1(np.ones((4, 4)), size=4)


def _voice(seconds=0.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(140 + 60 * t) / SR
    return 0.2 * sum(np.sin(k * phase) / k for k in range(1, 10)) + 0.005 * rng.standard_normal(t.size)


def test_lld_shape_finite_deterministic():
    x = _voice()
    out = huwsf.lld(x, SR)
    assert out.shape == (mfcc.n_frames(x.size, SR), 13) and np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, huwsf.lld(x.copy(), SR))


def test_differs_from_mfcc_by_the_cepstrum_of_the_weights():
    x = _voice(seed=1)
    hu, plain = huwsf.lld(x, SR), mfcc.lld(x, SR)
    assert np.abs(hu - plain).mean() > 0.1  # the weighting changes the features
    energies = mfcc.mel_energies(mfcc.power_spectrogram(mfcc.preemphasis(x), SR), SR)
    weight_db = 10 * np.log10(huwsf.local_hu_phi1(np.maximum(energies, 1e-10)))
    expected = scipy.fft.dct(weight_db, type=2, norm="ortho", axis=0)[:13].T
    np.testing.assert_allclose(hu - plain, expected, atol=1e-6)


def test_gain_changes_only_c0():
    x = _voice(seed=2)
    a, b = huwsf.lld(x, SR), huwsf.lld(10 * x, SR)
    np.testing.assert_allclose(b[:, 1:], a[:, 1:], atol=1e-7)
    np.testing.assert_allclose(b[:, 0] - a[:, 0], 20 * np.sqrt(40), rtol=1e-9)


def test_extract_names_silence_and_short_input():
    feats = huwsf.extract(_voice(), SR)
    assert feats.shape == (312,) == (len(huwsf.feature_names()),) and np.all(np.isfinite(feats))
    assert huwsf.feature_names()[24] == "huwsf1_mean"
    assert np.all(np.isfinite(huwsf.extract(np.zeros(4000), SR)))
    assert np.all(np.isnan(huwsf.extract(np.zeros(500), SR)))
    assert huwsf.lld(np.zeros(100), SR).shape == (0, 13)
