"""The paper's utterance statistics: values, layout, names and the degenerate cases."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from serbench.errors import SerbenchError
from serbench.features.functionals import (
    MIN_FRAMES, STATISTICS, FeatureInputError, check_signal, contour_statistics, paper_statistics,
    statistic_names)


def _reference(x: np.ndarray) -> np.ndarray:
    """The 8 statistics of a 1-D contour, straight from numpy/scipy."""
    return np.array([
        x.mean(), x.std(ddof=0), x.max(), x.min(),
        scipy.stats.kurtosis(x, fisher=True, bias=True), scipy.stats.skew(x, bias=True),
        x.max() - x.min(), np.median(x)])


@pytest.fixture
def lld() -> np.ndarray:
    rng = np.random.default_rng(7)
    # Columns with different distributions so that skewness/kurtosis are far from 0.
    return np.column_stack([rng.standard_normal(50), rng.exponential(size=50), rng.uniform(size=50) ** 3])


@pytest.mark.parametrize("order", [0, 1, 2])
def test_statistics_match_scipy(lld, order):
    stats = paper_statistics(lld).reshape(lld.shape[1], 3, len(STATISTICS))
    contour = np.diff(lld, n=order, axis=0) if order else lld
    for d in range(lld.shape[1]):
        np.testing.assert_allclose(stats[d, order], _reference(contour[:, d]), rtol=1e-10, atol=1e-12)


def test_names_follow_the_value_layout(lld):
    names = statistic_names(["a", "b", "c"])
    values = paper_statistics(lld)
    assert len(names) == len(values) == 3 * 3 * 8 and len(set(names)) == len(names)
    assert names[:3] == ["a_mean", "a_std", "a_max"]
    assert names[8] == "a_d1_mean" and names[16] == "a_d2_mean" and names[24] == "b_mean"
    value = dict(zip(names, values))
    assert value["b_d1_mean"] == pytest.approx(np.diff(lld[:, 1]).mean())
    assert value["c_d2_median"] == pytest.approx(np.median(np.diff(lld[:, 2], n=2)))
    assert value["a_range"] == pytest.approx(np.ptp(lld[:, 0]))


def test_differences_are_frame_differences():
    t = np.arange(10, dtype=np.float64)
    lld = np.column_stack([3.0 * t, t**2])  # a ramp and a parabola
    v = dict(zip(statistic_names(["ramp", "par"]), paper_statistics(lld)))
    assert v["ramp_d1_mean"] == pytest.approx(3.0) and v["ramp_d1_std"] == pytest.approx(0.0, abs=1e-12)
    assert v["ramp_d2_max"] == pytest.approx(0.0) and v["ramp_d2_min"] == pytest.approx(0.0)
    assert v["par_d1_min"] == pytest.approx(1.0) and v["par_d1_max"] == pytest.approx(17.0)
    assert v["par_d2_mean"] == pytest.approx(2.0)


@pytest.mark.parametrize("value", [0.0, -23.0, 1e6])
def test_constant_contour_has_zero_shape_statistics(value):
    stats = contour_statistics(np.full((20, 1), value))[0]
    named = dict(zip(STATISTICS, stats))
    assert named["mean"] == pytest.approx(value) and named["median"] == pytest.approx(value)
    assert named["std"] == pytest.approx(0.0, abs=1e-9 * max(1.0, abs(value)))
    assert named["skewness"] == 0.0 and named["kurtosis"] == 0.0 and named["range"] == 0.0


def test_silence_like_input_is_finite():
    assert np.all(np.isfinite(paper_statistics(np.full((30, 4), -23.03))))


@pytest.mark.parametrize("n_frames", [0, 1, 2])
def test_too_few_frames_give_nan(n_frames):
    out = paper_statistics(np.ones((n_frames, 2)))
    assert out.shape == (2 * 24,) and np.all(np.isnan(out))


def test_min_frames_is_enough():
    out = paper_statistics(np.random.default_rng(0).standard_normal((MIN_FRAMES, 2)))
    assert np.all(np.isfinite(out))


def test_nan_column_stays_nan_and_others_are_unaffected(lld):
    bad = lld.copy()
    bad[5, 1] = np.nan
    out = paper_statistics(bad).reshape(3, 24)
    assert np.all(np.isnan(out[1, [0, 1, 4, 5]]))  # mean, std, kurtosis, skewness of column 1
    np.testing.assert_allclose(out[[0, 2]], paper_statistics(lld).reshape(3, 24)[[0, 2]])


def test_rejects_non_2d():
    with pytest.raises(FeatureInputError):
        paper_statistics(np.ones(10))


@pytest.mark.parametrize("signal, sr", [
    (np.ones((10, 2)), 16000), (np.array([]), 16000), (np.array([0.0, np.nan]), 16000),
    (np.array([0.0, np.inf]), 16000), (np.ones(10), 0), (np.ones(10), 16000.5)])
def test_check_signal_rejects_bad_input(signal, sr):
    with pytest.raises(SerbenchError):
        check_signal(signal, sr)


def test_check_signal_returns_float64():
    out = check_signal(np.ones(5, dtype=np.float32), 16000)
    assert out.dtype == np.float64 and out.shape == (5,)
