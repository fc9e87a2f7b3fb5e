"""Predicting with a bundle: inputs of every kind, windows, failures, speakers, output formats, the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from serbench.bundles import PredictError, load_model
from serbench.bundles.inference import windows
from serbench.cli import cli


SR = 16000


def scores(df: pd.DataFrame) -> np.ndarray:
    return df[[c for c in df.columns if c.startswith(("prob_", "score_"))]].to_numpy()


@pytest.fixture(scope="module")
def long_file(tmp_path_factory, harmonic):
    """60 s: angry, then sad, then angry again (20 s each)."""
    x = np.concatenate([harmonic(20.0, "angry"), harmonic(20.0, "sad"), harmonic(20.0, "angry", k=1)])
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, x, SR)
    return path


# ---------------------------------------------------------------- windows

@pytest.mark.parametrize("n,w,h,expected", [
    (60 * SR, 5.0, 5.0, [(k * 5 * SR, (k + 1) * 5 * SR) for k in range(12)]),
    (10 * SR, 4.0, 3.0, [(0, 4 * SR), (3 * SR, 7 * SR), (6 * SR, 10 * SR)]),
    (11 * SR, 4.0, 3.0, [(0, 4 * SR), (3 * SR, 7 * SR), (6 * SR, 10 * SR), (7 * SR, 11 * SR)]),
    (SR, 4.0, 2.0, [(0, SR)]),
])
def test_windows_cover_the_file_without_partial_windows(n, w, h, expected):
    assert windows(n, w, h) == expected


def test_window_rows_on_a_60_s_file(trained, long_file):
    model = trained("svm-linear")
    df = model.predict([long_file], window=4.0, hop=3.0)
    win, summary = df[df.segment == "window"], df[df.segment == "summary"]
    assert len(win) == math.ceil((60 - 4) / 3) + 1 == 20 and len(summary) == 1 and len(df) == 21
    assert win.start_s.iloc[0] == 0 and win.end_s.iloc[-1] == pytest.approx(60.0)
    assert ((win.end_s - win.start_s).round(6) == 4.0).all() and (win.status == "ok").all()
    assert summary.start_s.iloc[0] == 0 and summary.end_s.iloc[0] == pytest.approx(60.0)
    np.testing.assert_allclose(scores(summary)[0], scores(win).mean(axis=0))
    assert summary.emotion.iloc[0] == model.labels[int(np.argmax(scores(summary)[0]))]
    # The windows follow the recording: the middle third is the sad part.
    middle = win[(win.start_s >= 21) & (win.end_s <= 39)]
    outer = win[(win.end_s <= 19) | (win.start_s >= 41)]
    assert (middle.emotion == "sad").all() and (outer.emotion == "angry").all()
    assert df.attrs["summary"].startswith("mean of the window probabilities")


def test_window_options_are_checked(trained, long_file):
    model = trained("svm-linear")
    for kw, msg in (({"window": 0.01}, "--window"), ({"window": 2.0, "hop": 0.0}, "--hop"),
                    ({"hop": 1.0}, "--hop needs --window")):
        with pytest.raises(PredictError, match=msg):
            model.predict([long_file], **kw)


def test_silent_windows_are_skipped_not_failed(trained, tmp_path, harmonic):
    x = np.concatenate([harmonic(2.0, "angry"), np.zeros(2 * SR, np.float32), harmonic(2.0, "sad")])
    path = tmp_path / "pause.wav"
    sf.write(path, x, SR)
    df = trained("svm-linear").predict([path], window=1.0)
    assert list(df.status) == ["ok", "ok", "skipped", "skipped", "ok", "ok", "ok"]
    assert df.error.iloc[2].startswith("digital silence") and pd.isna(df.emotion.iloc[2])
    np.testing.assert_allclose(scores(df.iloc[[6]])[0], scores(df[df.status.eq("ok") & df.segment.eq("window")]).mean(0))


# ---------------------------------------------------------------- inputs

def test_folders_arrays_rates_and_channels(trained, corpus, tmp_path):
    model = trained("svm-linear")
    f = corpus / "spk2" / "sad" / "t1.wav"
    x, sr = sf.read(f, dtype="float32")
    by_file = model.predict([f])
    by_array = model.predict([x])
    np.testing.assert_array_equal(scores(by_file), scores(by_array))
    assert by_array.file.iloc[0] == "<array 0>"
    # 44.1 kHz stereo FLAC of the same audio: read, averaged to mono and resampled to 16 kHz.
    import soxr

    stereo = np.stack([x, x], axis=1)
    flac = tmp_path / "stereo.flac"
    sf.write(flac, soxr.resample(stereo, SR, 44100), 44100)
    by_flac = model.predict([flac, (soxr.resample(x, SR, 8000), 8000)])
    assert (by_flac.status == "ok").all() and list(by_flac.emotion) == ["sad", "sad"]
    # A folder: its audio files, recursively and sorted; other files are listed, not predicted.
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "sub" / "b.wav", x, SR)
    sf.write(folder / "a.flac", x, SR)
    (folder / "readme.txt").write_text("not audio")
    df = model.predict([folder])
    assert [p.rsplit("/", 1)[-1] for p in df.file] == ["a.flac", "b.wav"]
    assert df.attrs["passed_over"] == [str(folder / "readme.txt")]


def test_unreadable_inputs_are_listed_and_do_not_stop_the_others(trained, corpus, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, np.float32), SR)
    good = corpus / "spk1" / "angry" / "t2.wav"
    df = trained("svm-linear").predict([bad, good, empty, tmp_path / "absent.wav", silent, np.array([np.nan, 0.1])])
    assert list(df.status) == ["failed", "ok", "failed", "failed", "failed", "failed"]
    reasons = list(df.error)
    assert "unreadable audio" in reasons[0] and reasons[1] == "" and "empty" in reasons[2]
    assert "does not exist" in reasons[3] and "digital silence" in reasons[4] and "NaN" in reasons[5]
    assert df.emotion.iloc[1] == "angry" and df.emotion.iloc[[0, 2, 3, 4, 5]].isna().all()
    assert np.isnan(scores(df.iloc[[0]])).all()


def test_too_short_for_the_features_fails_that_input_only(trained, corpus, harmonic):
    tiny = harmonic(0.01, "angry")                   # shorter than one 25 ms window
    df = trained("crnn").predict([tiny, corpus / "spk3" / "sad" / "t0.wav"])
    assert list(df.status) == ["failed", "ok"] and "melseg features could not be computed" in df.error.iloc[0]


# ---------------------------------------------------------------- per-speaker normalization

def test_speaker_norm_bundle_needs_speakers(trained, corpus):
    model = trained("svm-spknorm")
    assert model.record["normalization"]["speaker_norm"] is True
    with pytest.raises(PredictError, match="per-speaker normalization.*--speaker NAME"):
        model.predict([corpus / "spk1" / "sad" / "t0.wav"])


@pytest.fixture
def few_per_speaker(monkeypatch):
    """The test corpus has 6 files per speaker, fewer than MIN_SPEAKER_INPUTS: these tests lower it."""
    from serbench.bundles import speaker_norm

    monkeypatch.setattr(speaker_norm, "MIN_SPEAKER_INPUTS", 2)


def test_speaker_norm_with_speakers_gives_the_benchmark_scores(trained, corpus, cache, benchmark_scores,
                                                               few_per_speaker):
    """All of a speaker's utterances normalized together: exactly the benchmark's per-speaker inputs."""
    model = trained("svm-spknorm")
    data, expected = benchmark_scores(model, corpus, cache)
    rows = np.flatnonzero(data.speakers == "spk2")
    files = [str(corpus / "spk2" / u.split("_")[1] / f"{u.split('_')[2]}.wav") for u in data.utterance_ids[rows]]
    got = model.predict(files, speakers="spk2")
    np.testing.assert_allclose(scores(got), expected[rows], rtol=0, atol=1e-12)
    assert (got.speaker == "spk2").all()
    by_folder = model.predict([corpus], speakers=lambda p: p.parent.parent.name)
    assert (by_folder.status == "ok").all() and set(by_folder.speaker) == {"spk1", "spk2", "spk3"}


def test_speaker_norm_too_few_inputs_of_a_speaker_are_refused(trained, corpus, few_per_speaker):
    model = trained("svm-spknorm")
    files = [corpus / "spk1" / "sad" / "t0.wav", corpus / "spk1" / "angry" / "t0.wav", corpus / "spk3" / "sad" / "t1.wav"]
    with pytest.raises(PredictError, match="needs at least 2 inputs of each speaker.*speaker 'b' has 1"):
        model.predict(files, speakers=["a", "a", "b"])


def test_speaker_norm_windows_normalize_each_file_with_its_own_windows(trained, long_file):
    df = trained("svm-spknorm").predict([long_file], window=2.5)      # 24 windows: above the minimum of 20
    assert (df.status == "ok").all() and len(df) == 25 and (df.speaker == str(long_file)).all()
    few = trained("svm-spknorm").predict([long_file], window=5.0)     # 12 windows: each fails, naming the minimum
    assert (few.status == "failed").all() and "needs at least 20" in few.error.iloc[0]


# ---------------------------------------------------------------- writing and the CLI

@pytest.mark.parametrize("suffix", ["csv", "parquet", "json"])
def test_cli_predict_writes_every_format_and_exits_1_on_failures(trained, corpus, tmp_path, suffix):
    model = trained("svm-linear")
    out = tmp_path / f"pred.{suffix}"
    (tmp_path / "empty.wav").write_bytes(b"")     # there but unreadable: that input fails, the others do not
    res = CliRunner().invoke(cli, ["predict", "--model", str(model.path), str(corpus / "spk1"),
                                   str(tmp_path / "empty.wav"), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "failed: " in res.output and "empty.wav: file is empty (0 bytes)" in res.output
    assert "probabilities: softmax of the SVM's decision values" in res.output
    assert "7 input(s): 6 predicted, 1 failed" in res.output
    df = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": lambda p: pd.DataFrame(json.loads(p.read_text()))}[
        suffix](out)
    expected = model.predict([corpus / "spk1", tmp_path / "empty.wav"])
    assert list(df.columns) == list(expected.columns) and len(df) == 7
    np.testing.assert_allclose(scores(df)[:6], scores(expected)[:6], rtol=1e-12)
    assert list(df.emotion[:6]) == list(expected.emotion[:6]) and df.status.iloc[6] == "failed"


def test_cli_predict_prints_a_table_and_reads_a_corpus(trained, corpus):
    model = trained("svm-linear")
    res = CliRunner().invoke(cli, ["predict", "--model", str(model.path), "--corpus", "demo", "--root", str(corpus),
                                   "--emotions", "sad"])
    assert res.exit_code == 0, res.output
    assert "utterance_id" in res.output and "spk3_sad_t2" in res.output and "prob_angry" in res.output
    assert "9 input(s): 9 predicted, 0 failed" in res.output


def test_cli_predict_option_errors_are_one_line(trained, corpus):
    model = trained("svm-linear")
    for args, msg in ((["--corpus", "demo"], "--corpus and --root go together"), ([], "nothing to predict"),
                      ([str(corpus), "--speaker", "a", "--speaker-folder", "2"], "give one of them")):
        res = CliRunner().invoke(cli, ["predict", "--model", str(model.path), *args])
        assert res.exit_code == 2 and msg in res.output, res.output
    res = CliRunner().invoke(cli, ["predict", "--model", str(corpus), str(corpus)])
    assert res.exit_code == 2 and "no model.json" in res.output


def test_cli_predict_speakers_from_folders(trained, corpus, few_per_speaker):
    res = CliRunner().invoke(cli, ["predict", "--model", str(trained("svm-spknorm").path), str(corpus / "spk2"),
                                   str(corpus / "spk3" / "sad"), "--speaker-folder", "2"])
    assert res.exit_code == 0, res.output
    assert "spk2" in res.output and "9 input(s): 9 predicted" in res.output
    res = CliRunner().invoke(cli, ["predict", "--model", str(trained("svm-spknorm").path), str(corpus / "spk2")])
    assert res.exit_code == 2 and "--speaker-folder N" in res.output


def test_cli_train_writes_a_bundle(tmp_path, corpus, cache):
    out = tmp_path / "m"
    args = ["train", "--corpus", "demo", "--root", str(corpus), "--system", "svm-linear", "--feature", "MFCC",
            "--cache", str(cache), "--runs", str(tmp_path / "runs"), "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "MFCC-svm-linear trained on 18 utterances of demo (3 speakers)" in res.output
    assert "no benchmark run of these settings" in res.output and (out / "model.json").is_file()
    assert load_model(out).record["command"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = CliRunner().invoke(cli, [*args[:5], "--system", "crnn", "--feature", "MFCC", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--feature: crnn has no such setting" in res.output


def test_import_serbench_and_cli_stay_light():
    import subprocess
    import sys

    code = ("import sys, serbench, serbench.cli, serbench.bundles; "
            "print(sorted(m for m in ('numpy', 'torch', 'sklearn', 'pandas', 'skops', 'safetensors') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_array_inputs_are_checked(trained, harmonic):
    x = harmonic(0.5, "sad")
    df = trained("svm-linear").predict([(x, 0), np.zeros((3, 4, 5)), (x, SR)])
    assert list(df.status) == ["failed", "failed", "ok"]
    assert "not an audio rate" in df.error.iloc[0] and "(n,) or (n, channels)" in df.error.iloc[1]
    with pytest.raises(PredictError, match="neither a path, a folder nor an array"):
        trained("svm-linear").predict([3.5])
    with pytest.raises(PredictError, match="speakers has 1 entries for 2 inputs"):
        trained("svm-linear").predict([x, x], speakers=["a"])
