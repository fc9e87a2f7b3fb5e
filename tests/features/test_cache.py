"""The Parquet cache: hit, miss, invalidation, resume, compaction, full disk, verify/clear."""
from __future__ import annotations

import errno
import importlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from serbench.features import CacheError, extract, get_feature_set, load, load_arrays
from serbench.features import cache as cache_mod
from serbench.features.cache import FeatureCache

extract_mod = importlib.import_module("serbench.features.extract")  # the module, not the function it exports


N = 8


def _run(corpus, cache_dir, sets=("Probe",), **kw):
    return extract("demo", corpus, list(sets), cache=cache_dir, progress=False, **kw)


def test_cache_hit_extracts_nothing(corpus, cache_dir, probe):
    first = _run(corpus, cache_dir)
    assert (first.sets["Probe"].extracted, first.sets["Probe"].cached) == (N, 0)
    assert probe.calls == N
    second = _run(corpus, cache_dir)
    assert (second.sets["Probe"].extracted, second.sets["Probe"].cached) == (0, N)
    assert probe.calls == N  # the extractor was not called again


def test_cache_miss_for_new_file_only(corpus, cache_dir, probe, wav, make_tone):
    _run(corpus, cache_dir)
    wav(corpus / "spk1" / "sad" / "t9.wav", make_tone(42))
    r = _run(corpus, cache_dir)
    assert (r.sets["Probe"].extracted, r.sets["Probe"].cached) == (1, N)
    assert probe.calls == N + 1


def test_changed_audio_is_reextracted(corpus, cache_dir, probe, wav, make_tone):
    _run(corpus, cache_dir)
    X_before, _ = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    changed = corpus / "spk2" / "angry" / "t0.wav"
    wav(changed, 0.5 * make_tone(99))
    r = _run(corpus, cache_dir)
    assert (r.sets["Probe"].extracted, r.sets["Probe"].cached) == (1, N - 1)
    X_after, _ = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    uid = "spk2_angry_t0"
    assert not np.allclose(X_before.loc[uid], X_after.loc[uid])
    others = X_before.index != uid
    np.testing.assert_array_equal(X_before[others].to_numpy(), X_after[others].to_numpy())
    # The changed row's values are the new file's.
    x = 0.5 * make_tone(99)
    assert X_after.at[uid, "max"] == pytest.approx(np.round(x.max() * 32767) / 32768, abs=1e-4)


@pytest.mark.parametrize("crash", [KeyboardInterrupt, SystemExit])
def test_resume_after_crash(corpus, cache_dir, probe, monkeypatch, crash):
    monkeypatch.setattr(extract_mod, "COMMIT_ROWS", 2)  # commit often, as a long run would
    probe.crash_after, probe.crash_with = 5, crash
    with pytest.raises(crash):
        _run(corpus, cache_dir)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    assert store.parts(), "committed parts must survive the crash"
    done = len(store.index())
    assert done == 5  # every finished file was committed, nothing more
    assert not list(store.path.glob(".*.tmp"))  # no half-written part left behind
    probe.crash_after = None
    r = _run(corpus, cache_dir)
    assert (r.sets["Probe"].extracted, r.sets["Probe"].cached) == (N - 5, 5)
    X, m = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    assert (m["status"] == "ok").all() and X.notna().all().all()


def test_newest_row_wins_and_compaction(corpus, cache_dir, probe, monkeypatch, wav, make_tone):
    monkeypatch.setattr(extract_mod, "COMMIT_ROWS", 1)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    # No compaction during the runs: one part per utterance.
    monkeypatch.setattr(FeatureCache, "compact", lambda self, min_parts=0: False)
    _run(corpus, cache_dir)
    assert len(store.parts()) == N
    target = corpus / "spk1" / "angry" / "t1.wav"
    wav(target, 0.1 * make_tone(7))
    _run(corpus, cache_dir)
    assert len(store.parts()) == N + 1
    before = store.read().to_pandas().set_index("utterance_id")
    assert len(before) == N  # the stale row of t1 is shadowed by the newer part
    monkeypatch.undo()
    assert store.compact(min_parts=2)
    assert len(store.parts()) == 1
    after = store.read().to_pandas().set_index("utterance_id")
    assert after.sort_index().equals(before.sort_index())


def test_full_disk_names_folder_and_keeps_committed(corpus, cache_dir, probe, monkeypatch):
    monkeypatch.setattr(extract_mod, "COMMIT_ROWS", 3)
    real = pq.write_table
    calls = {"n": 0}

    def write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_mod.pq, "write_table", write)
    with pytest.raises(CacheError, match="no space left") as exc:
        _run(corpus, cache_dir)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    assert str(store.path) in str(exc.value)
    assert len(store.index()) == 3  # the first part survived
    monkeypatch.setattr(cache_mod.pq, "write_table", real)
    r = _run(corpus, cache_dir)
    assert (r.sets["Probe"].extracted, r.sets["Probe"].cached) == (N - 3, 3)


