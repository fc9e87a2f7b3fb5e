import inspect

import numpy as np
import pytest

from serbench.experiments.normalize import NormalizationError, SpeakerNormalizer, normalize_per_speaker


def _data(seed=0):
    rng = np.random.default_rng(seed)
    speakers = np.repeat(["a", "b", "c"], [6, 8, 5])
    offsets = {"a": 10.0, "b": -3.0, "c": 100.0}
    X = rng.normal(size=(len(speakers), 4)) * 2 + np.array([offsets[s] for s in speakers])[:, None]
    return X, speakers


def test_each_speaker_is_standardized_with_its_own_statistics():
    X, spk = _data()
    Z = normalize_per_speaker(X, spk)
    for s in np.unique(spk):
        rows = X[spk == s]
        np.testing.assert_allclose(Z[spk == s], (rows - rows.mean(0)) / rows.std(0))
        np.testing.assert_allclose(Z[spk == s].mean(0), 0, atol=1e-12)


def test_a_speaker_output_depends_only_on_its_own_rows():
    X, spk = _data()
    Z = normalize_per_speaker(X, spk)
    X2 = X.copy()
    X2[spk == "c"] = 1e9  # another speaker changes wildly
    Z2 = normalize_per_speaker(X2, spk)
    keep = spk != "c"
    np.testing.assert_array_equal(Z[keep], Z2[keep])
    # Normalizing a subset of speakers (a fold) equals the subset of normalizing all of them.
    np.testing.assert_array_equal(normalize_per_speaker(X[keep], spk[keep]), Z[keep])


def test_labels_cannot_reach_the_normalizer():
    for fn in (SpeakerNormalizer.fit, SpeakerNormalizer.transform, SpeakerNormalizer.fit_transform,
               normalize_per_speaker):
        assert "y" not in inspect.signature(fn).parameters


def test_constant_feature_becomes_zero_not_nan():
    X, spk = _data()
    X[:, 2] = 7.0
    Z = normalize_per_speaker(X, spk)
    assert np.all(Z[:, 2] == 0.0)


def test_bad_input_is_rejected_with_a_hint():
    X, spk = _data()
    with pytest.raises(NormalizationError, match="speaker 'z' has 1 usable row"):
        normalize_per_speaker(np.vstack([X, X[:1]]), np.append(spk, "z"))
    X[0, 0] = np.nan
    with pytest.raises(NormalizationError, match="NaN"):
        normalize_per_speaker(X, spk)
    with pytest.raises(NormalizationError, match="one speaker per row"):
        normalize_per_speaker(np.ones((3, 2)), ["a", "b"])
    norm = SpeakerNormalizer().fit(np.ones((4, 2)) * np.arange(4)[:, None], ["a"] * 4)
    with pytest.raises(NormalizationError, match="not seen in fit"):
        norm.transform(np.ones((2, 2)), ["b", "b"])
