"""openSMILE sets: widths, equality with opensmile.Smile, NaN status for silence and too-short audio."""
from __future__ import annotations

import numpy as np
import opensmile
import pytest

from serbench.features import get_feature_set, load
from serbench.features.opensmile_sets import CONFIGS, OPENSMILE_SETS, make


@pytest.mark.parametrize("name, member, width", [("IS09", "IS09", 384), ("IS10", "IS10", 1582)])
def test_values_equal_opensmile_process_file(corpus, cache_dir, name, member, width):
    X, m = load("demo", name, root=corpus, cache=cache_dir, progress=False)
    assert X.shape == (8, width)
    assert (m["status"] == "ok").all()
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet[member],
                            feature_level=opensmile.FeatureLevel.Functionals)
    assert list(X.columns) == list(smile.feature_names)
    for uid, path in zip(m["utterance_id"], m["path"]):
        ref = smile.process_file(path).to_numpy()[0].astype(np.float64)
        # Through the float32 Parquet cache and back: openSMILE computes in float32.
        np.testing.assert_allclose(X.loc[uid].to_numpy(), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", list(OPENSMILE_SETS))
def test_widths(name):
    fs = get_feature_set(name)
    assert len(fs.feature_names()) == fs.n_features == OPENSMILE_SETS[name][1]
    assert fs.libraries == {"opensmile": opensmile.__version__}


def test_too_short_gives_nan_status_not_zero(corpus, cache_dir, wav):
    wav(corpus / "spk1" / "sad" / "short.wav", 0.3 * np.ones(160))  # 10 ms: shorter than any window
    X, m = load("demo", "IS09", root=corpus, cache=cache_dir, progress=False)
    row = m.set_index("utterance_id").loc["spk1_sad_short"]
    assert row["status"] == "nan"
    assert row["status_detail"] == "NaN or inf in 384 of 384 features"
    assert X.loc["spk1_sad_short"].isna().all()
    assert (m["status"] == "ok").sum() == 8


def test_silence_gives_nan_status_not_zero(corpus, cache_dir, wav):
    wav(corpus / "spk2" / "sad" / "silent.wav", np.zeros(8000))
    # openSMILE itself returns (mostly) zeros for digital silence: serbench must not pass them on.
    raw = make("IS09")(np.zeros(8000, np.float32), 16000)
    assert np.isfinite(raw).all() and (raw == 0).sum() > 300
    X, m = load("demo", "IS09", root=corpus, cache=cache_dir, progress=False)
    row = m.set_index("utterance_id").loc["spk2_sad_silent"]
    assert row["status"] == "nan" and "silence" in row["status_detail"]
    assert X.loc["spk2_sad_silent"].isna().all()
    assert X.drop(index="spk2_sad_silent").notna().all().all()


def test_resampled_input_is_clipped_not_wrapped():
    ext = make("eGeMAPS")
    t = np.arange(16000) / 16000
    x = (np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    over = x * 1.05  # beyond full scale, as a resampler can overshoot
    a, b = ext(np.clip(over, -1, 32767 / 32768), 16000), ext(over, 16000)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(OPENSMILE_SETS))
def test_config_names_match_the_installed_opensmile(name):
    member = OPENSMILE_SETS[name][0]
    assert CONFIGS[member] == opensmile.FeatureSet[member].value
    assert get_feature_set(name).params["config"] == opensmile.FeatureSet[member].value
