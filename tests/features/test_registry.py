"""The feature-set registry: names, kinds, keys, choices."""
from __future__ import annotations

import re

import pytest

from serbench.errors import SerbenchError
from serbench.features import (
    DEFAULT_SETS,
    FeatureSet,
    FeatureSetError,
    Kind,
    get_feature_set,
    list_feature_sets,
    resolve_feature_sets,
)
from serbench.features.registry import register, unregister


def test_names_case_insensitive_and_canonical():
    assert get_feature_set("is09").name == "IS09"
    assert get_feature_set(" EGEMAPS ").name == "eGeMAPS"
    assert get_feature_set("compare").name == "ComParE"
    assert get_feature_set("MelSeg").kind is Kind.ARRAY
    assert get_feature_set("hUwSf").name == "HuWSF"


def test_unknown_name_lists_choices():
    with pytest.raises(FeatureSetError) as exc:
        get_feature_set("IS11")
    msg = str(exc.value)
    assert "'IS11'" in msg
    for name in ("IS09", "IS10", "eGeMAPS", "ComParE", "MFCC", "PLP", "HuWSF", "melseg"):
        assert name in msg
    assert isinstance(exc.value, SerbenchError)


def test_registered_sets_and_defaults():
    names = [fs.name for fs in list_feature_sets()]
    assert {"IS09", "IS10", "eGeMAPS", "ComParE", "MFCC", "PLP", "HuWSF", "melseg"} <= set(names)
    assert DEFAULT_SETS == ("PLP", "MFCC", "HuWSF", "IS09", "IS10", "melseg")
    assert [fs.name for fs in resolve_feature_sets(None)] == list(DEFAULT_SETS)
    assert [fs.name for fs in resolve_feature_sets("is10, IS09,is10")] == ["IS10", "IS09"]
    with pytest.raises(FeatureSetError):
        resolve_feature_sets("IS09,nope")


class _Backend:
    def __init__(self, version="1", params=None, libs=None):
        self.version = version
        self.params = params or {"a": 1}
        self._libs = libs or {"lib": "1.0"}

    def libraries(self):
        return self._libs

    def feature_names(self):
        return ["x"]

    def make_extractor(self):
        return lambda s, sr: s[:1]


def _key(**kw) -> str:
    fs = FeatureSet("KeyTest", Kind.VECTOR, "t", lambda: _Backend(**kw))
    return fs.key


def test_key_is_short_stable_and_tracks_version_params_libraries():
    k = _key()
    assert re.fullmatch(r"[0-9a-f]{12}", k)
    assert _key() == k
    assert _key(version="2") != k
    assert _key(params={"a": 2}) != k
    assert _key(libs={"lib": "1.1"}) != k


def test_opensmile_key_includes_version_and_config():
    fs = get_feature_set("IS10")
    d = fs.describe()
    assert d["params"]["config"] == "is09-13/IS10_paraling_compat"
    assert d["params"]["sample_rate"] == 16000
    assert "opensmile" in d["libraries"] and d["key"] == fs.key
    assert fs.key != get_feature_set("IS09").key


def test_register_and_unregister():
    register(FeatureSet("Custom", Kind.VECTOR, "t", lambda: _Backend()))
    try:
        assert get_feature_set("custom").feature_names() == ["x"]
    finally:
        unregister("custom")
    with pytest.raises(FeatureSetError):
        get_feature_set("Custom")


def test_extract_defaults_cover_every_set_the_shipped_experiments_read():
    from serbench.systems.experiment import load_experiment, shipped

    for path in shipped():
        exp = load_experiment(path)
        for system in exp.systems():
            assert set(exp.values(system, "feature")) <= set(DEFAULT_SETS), path
