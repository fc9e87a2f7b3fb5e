"""Predictions that mean what they say (calibrated SVM probabilities, window shares, speaker-norm
minimum and batch warnings, narrow-band inputs, train --from-run best with a speaker-normalized winner)."""
from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from serbench.bundles import PredictError, sources, speaker_norm
from serbench.cli import cli

SR = 16000


def held_out(tmp_path, harmonic, n=4):
    """Recordings of a speaker the bundle never heard (another pitch shift and noise seed)."""
    files = []
    for k in range(n):
        for e in ("angry", "sad"):
            path = tmp_path / f"new-{e}-{k}.wav"
            sf.write(path, harmonic(0.4 + 0.1 * k, e, shift=1.05, k=k, seed=100 + k), SR)
            files.append(path)
    return files


def probs(df, labels):
    return df[[f"prob_{lab}" for lab in labels]].to_numpy()


def test_svm_bundle_gives_calibrated_probabilities_whose_argmax_is_the_decision(trained, tmp_path, harmonic):
    model = trained("svm-linear")
    cal = model.record["model"]["calibration"]
    assert cal["scale"] > 0 and cal["n_rows"] == 18 and "out-of-fold" in cal["method"]
    assert model.record["scores"] == "probability" and "fitted out of fold" in model.record["scores_note"]
    files = held_out(tmp_path, harmonic)
    p = model.predict(files)
    d = model.predict(files, scores="decision")
    P = probs(p, model.labels)
    D = d[[f"score_{lab}" for lab in model.labels]].to_numpy()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    assert ((P >= 0) & (P <= 1)).all()
    assert (P.argmax(1) == D.argmax(1)).all()
    assert list(p.emotion) == [model.labels[i] for i in P.argmax(1)] == list(d.emotion)
    assert p.attrs["score_kind"] == "probability" and d.attrs["score_kind"] == "decision"
    assert "not probabilities" in d.attrs["scores_note"]
    # The probabilities are the softmax of the decision values with the recorded slope.
    z = cal["scale"] * D
    np.testing.assert_allclose(P, np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1,
                               keepdims=True), rtol=1e-9)


def test_deep_bundles_have_no_decision_values(trained, corpus):
    model = trained("crnn")
    with pytest.raises(PredictError, match="--scores decision: .*softmax probabilities only"):
        model.predict([corpus / "spk1" / "sad" / "t0.wav"], scores="decision")


def test_window_summary_is_the_mean_probability_and_the_share_of_windows(trained, tmp_path, harmonic):
    model = trained("svm-linear")
    x = np.concatenate([harmonic(3.0, "angry"), harmonic(1.0, "sad"), harmonic(2.0, "angry", k=1)])
    path = tmp_path / "mixed.wav"
    sf.write(path, x, SR)
    df = model.predict([path], window=1.0)
    win, summary = df[df.segment == "window"], df[df.segment == "summary"]
    P = probs(win, model.labels)
    np.testing.assert_allclose(probs(summary, model.labels)[0], P.mean(axis=0), rtol=1e-12)
    shares = summary[[f"share_{lab}" for lab in model.labels]].to_numpy()[0]
    expected = [np.mean(win.emotion == lab) for lab in model.labels]
    np.testing.assert_allclose(shares, expected)
    assert shares.sum() == pytest.approx(1.0) and win[[f"share_{lab}" for lab in model.labels]].isna().all().all()
    assert summary.emotion.iloc[0] == model.labels[int(P.mean(axis=0).argmax())]


