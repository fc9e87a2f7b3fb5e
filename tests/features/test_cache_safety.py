"""The cache never touches what is not its own, reads without writing, and survives damage and full disks."""
from __future__ import annotations

import builtins
import errno
import importlib
import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from serbench.cli import cli
from serbench.errors import CorpusError
from serbench.features import CacheError, extract, get_feature_set, load
from serbench.features import cache as cache_mod
from serbench.features.cache import FeatureCache
from serbench.io import OutsideError

extract_mod = importlib.import_module("serbench.features.extract")  # the module, not the function it exports

N = 8


def _run(corpus, cache_dir, sets=("Probe",), **kw):
    return extract("demo", corpus, list(sets), cache=cache_dir, progress=False, **kw)


def _cli(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output and not isinstance(result.exception, (AssertionError, TypeError))
    return result


def _several_parts(corpus, cache_dir, monkeypatch) -> FeatureCache:
    """A complete Probe cache in 3 parts (commits of 3 rows, no compaction)."""
    monkeypatch.setattr(extract_mod, "COMMIT_ROWS", 3)
    with monkeypatch.context() as m:
        m.setattr(FeatureCache, "compact", lambda self, min_parts=None: False)
        _run(corpus, cache_dir)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    assert len(store.parts()) == 3
    return store


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: every write, create, rename or delete under ``folder`` fails with EROFS.

    Simulates a read-only disk at the Python level (the tests may run as root, for whom
    file modes do not stop writes); pyarrow reads through its own C++ file layer, unaffected.
    """
    roots: list[str] = []

    def inside(path) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fspath(path))
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    def deny(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))

    def guard(real, writes=lambda *a, **k: True):
        def wrapper(path, *args, **kwargs):
            if inside(path) and writes(*args, **kwargs):
                deny(path)
            return real(path, *args, **kwargs)
        return wrapper

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    monkeypatch.setattr(os, "open", guard(os.open, lambda flags, *a, **k: bool(flags & write_flags)))
    for name in ("mkdir", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    opener = guard(builtins.open, lambda mode="r", *a, **k: any(c in mode for c in "wax+"))
    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if inside(path) and mode & os.W_OK
                        else real_access(path, mode, **kw))

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        roots.append(os.path.abspath(folder))
        return folder
    return make


# ---- only folders whose own meta.json says so are cache sets ------------------------------

def test_a_folder_named_like_a_cache_set_is_left_alone(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    user = cache_dir / "mydata" / "photos-0123456789ab"
    user.mkdir(parents=True)
    (user / "holiday.jpg").write_bytes(b"precious")
    fake = cache_dir / "demo" / "Probe-0123456789ab"  # right place, but a meta.json of another folder
    fake.mkdir()
    (real,) = cache_mod.list_folders(cache_dir)
    (fake / "meta.json").write_text((real.path / "meta.json").read_text())
    (fake / "notes.txt").write_text("mine")
    assert [f.path for f in cache_mod.list_folders(cache_dir)] == [real.path]
    assert set(cache_mod.unrecognized_folders(cache_dir)) == {user, fake}
    info = _cli("cache", "info", "--cache", str(cache_dir))
    assert info.exit_code == 0 and "stale" not in info.output and "leaves it alone" in info.output
    cleared = _cli("cache", "clear", "--cache", str(cache_dir), "--yes")
    assert cleared.exit_code == 0 and "deleted 1 folder" in cleared.output
    assert (user / "holiday.jpg").read_bytes() == b"precious" and (fake / "notes.txt").read_text() == "mine"
    assert not real.path.exists()


def test_clear_refuses_folders_reached_through_links(corpus, cache_dir, probe, tmp_path):
    elsewhere = tmp_path / "elsewhere-cache"
    _run(corpus, elsewhere)
    cache_dir.mkdir()
    (cache_dir / "demo").symlink_to(elsewhere / "demo")  # a corpus folder linked in from another disk
    folders = cache_mod.list_folders(cache_dir)
    assert len(folders) == 1  # still read and listed ...
    with pytest.raises(OutsideError, match="outside"):
        cache_mod.clear_folders(folders)  # ... but never deleted through the link
    result = _cli("cache", "clear", "--cache", str(cache_dir), "--yes")
    assert result.exit_code == 2 and result.output.startswith("error:") and len(result.output.splitlines()) == 1
    assert cache_mod.list_folders(elsewhere)[0].path.is_dir()


def test_corpus_names_never_become_paths(cache_dir):
    with pytest.raises(CorpusError, match="not a path"):
        FeatureCache("../escaped", get_feature_set("MFCC"), cache_dir)
    for args in (["cache", "info"], ["cache", "clear", "--yes"]):
        result = _cli(*args, "--cache", str(cache_dir), "--corpus", "../x")
        assert result.exit_code == 2 and "known corpora" in result.output
    result = _cli("extract", "--corpus", "a/b", "--root", str(cache_dir), "--cache", str(cache_dir))
    assert result.exit_code == 2 and "not a path" in result.output


# ---- damaged parts -------------------------------------------------------------------------

def test_cache_info_names_a_truncated_part(corpus, cache_dir, probe, monkeypatch):
    store = _several_parts(corpus, cache_dir, monkeypatch)
    part = store.parts()[1]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    folder = cache_mod.list_folders(cache_dir)[0]
    info = cache_mod.folder_info(folder)
    assert info["rows"] is None and part.name in str(info["error"])
    result = _cli("cache", "info", "--cache", str(cache_dir))
    assert result.exit_code == 0 and "damaged:" in result.output and part.name in result.output.replace("\n", "")
    verify = _cli("cache", "verify", "--cache", str(cache_dir))
    assert verify.exit_code == 1 and part.name in verify.output.replace("\n", "")


def test_a_flipped_bit_in_a_part_is_detected(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    (part,) = store.parts()
    chunk = pq.ParquetFile(part).metadata.row_group(0).column(5)  # the "mean" feature column
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(part.read_bytes())
    data[start + chunk.total_compressed_size - 3] ^= 0x10  # inside the column's last page body
    part.write_bytes(bytes(data))
    problems = cache_mod.verify_folder(cache_mod.list_folders(cache_dir)[0])
    assert len(problems) == 1 and str(part) in problems[0] and "checksum" in problems[0].lower()
    with pytest.raises(CacheError, match=part.name):
        store.read()
    with pytest.raises(CacheError, match="cache verify"):
        load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)


def test_parts_are_written_with_page_checksums_and_plain_float_columns(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    (part,) = FeatureCache("demo", get_feature_set("Probe"), cache_dir).parts()
    meta = pq.ParquetFile(part).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert not any("DICTIONARY" in e for e in encodings["mean"]) and "PLAIN" in encodings["mean"]


def test_verify_reports_column_types_that_differ(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    (part,) = store.parts()
    table = pq.read_table(part)
    pq.write_table(table.set_column(5, "mean", table.column("mean").cast("float64")), part)
    problems = cache_mod.verify_folder(cache_mod.list_folders(cache_dir)[0])
    assert any("column types differ" in p and "mean" in p for p in problems)


# ---- read-only caches and full disks ---------------------------------------------------------

def test_a_complete_read_only_cache_is_simply_read(corpus, cache_dir, probe, monkeypatch, read_only):
    store = _several_parts(corpus, cache_dir, monkeypatch)
    parts = store.parts()
    read_only(cache_dir)
    with pytest.raises(OSError):  # the simulation works
        (cache_dir / "probe.txt").write_text("x")
    r = _run(corpus, cache_dir)
    assert (r.sets["Probe"].extracted, r.sets["Probe"].cached) == (0, N) and r.notes == []
    X, m = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    assert X.shape == (N, 4) and X.notna().all().all()
    result = _cli("extract", "--corpus", "demo", "--root", str(corpus), "--cache", str(cache_dir),
                  "--features", "Probe", "--no-progress")
    assert result.exit_code == 0, result.output
    assert store.parts() == parts and probe.calls == N


def test_an_empty_read_only_cache_is_a_one_line_error(corpus, cache_dir, probe, read_only):
    read_only(cache_dir)
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    with pytest.raises(CacheError, match=rf"{store.path}.* not writable .*--cache"):
        _run(corpus, cache_dir)
    assert probe.calls == 0  # refused before extracting anything
    result = _cli("extract", "--corpus", "demo", "--root", str(corpus), "--cache", str(cache_dir),
                  "--features", "Probe", "--no-progress")
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1 and "not writable" in result.output


def test_a_full_disk_while_compacting_leaves_the_parts(corpus, cache_dir, probe, monkeypatch):
    monkeypatch.setattr(extract_mod, "COMMIT_ROWS", 3)
    real = pq.write_table

    def write(table, where, **kwargs):
        if table.num_rows == N:  # the merged part: commits hold 3, 3 and 2 rows
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, **kwargs)

    monkeypatch.setattr(cache_mod.pq, "write_table", write)
    r = _run(corpus, cache_dir)
    assert r.sets["Probe"].extracted == N
    assert len(r.notes) == 1 and "could not compact 3 parts" in r.notes[0] and "kept" in r.notes[0]
    store = FeatureCache("demo", get_feature_set("Probe"), cache_dir)
    assert len(store.parts()) == 3 and not list(store.path.glob(".*.tmp"))
    X, _ = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    assert X.notna().all().all() and probe.calls == N
    monkeypatch.setattr(cache_mod.pq, "write_table", real)
    assert _run(corpus, cache_dir).notes == [] and len(store.parts()) == 1


def test_meta_json_is_what_makes_a_cache_set(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    folder = cache_mod.list_folders(cache_dir)[0]
    meta = json.loads((folder.path / "meta.json").read_text())
    for broken in ({**meta, "corpus": "casia"}, {**meta, "name": "Other"}, ["not", "an", "object"]):
        (folder.path / "meta.json").write_text(json.dumps(broken))
        assert cache_mod.list_folders(cache_dir) == []
    (folder.path / "meta.json").write_text(json.dumps(meta))
    assert cache_mod.list_folders(cache_dir) == [folder]
