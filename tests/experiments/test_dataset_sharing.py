"""A Dataset shared with local worker processes through .npy files comes back equal, without pickle."""
from __future__ import annotations

import numpy as np
import pytest

from serbench.experiments.dataset import Dataset


def _data(inputs, groups=True):
    n = len(inputs)
    return Dataset(corpus="demo", labels=["angry", "sad"], y=np.arange(n) % 2, speakers=np.array(["a", "b"] * (n // 2)),
                   utterance_ids=np.array([f"u{i}" for i in range(n)]), inputs=inputs, fingerprint="fp",
                   groups=np.array(["a", "b"] * (n // 2)) if groups else None, meta={"feature": "x", "n": n})


@pytest.mark.parametrize("kind", ["matrix", "arrays"])
def test_save_and_load_shared_round_trip(tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind == "matrix":
        inputs = rng.normal(size=(6, 5))
    else:
        inputs = [rng.normal(size=(3, 4, t)).astype(np.float32) for t in (5, 9, 2, 7)]
    data = _data(inputs, groups=(kind == "matrix"))
    data.save_shared(tmp_path / "d")
    back = Dataset.load_shared(tmp_path / "d")
    assert back.labels == data.labels and back.fingerprint == data.fingerprint and back.meta == data.meta
    for name in ("y", "speakers", "utterance_ids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    assert (back.groups is None) == (data.groups is None)
    if kind == "matrix":
        np.testing.assert_array_equal(back.inputs, data.inputs)
    else:
        assert [a.shape for a in back.inputs] == [a.shape for a in data.inputs]
        for a, b in zip(back.inputs, data.inputs):
            np.testing.assert_array_equal(a, b)
    # the folder holds plain .npy arrays: loading them with pickle disabled must work
    for f in (tmp_path / "d").glob("*.npy"):
        np.load(f, allow_pickle=False)
