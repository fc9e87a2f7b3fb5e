"""The feature cache: damaged inputs are named in one line, one writer per cache set,
option lists that name nothing are refused, odd audio is recorded with its row."""
from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from serbench.cli import cli
from serbench.features import CacheError, extract, load
from serbench.features import cache as cache_mod

extract_mod = importlib.import_module("serbench.features.extract")

N = 8


def _run(corpus, cache_dir, sets=("Probe",), **kw):
    return extract("demo", corpus, list(sets), cache=cache_dir, progress=False, **kw)


def _folder(cache_dir):
    (folder,) = cache_mod.list_folders(cache_dir)
    return folder



# ---- a foreign Parquet part, a garbage meta.json ------------------------------------------

def test_a_foreign_parquet_part_is_named_in_one_short_line(corpus, cache_dir, probe, one_line_error):
    _run(corpus, cache_dir)
    folder = _folder(cache_dir).path
    wide = pa.table({f"col_with_a_rather_long_name_{i}": [1.0] for i in range(200)})
    foreign = folder / "part-99999999999999999999-1-000001.parquet"
    pq.write_table(wide, foreign)
    with pytest.raises(CacheError) as err:
        load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    message = str(err.value)
    assert str(foreign) in message and "not a part of this cache set" in message
    assert "\n" not in message and len(message) < 400 + len(str(foreign)), len(message)
    result = CliRunner().invoke(cli, ["extract", "--corpus", "demo", "--root", str(corpus), "--features", "Probe",
                                      "--cache", str(cache_dir), "--no-progress"])
    one_line_error(result, foreign.name, "not a part of this cache set")
    assert len(result.output) < 600


def test_long_pyarrow_errors_are_capped():
    assert len(cache_mod._one_line(ValueError("x" * 5000))) == 200


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]", json.dumps({"name": "Other"})])
def test_garbage_meta_json_fails_verify_and_extract_alike(corpus, cache_dir, probe, garbage, one_line_error):
    _run(corpus, cache_dir)
    folder = _folder(cache_dir).path
    (folder / "meta.json").write_text(garbage)
    verify = CliRunner().invoke(cli, ["cache", "verify", "--cache", str(cache_dir)])
    assert verify.exit_code == 1, verify.output
    assert "meta.json" in verify.output and "damaged" in verify.output and "not a cache set" not in verify.output
    result = CliRunner().invoke(cli, ["extract", "--corpus", "demo", "--root", str(corpus), "--features", "Probe",
                                      "--cache", str(cache_dir), "--no-progress"])
    one_line_error(result, str(folder / "meta.json"), "delete")


def test_a_folder_without_parts_and_a_foreign_meta_is_still_only_noted(corpus, cache_dir, probe):
    _run(corpus, cache_dir)
    fake = cache_dir / "demo" / "Probe-0123456789ab"
    fake.mkdir()
    (fake / "meta.json").write_text("{}")
    verify = CliRunner().invoke(cli, ["cache", "verify", "--cache", str(cache_dir)])
    assert verify.exit_code == 0 and "not a cache set" in verify.output


# ---- option lists ----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["extract", "--corpus", "demo", "--root", "CORPUS"], ["cache", "clear", "--yes"],
                                  ["cache", "info"], ["cache", "verify"]])
@pytest.mark.parametrize("value", [",", " , ,", ""])
def test_a_feature_list_naming_nothing_is_refused(corpus, cache_dir, probe, args, value, one_line_error):
    _run(corpus, cache_dir)
    args = [str(corpus) if a == "CORPUS" else a for a in args]
    result = CliRunner().invoke(cli, [*args, "--features", value, "--cache", str(cache_dir)])
    one_line_error(result, "--features", "names no feature set")
    assert _folder(cache_dir).path.is_dir()          # `cache clear --features ,` cleared nothing


# ---- odd audio is recorded with its row ---------------------------------------------------------

def test_truncated_and_over_full_scale_audio_are_recorded(corpus, cache_dir, probe, wav, make_tone):
    cut = corpus / "spk1" / "angry" / "t0.wav"
    data = cut.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    wav(corpus / "spk1" / "sad" / "t0.wav", make_tone(3) * 1000, subtype="FLOAT")
    report = _run(corpus, cache_dir)
    notes = "\n".join(report.notes)
    assert f"{cut}: truncated" in notes and "0.50 s" in notes and "0.25 s" in notes
    assert "spk1/sad/t0.wav: samples reach" in notes and "full scale" in notes
    _, manifest = load("demo", "Probe", root=corpus, cache=cache_dir, progress=False)
    detail = dict(zip(manifest.utterance_id, manifest.status_detail))
    status = dict(zip(manifest.utterance_id, manifest.status))
    truncated = [u for u, d in detail.items() if "truncated" in d]
    loud = [u for u, d in detail.items() if "full scale" in d]
    assert len(truncated) == 1 and len(loud) == 1 and status[truncated[0]] == status[loud[0]] == "ok"
    assert sum(bool(d) for d in detail.values()) == 2


# ---- one writer per cache set ---------------------------------------------------------------------

def _slow_process_one(task):
    time.sleep(0.25)
    return _REAL_PROCESS_ONE(task)


_REAL_PROCESS_ONE = extract_mod._process_one


def _extract_in_child(corpus, cache_dir, queue):
    report = _run(corpus, cache_dir)
    r = report.sets["Probe"]
    queue.put((r.extracted, r.cached))


def test_a_second_extraction_waits_for_the_first_then_reads_its_rows(corpus, cache_dir, probe, monkeypatch, caplog):
    monkeypatch.setattr(extract_mod, "_process_one", _slow_process_one)   # 8 files: ~2 s for the first writer
    ctx = multiprocessing.get_context("fork")      # the child inherits the registered probe set
    queue = ctx.Queue()
    first = ctx.Process(target=_extract_in_child, args=(corpus, cache_dir, queue))
    first.start()
    try:
        lock = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:         # until the first one holds the set's lock
            found = list(cache_dir.glob("demo/Probe-*/.lock"))
            if found and found[0].read_text().strip() == str(first.pid):
                lock = found[0]
                break
            time.sleep(0.02)
        assert lock is not None, "the first extraction never took the lock"
        with caplog.at_level(logging.WARNING, logger="serbench.features.cache"):
            second = _run(corpus, cache_dir)
        assert f"waiting for pid {first.pid} extracting into {lock.parent}" in caplog.text
        assert second.sets["Probe"].extracted == 0 and second.sets["Probe"].cached == N
        assert queue.get(timeout=30) == (N, 0)
    finally:
        first.join(30)
        if first.is_alive():
            first.kill()
    assert probe.calls == 0          # this process extracted nothing


def test_the_lock_is_free_after_an_extraction_and_a_cached_run_takes_none(corpus, cache_dir, probe):
    import fcntl

    _run(corpus, cache_dir)
    lock = _folder(cache_dir).path / ".lock"
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)   # free: would raise BlockingIOError otherwise
        report = _run(corpus, cache_dir)                 # fully cached: never waits for the lock
    assert report.sets["Probe"].cached == N and report.sets["Probe"].extracted == 0
    assert np.all([f.current for f in cache_mod.list_folders(cache_dir)])