def test_meta_and_columns(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    fs = get_feature_set("probe")
    folder = cache_dir / "demo" / f"Probe-{fs.key}"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["key"] == fs.key and meta["name"] == "Probe" and meta["kind"] == "vector"
    assert meta["columns"] == ["utterance_id", "content_hash", "status", "status_detail", "path",
                               "mean", "std", "max", "min"]
    table = pq.read_table(next(folder.glob("part-*.parquet")))
    assert table.column_names == meta["columns"]
    assert str(table.schema.field("mean").type) == "float"


def test_failed_rows_cached_until_file_changes(corpus, cache_dir, probe, wav, make_tone):
    bad = corpus / "spk1" / "sad" / "t0.wav"
    x = np.full(8000, 0.1, dtype=np.float32)
    x[10] = np.nan  # header fine, samples not finite: load_audio refuses it
    bad.unlink()
    wav(bad, x, subtype="FLOAT")
    r = _run(corpus, cache_dir)
    assert [f.utterance_id for f in r.sets["Probe"].failed] == ["spk1_sad_t0"]
    calls = probe.calls
    r2 = _run(corpus, cache_dir)  # unchanged broken file: not retried, still reported
    assert probe.calls == calls and r2.sets["Probe"].extracted == 0
    assert r2.sets["Probe"].failed[0].cached
    wav(bad, make_tone(3))  # fixed: retried automatically
    r3 = _run(corpus, cache_dir)
    assert r3.sets["Probe"].extracted == 1 and not r3.sets["Probe"].failed


def test_array_set_roundtrip(corpus, cache_dir, probe):
    arrays, m = load_arrays("demo", "ProbeArr", root=corpus, cache=cache_dir, progress=False)
    assert list(arrays) == m["utterance_id"].tolist()
    a = arrays["spk1_angry_t0"]
    assert a.dtype == np.float32 and a.shape == (2, 3, 5)  # 8000 samples // 1600
    np.testing.assert_array_equal(a[1], -a[0])
    again, _ = load_arrays("demo", "ProbeArr", root=corpus, cache=cache_dir, progress=False)
    assert probe.calls == N
    np.testing.assert_array_equal(again["spk2_sad_t1"], arrays["spk2_sad_t1"])


def test_verify_and_clear(corpus, cache_dir, probe, wav, make_tone):
    _run(corpus, cache_dir, sets=("Probe", "ProbeArr"))
    folders = cache_mod.list_folders(cache_dir)
    assert {f.name for f in folders} == {"Probe", "ProbeArr"}
    assert all(cache_mod.verify_folder(f, rehash=True) == [] for f in folders)
    info = cache_mod.folder_info(folders[0])
    assert info["rows"] == N and info["ok"] == N and info["bytes"] > 0
    # A changed audio file and a damaged part are both reported.
    wav(corpus / "spk1" / "angry" / "t0.wav", make_tone(77))
    probe_folder = next(f for f in folders if f.name == "Probe")
    assert any("changed since extraction" in p for p in cache_mod.verify_folder(probe_folder, rehash=True))
    part = next(probe_folder.path.glob("part-*.parquet"))
    part.write_bytes(b"not parquet")
    assert any("unreadable Parquet" in p for p in cache_mod.verify_folder(probe_folder))
    with pytest.raises(CacheError, match="cache verify"):
        FeatureCache("demo", get_feature_set("Probe"), cache_dir).index()
    cache_mod.clear_folders([probe_folder])
    assert [f.name for f in cache_mod.list_folders(cache_dir)] == ["ProbeArr"]


def test_stale_folders_are_marked_and_cleared(corpus, cache_dir, probe):
    import shutil

    from click.testing import CliRunner

    from serbench.cli import cli

    _run(corpus, cache_dir)
    current = next(iter(cache_mod.list_folders(cache_dir)))
    stale = current.path.with_name("Probe-0123456789ab")  # as if written by an older version
    shutil.copytree(current.path, stale)
    meta = json.loads((stale / "meta.json").read_text())
    (stale / "meta.json").write_text(json.dumps({**meta, "key": "0123456789ab"}))
    folders = {f.key: f for f in cache_mod.list_folders(cache_dir, corpus="demo", feature_sets=["probe"])}
    assert folders[current.key].current and not folders["0123456789ab"].current
    runner = CliRunner()
    res = runner.invoke(cli, ["cache", "info", "--cache", str(cache_dir)])
    assert res.exit_code == 0 and "0123456789ab*" in res.output and "1 stale folder" in res.output
    res = runner.invoke(cli, ["cache", "clear", "--cache", str(cache_dir), "--stale", "--yes"])
    assert res.exit_code == 0 and "deleted 1 folder" in res.output
    assert not stale.exists() and current.path.is_dir()


def test_extractor_errors_are_reported_not_cached(corpus, cache_dir, probe, wav, make_tone):
    wav(corpus / "spk1" / "angry" / "t0.wav", 0.9 * make_tone(0) / np.abs(make_tone(0)).max())
    probe.fail_peak_above = 0.5
    r = _run(corpus, cache_dir)
    [f] = r.sets["Probe"].failed
    assert f.utterance_id == "spk1_angry_t0" and "ValueError: probe cannot handle loud input" in f.reason
    X, m = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)  # retried, fails again
    row = m.set_index("utterance_id").loc["spk1_angry_t0"]
    assert row["status"] == "failed" and "probe cannot handle" in row["status_detail"]
    assert X.loc["spk1_angry_t0"].isna().all()
    probe.fail_peak_above = None  # the extractor is fixed: the file is extracted without --retry-failed
    r = _run(corpus, cache_dir)
    assert (r.sets["Probe"].extracted, r.sets["Probe"].cached, r.sets["Probe"].failed) == (1, N - 1, [])
