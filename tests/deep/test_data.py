"""Deep-model inputs: per-speaker normalization of log-mel arrays."""
import numpy as np
import pytest

from serbench.experiments.normalize import NormalizationError, normalize_mels_per_speaker


def _mels(rng, n, mean, scale, t=(20, 35)):
    return [(mean + scale * rng.standard_normal((3, 4, int(rng.integers(*t))))).astype(np.float32) for _ in range(n)]


def test_each_speaker_has_zero_mean_unit_std_over_its_frames():
    rng = np.random.default_rng(0)
    mels = _mels(rng, 3, 5.0, 2.0) + _mels(rng, 4, -3.0, 0.5)
    speakers = ["a"] * 3 + ["b"] * 4
    out = normalize_mels_per_speaker(mels, speakers)
    for spk in "ab":
        frames = np.concatenate([o for o, s in zip(out, speakers) if s == spk], axis=-1)
        np.testing.assert_allclose(frames.mean(axis=-1), 0.0, atol=1e-5)
        np.testing.assert_allclose(frames.std(axis=-1), 1.0, atol=1e-4)
    assert all(o.shape == m.shape and o.dtype == np.float32 for o, m in zip(out, mels))


def test_a_speaker_depends_only_on_its_own_audio():
    rng = np.random.default_rng(1)
    a, b = _mels(rng, 3, 1.0, 1.0), _mels(rng, 3, 0.0, 1.0)
    together = normalize_mels_per_speaker(a + b, ["a"] * 3 + ["b"] * 3)
    b_changed = [m * 100 + 7 for m in b]        # another speaker's audio changes wildly
    again = normalize_mels_per_speaker(a + b_changed, ["a"] * 3 + ["b"] * 3)
    for x, y in zip(together[:3], again[:3]):
        np.testing.assert_array_equal(x, y)


def test_constant_band_is_centred_not_divided_by_zero():
    m = np.ones((3, 4, 10), dtype=np.float32)
    out = normalize_mels_per_speaker([m, m], ["a", "a"])
    assert np.all(np.isfinite(out[0])) and np.all(out[0] == 0)


def test_length_mismatch_is_an_error():
    with pytest.raises(NormalizationError, match="2 utterances but 1 speaker"):
        normalize_mels_per_speaker([np.zeros((3, 4, 5))] * 2, ["a"])
