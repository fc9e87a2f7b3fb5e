"""A worker extracts a set only when it computes the set's cache key as the client does: rows computed
from other inputs (another model folder's weights, another library version) never enter the client's cache."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

extract_mod = importlib.import_module("serbench.features.extract")   # the module, not the function it exports


def _tasks(corpus: Path, names: tuple[str, ...]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    from serbench.audio import file_hash

    paths = sorted(corpus.rglob("*.wav"))[:3]
    return [(p.stem, str(p), file_hash(str(p)), names) for p in paths]


def test_a_set_whose_key_differs_on_the_worker_is_refused_there(corpus):
    from serbench.features import get_feature_set

    tasks = _tasks(corpus, ("IS09", "eGeMAPS"))
    good = {"IS09": get_feature_set("IS09").key, "eGeMAPS": get_feature_set("eGeMAPS").key}
    extract_mod._SAME_KEYS.clear()
    out = extract_mod._process_chunk(None, tasks, {**good, "eGeMAPS": "0123456789ab"})
    assert [uid for uid, _r, _d in out] == [t[0] for t in tasks]          # every task answered, in order
    for _uid, result, _d in out:
        status, detail, values, _s = result["eGeMAPS"]
        assert status == "error" and values is None                          # 'error': never cached
        assert "eGeMAPS" in detail and "0123456789ab" in detail and good["eGeMAPS"] in detail
        assert result["IS09"][0] == "ok" and np.isfinite(result["IS09"][2]).all()
    # the same keys as here: both extracted, as in-process extraction gives them
    alone = extract_mod._process_tasks(tasks)
    same = extract_mod._process_chunk(None, tasks, good)
    for (_u, a, _), (_v, b, _) in zip(alone, same):
        for name in good:
            np.testing.assert_array_equal(a[name][2], b[name][2])


def test_a_worker_with_other_weights_in_its_model_folder_refuses_the_set(corpus, tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("transformers")
    from ssl_models import save_tiny

    from serbench.features import get_feature_set

    monkeypatch.setenv("SERBENCH_SSL_DEVICE", "cpu")
    client, worker = tmp_path / "client", tmp_path / "worker"
    save_tiny(client, "wavlm-base-plus", seed=0)
    save_tiny(worker, "wavlm-base-plus", seed=1)                 # the same architecture, other weights
    monkeypatch.setenv("SERBENCH_MODELS", str(client))
    key = get_feature_set("wavlm-base-plus").key
    monkeypatch.setenv("SERBENCH_MODELS", str(worker))             # what the worker process sees
    extract_mod._SAME_KEYS.clear()
    out = extract_mod._process_chunk_checked(None, _tasks(corpus, ("wavlm-base-plus",)), {"wavlm-base-plus": key})
    for _uid, result, _d in out:
        status, detail, values, _s = result["wavlm-base-plus"]
        assert status == "error" and values is None and "model folder" in detail
    monkeypatch.setenv("SERBENCH_MODELS", str(client))
    out = extract_mod._process_chunk_checked(None, _tasks(corpus, ("wavlm-base-plus",)), {"wavlm-base-plus": key})
    assert all(r["wavlm-base-plus"][0] == "ok" for _u, r, _d in out)
