"""The extraction loop and `serbench extract` / `serbench cache` on a tiny synthesized corpus."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.audio import load_audio
from serbench.cli import cli
from serbench.features import FeatureSetError, extract, get_feature_set, load, load_arrays


def _corrupt(path, wav):
    """A WAV whose header is fine but whose samples are not finite: decoding it fails."""
    x = np.full(8000, 0.1, dtype=np.float32)
    x[100] = np.nan
    path.unlink(missing_ok=True)
    wav(path, x, subtype="FLOAT")


def test_corrupt_file_fails_alone(corpus, cache_dir, wav):
    bad = corpus / "spk2" / "angry" / "t1.wav"
    _corrupt(bad, wav)
    report = extract("demo", corpus, ["IS09"], cache=cache_dir, progress=False)
    r = report.sets["IS09"]
    assert r.extracted == 7 and len(r.failed) == 1
    f = r.failed[0]
    assert f.utterance_id == "spk2_angry_t1" and f.path == str(bad.resolve())
    assert "NaN or infinite" in f.reason
    X, m = load("demo", "IS09", root=corpus, cache=cache_dir, progress=False)
    status = m.set_index("utterance_id")["status"]
    assert status["spk2_angry_t1"] == "failed" and (status.drop("spk2_angry_t1") == "ok").all()
    assert X.loc["spk2_angry_t1"].isna().all() and X.drop(index="spk2_angry_t1").notna().all().all()


def test_load_returns_manifest_order_and_columns(corpus, cache_dir):
    X, m = load("demo", "eGeMAPS", root=corpus, cache=cache_dir, progress=False, emotions=["sad"])
    assert list(X.index) == m["utterance_id"].tolist() and len(X) == 4
    assert X.index.name == "utterance_id" and X.dtypes.eq(np.float64).all() and X.shape[1] == 88
    assert {"status", "status_detail", "speaker", "emotion"} <= set(m.columns)


@pytest.mark.slow
def test_jobs2_equals_jobs1(corpus, tmp_path):
    sets = ["IS09", "eGeMAPS"]
    r1 = extract("demo", corpus, sets, cache=tmp_path / "c1", progress=False, jobs=1)
    r2 = extract("demo", corpus, sets, cache=tmp_path / "c2", progress=False, jobs=2)
    for name in sets:
        assert r1.sets[name].extracted == r2.sets[name].extracted == 8
        X1, _ = load("demo", name, root=corpus, cache=tmp_path / "c1", progress=False)
        X2, _ = load("demo", name, root=corpus, cache=tmp_path / "c2", progress=False)
        pd.testing.assert_frame_equal(X1, X2)


def test_extraction_on_executors_gives_the_cache_of_one_process(corpus, tmp_path):
    from serbench.executors import DaskExecutor, LocalProcesses

    ref, _ = load("demo", "MFCC", root=corpus, cache=tmp_path / "one", progress=False)
    with LocalProcesses(2, threads=1) as ex:
        local, _ = load("demo", "MFCC", root=corpus, cache=tmp_path / "local", progress=False, executor=ex)
    with DaskExecutor("local:2", threads=1) as ex:
        report = extract("demo", corpus, ["MFCC"], cache=tmp_path / "dask", progress=False, executor=ex)
        dask, _ = load("demo", "MFCC", root=corpus, cache=tmp_path / "dask", progress=False)
    assert report.sets["MFCC"].extracted == len(ref) and not report.sets["MFCC"].failed
    pd.testing.assert_frame_equal(ref, local)
    pd.testing.assert_frame_equal(ref, dask)


def test_a_worker_that_sees_another_file_at_the_path_reports_it(corpus, tmp_path):
    from serbench.features.extract import _process_chunk_checked

    path = str(next(corpus.rglob("*.wav")))
    (uid, result, _), = _process_chunk_checked(None, [("u1", path, "0" * 64, ("MFCC",))])
    status, reason, values, _ = result["MFCC"]
    assert status == "error" and values is None and path in reason and "different file" in reason
    (uid, result, _), = _process_chunk_checked(None, [("u2", str(tmp_path / "gone.wav"), "0" * 64, ("MFCC",))])
    assert result["MFCC"][0] == "error" and "must be visible to every worker" in result["MFCC"][1]


@pytest.mark.slow  # the first MFCC call pays librosa's lazy imports (~5 s)
def test_mfcc_through_cache_matches_module(corpus, cache_dir):
    from serbench.features import mfcc

    X, m = load("demo", "MFCC", root=corpus, cache=cache_dir, progress=False)
    assert list(X.columns) == mfcc.feature_names()
    direct = mfcc.extract(load_audio(m["path"].iloc[0]).signal, 16000)
    # float32 storage: ~7 significant digits.
    np.testing.assert_allclose(X.iloc[0].to_numpy(), direct, rtol=2e-6, atol=1e-6)


@pytest.mark.slow
def test_melseg_arrays(corpus, cache_dir):
    melseg = pytest.importorskip("serbench.features.melseg")
    arrays, m = load_arrays("demo", "melseg", root=corpus, cache=cache_dir, progress=False)
    uid, path = m["utterance_id"].iloc[0], m["path"].iloc[0]
    a = arrays[uid]
    assert a.dtype == np.float32 and a.shape[:2] == (3, 60)
    np.testing.assert_array_equal(a, melseg.logmel3(load_audio(path).signal, 16000))


def test_bad_arguments(corpus, cache_dir):
    with pytest.raises(FeatureSetError, match="array set"):
        load("demo", "melseg", root=corpus, cache=cache_dir)
    with pytest.raises(FeatureSetError, match="vector set"):
        load_arrays("demo", "IS09", root=corpus, cache=cache_dir)
    with pytest.raises(FeatureSetError, match="jobs"):
        extract("demo", corpus, ["IS09"], cache=cache_dir, jobs=0)
    with pytest.raises(FeatureSetError, match="unknown feature set 'IS99'"):
        extract("demo", corpus, ["IS99"], cache=cache_dir)


def test_cli_extract_and_cache_commands(corpus, cache_dir, wav):
    _corrupt(corpus / "spk1" / "sad" / "t0.wav", wav)
    runner = CliRunner()
    args = ["extract", "--corpus", "demo", "--root", str(corpus), "--features", "is09,egemaps",
            "--cache", str(cache_dir), "--no-progress"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "IS09" in res.output and "eGeMAPS" in res.output
    assert "1 file(s) failed" in res.output
    line = next(ln for ln in res.output.splitlines() if "t0.wav" in ln)
    assert "NaN or infinite" in line and "[IS09, eGeMAPS]" in line
    line = next(ln for ln in res.output.splitlines() if "IS09" in ln and "│" in ln)
    assert [c.strip() for c in line.split("│")[1:-1]][:5] == ["IS09", "7", "0", "0", "1"]

    res = runner.invoke(cli, args + ["--strict"])
    assert res.exit_code == 1
    line = next(ln for ln in res.output.splitlines() if "IS09" in ln and "│" in ln)
    assert [c.strip() for c in line.split("│")[1:-1]][:5] == ["IS09", "0", "8", "0", "1"]

    res = runner.invoke(cli, ["extract", "--corpus", "demo", "--root", str(corpus), "--features", "nope",
                              "--cache", str(cache_dir)])
    assert res.exit_code == 2 and "unknown feature set 'nope'" in res.output

    res = runner.invoke(cli, ["cache", "info", "--cache", str(cache_dir)])
    assert res.exit_code == 0 and "IS09" in res.output and "eGeMAPS" in res.output
    res = runner.invoke(cli, ["cache", "verify", "--cache", str(cache_dir), "--rehash"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["cache", "clear", "--cache", str(cache_dir), "--features", "IS09"], input="n\n")
    assert res.exit_code != 0 and (cache_dir / "demo" / f"IS09-{get_feature_set('IS09').key}").is_dir()
    res = runner.invoke(cli, ["cache", "clear", "--cache", str(cache_dir), "--features", "IS09", "--yes"])
    assert res.exit_code == 0 and "deleted 1 folder" in res.output
    assert not (cache_dir / "demo" / f"IS09-{get_feature_set('IS09').key}").exists()
    assert (cache_dir / "demo" / f"eGeMAPS-{get_feature_set('eGeMAPS').key}").is_dir()


def test_spectral_sets_extract_without_librosa_or_numba(corpus, tmp_path):
    # numba's cached functions once had to be compiled in this process before the workers started (a race
    # in its cache files); the extractors of these sets no longer load librosa, hence no numba (in-process
    # extraction, so the extractors run in the interpreter inspected).
    import json
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from serbench.features import extract\n"
            f"r = extract('demo', {str(corpus)!r}, ['melseg', 'MFCC', 'PLP'], cache={str(tmp_path / 'c')!r}, "
            "progress=False, jobs=1)\n"
            "print(json.dumps([{n: s.extracted for n, s in r.sets.items()}, "
            "[m for m in ('librosa', 'numba') if m in sys.modules]]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    extracted, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert extracted == {"melseg": 8, "MFCC": 8, "PLP": 8} and loaded == []
