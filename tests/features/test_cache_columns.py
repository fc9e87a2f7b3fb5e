"""Reading some columns of a vector set: one layer of a self-supervised set, float32 or float64.

``FeatureCache.read_matrix`` and ``load(columns=..., dtype=...)`` give exactly the values of the
whole-table read (the cache stores float32), for the columns asked, in the order asked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serbench.features import load
from serbench.features.cache import CacheError, FeatureCache, Row
from serbench.features.registry import FeatureSet, Kind, register, unregister
from serbench.features.ssl import layer_blocks, layer_columns

N_STATES, HIDDEN = 3, 4
NAMES = [c for k in range(N_STATES) for c in layer_columns(k, HIDDEN)]


class _Layers:
    version = "1"
    params: dict = {}

    def libraries(self) -> dict:
        return {}

    def feature_names(self) -> list[str]:
        return NAMES

    def make_extractor(self):
        raise AssertionError("nothing is extracted here")


@pytest.fixture
def store(tmp_path):
    fs = register(FeatureSet("LayersProbe", Kind.VECTOR, "columns named like an SSL set", lambda: _Layers()))
    yield FeatureCache("demo", fs, tmp_path / "cache")
    unregister("LayersProbe")


def rows(ids, seed, status="ok"):
    rng = np.random.default_rng(seed)
    return [Row(u, f"h{seed}", status, "", f"/x/{u}.wav", rng.standard_normal(len(NAMES)) * 10.0 ** rng.integers(-3, 4))
            for u in ids]


def whole_table(store, ids):
    """What load() read before: every column, through pandas, as float64."""
    df = store.read().to_pandas().set_index("utterance_id")
    return df.reindex(ids)[NAMES].astype(np.float64).to_numpy()


def test_layer_columns_are_the_blocks_of_the_names():
    for k, (a, b) in enumerate(layer_blocks(len(NAMES), N_STATES)):
        assert layer_columns(k, HIDDEN) == NAMES[a:b]
    assert layer_columns(1, 2) == ["L01_mean_0000", "L01_mean_0001", "L01_std_0000", "L01_std_0001"]


@pytest.mark.parametrize("block", [1, 5, 2048])
def test_read_matrix_equals_the_whole_table(store, block):
    store.append(rows(["a", "b", "c"], 0))
    store.append(rows(["b", "d"], 1))                                          # b rewritten: the newest wins
    store.append([Row("e", "h2", "failed", "bad file", "/x/e.wav", None)])
    ids = ["d", "a", "zz", "b", "e", "c"]                                      # zz: no row
    reference = whole_table(store, ids)
    values, columns, keys = store.read_matrix(ids, dtype=np.float64, block=block)
    assert columns == NAMES and values.dtype == np.float64
    np.testing.assert_array_equal(values, reference)                        # NaN where the reference has NaN
    assert np.isnan(values[2]).all() and np.isnan(values[4]).all()
    pd.testing.assert_frame_equal(keys, store.index())
    for k in range(N_STATES):
        a, b = layer_blocks(len(NAMES), N_STATES)[k]
        one, cols, _ = store.read_matrix(ids, layer_columns(k, HIDDEN), np.float32, block=block)
        assert cols == NAMES[a:b] and one.dtype == np.float32 and one.shape == (len(ids), b - a)
        np.testing.assert_array_equal(one.astype(np.float64), reference[:, a:b])
    picked, _, _ = store.read_matrix(ids, ["L02_std_0003", "L00_mean_0001"], block=block)
    np.testing.assert_array_equal(picked, reference[:, [NAMES.index("L02_std_0003"), 1]].astype(np.float32))


def test_read_matrix_of_an_empty_folder_and_of_unknown_columns(store):
    assert store.read_matrix(["a"]) is None
    store.append(rows(["a"], 0))
    with pytest.raises(CacheError, match=r"no column 'L07_mean_0000', 'nope' in this cache set") as exc:
        store.read_matrix(["a"], ["L00_mean_0000", "nope", "L07_mean_0000"])
    assert "\n" not in str(exc.value) and str(store.path) in str(exc.value)


def test_a_part_removed_after_the_listing_is_read_again(store, monkeypatch):
    """A compaction between listing and opening: the reader lists the parts again."""
    store.append(rows(["a"], 0))
    store.append(rows(["b"], 1))
    reference = whole_table(store, ["a", "b"])
    real_parts, calls = store.parts, []

    def parts():
        listed = real_parts()
        calls.append(len(listed))
        if len(calls) == 1:                     # the listed parts are gone once compacted
            monkeypatch.setattr(store, "parts", real_parts)
            store.compact(min_parts=1)
            monkeypatch.setattr(store, "parts", parts)
        return listed

    monkeypatch.setattr(store, "parts", parts)
    values, _, _ = store.read_matrix(["a", "b"], dtype=np.float64)
    np.testing.assert_array_equal(values, reference)
    assert calls[:2] == [2, 1]


def test_load_reads_only_the_columns_asked_in_the_dtype_asked(corpus, cache_dir, probe):
    X, m = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    one, m1 = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False, columns=["max", "mean"],
                   dtype=np.float32)
    assert list(one.columns) == ["max", "mean"] and one.dtypes.eq(np.float32).all()
    assert list(one.index) == list(X.index) and one.index.name == "utterance_id"
    np.testing.assert_array_equal(one.to_numpy().astype(np.float64), X[["max", "mean"]].to_numpy())
    pd.testing.assert_frame_equal(m, m1)
    assert X.dtypes.eq(np.float64).all()


def test_load_sets_rows_that_are_not_ok_to_nan_in_a_column_subset(corpus, cache_dir, probe, wav):
    wav(corpus / "spk1" / "sad" / "t0.wav", np.zeros(8000))                    # digital silence: 'nan'
    X, m = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False, columns=["std"], dtype=np.float32)
    bad = (m["status"] != "ok").to_numpy()
    assert bad.sum() == 1 and np.isnan(X.to_numpy()[bad]).all() and np.isfinite(X.to_numpy()[~bad]).all()