def test_speaker_norm_bundle_refuses_fewer_than_the_minimum_in_one_line(trained, corpus):
    assert speaker_norm.MIN_SPEAKER_INPUTS == 20
    res = CliRunner().invoke(cli, ["predict", "--model", str(trained("svm-spknorm").path), str(corpus / "spk2"),
                                   "--speaker", "ann"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs at least 20 inputs of each speaker" in lines[0] and "'ann' has 6" in lines[0]



def test_same_file_in_two_batches_warns_when_its_emotion_changes(trained, tmp_path, spk_files):
    """A file among 19 others of the same emotion (one batch of 20), then among those 20 plus 20 more of
    both emotions: the speaker's statistics move, so does the file's emotion, and the larger call says
    so, for the speaker and the file (random subsets of 20 of its 40 inputs, mostly angry ones, move it)."""
    model = trained("svm-spknorm")
    target = spk_files(tmp_path, "angry", 1, start=90)[0]
    first = [target, *spk_files(tmp_path, "angry", 19, start=40)]
    more = spk_files(tmp_path, "sad", 10) + spk_files(tmp_path, "angry", 10)
    a = model.predict(first, speakers="zoe")
    b = model.predict(first + more, speakers="zoe")
    assert len(a) == speaker_norm.MIN_SPEAKER_INPUTS
    assert a.emotion.iloc[0] != b.emotion.iloc[0]          # the same file, another batch, another emotion
    warned = [w for w in b.attrs["warnings"] if w.startswith("speaker 'zoe'")]
    assert len(warned) == 1 and "change emotion" in warned[0] and "come from 20 of its inputs instead of all 40" in warned[0]
    assert f"{target}: {b.emotion.iloc[0]} -> {a.emotion.iloc[0]}" in warned[0]
    assert not b.batch_stable.iloc[0] and b.batch_stable.dtype == "boolean"


def test_a_stable_batch_gives_no_batch_warning(trained, tmp_path, spk_files, monkeypatch):
    model = trained("svm-spknorm")
    files = spk_files(tmp_path, "sad", 10) + spk_files(tmp_path, "angry", 10)
    order = [f for pair in zip(files[:10], files[10:]) for f in pair]      # interleaved: both halves balanced
    df = model.predict(order, speakers="zoe")
    assert df.batch_stable.all() and not [w for w in df.attrs["warnings"] if "change emotion" in w]


def test_an_8_khz_input_to_a_16_khz_bundle_warns(trained, tmp_path, harmonic):
    import soxr

    model = trained("svm-linear")
    assert model.record["training"]["audio"]["sample_rates"] == {"16000": 18}
    assert model.record["training"]["audio"]["high_band_share"] > sources.HIGH_BAND_TRAINING
    x = harmonic(1.0, "angry")
    narrow = tmp_path / "phone.wav"
    sf.write(narrow, soxr.resample(x, SR, 8000), 8000)
    wide = tmp_path / "wide.wav"
    sf.write(wide, x, SR)
    df = model.predict([narrow, wide])
    assert (df.status == "ok").all()
    lines = df.attrs["warnings"]
    assert len(lines) == 1 and lines[0].startswith(f"{narrow}: recorded at 8000 Hz, at most half")
    # Upsampled back to 16 kHz, the rate looks right but the band above 4 kHz is empty.
    up = tmp_path / "upsampled.wav"
    sf.write(up, soxr.resample(soxr.resample(x, SR, 8000), 8000, SR), SR)
    lines = model.predict([up]).attrs["warnings"]
    assert len(lines) == 1 and "almost no energy above 4 kHz" in lines[0]
    res = CliRunner().invoke(cli, ["predict", "--model", str(model.path), str(narrow)])
    assert res.exit_code == 0 and "warning: " in res.output and "8000 Hz" in res.output


def test_train_from_run_best_names_the_speaker_norm_and_offers_the_best_run_without(tmp_path, corpus, cache):
    from serbench.systems.run import run_system

    runs = tmp_path / "runs"
    # Both separate the toy corpus (UA 1.0); ties go to the first name, MFCC-svm-linear-spknorm before PLP-svm-linear.
    plain = run_system("svm-linear", "demo", corpus, overrides={"feature": "PLP"}, cache=cache, runs=runs)
    spk = run_system("svm-linear", "demo", corpus, overrides={"feature": "MFCC", "speaker_norm": True}, cache=cache,
                     runs=runs)
    from serbench.bundles.training import run_recipe

    recipe = run_recipe("demo", "best", runs)
    assert recipe["speaker_norm"] and recipe["run_id"] == spk.run_id
    assert recipe["without_speaker_norm"]["run_id"] == plain.run_id
    res = CliRunner().invoke(cli, ["train", "--corpus", "demo", "--root", str(corpus), "--from-run", "best",
                                   "--out", str(tmp_path / "m"), "--cache", str(cache), "--runs", str(runs)])
    assert res.exit_code == 0, res.output
    assert "normalizes per speaker" in res.output and f"--from-run {plain.run_id}" in res.output
    assert spk.run_id in res.output
