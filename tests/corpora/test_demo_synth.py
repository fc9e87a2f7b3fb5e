"""The demo corpus synthesizer and its eSpeak NG binding, on a tiny corpus in tmp_path."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serbench import __version__
from serbench.corpora import espeak, scan
from serbench.corpora.demo_synth import (
    SENTENCES,
    SPEAKERS,
    STYLES,
    DemoCorpusError,
    draw_prosody,
    learnability_check,
    render_utterance,
    synthesize_demo_corpus,
)
from serbench.io import OutsideError

TINY = {"n_speakers": 4, "n_sentences": 2, "emotions": ("angry", "sad")}
N_TINY = 4 * 2 * 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list]:
    root = tmp_path_factory.mktemp("demo") / "corpus"
    calls: list[tuple[int, int]] = []
    result = synthesize_demo_corpus(root, progress=lambda done, total: calls.append((done, total)), **TINY)
    return root, result, calls


def _wavs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


def _copy(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(root, dst)
    return dst


# --- the corpus as the loader sees it -----------------------------------------------------------

def test_scan_reads_the_corpus(tiny):
    root, result, _ = tiny
    m = scan("demo", root, strict=True).manifest
    assert len(m) == N_TINY == result.n_utterances == result.n_written
    assert result.n_skipped_existing == 0
    assert sorted(m["speaker"].unique()) == ["spk1m", "spk2f", "spk3m", "spk4f"]
    genders = dict(zip(m["speaker"], m["gender"]))
    assert genders == {"spk1m": "m", "spk2f": "f", "spk3m": "m", "spk4f": "f"}
    assert m["emotion"].value_counts().to_dict() == {"angry": 8, "sad": 8}
    assert sorted(m["text_id"].unique()) == ["s01", "s02"]
    assert set(m["sample_rate"]) == {16000}
    assert result.total_duration_s == pytest.approx(m["duration"].sum(), rel=1e-6)
    assert "spk1m_angry_s01" in set(m["utterance_id"])


def test_wav_files_are_16k_mono_pcm16_trimmed_and_unclipped(tiny):
    root, _, _ = tiny
    for path in sorted(root.rglob("*.wav")):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 < info.duration < 6.0, path
        x, _ = sf.read(str(path), dtype="int16")
        assert 0 < np.abs(x.astype(int)).max() < 32767, path  # peak normalized below full scale
        # Trimmed to a ~50 ms margin: speech starts and ends within 100 ms of the edges.
        frame = 160
        rms = np.sqrt(np.mean(x[: len(x) // frame * frame].astype(float).reshape(-1, frame) ** 2, axis=1))
        active = np.nonzero(rms > rms.max() * 0.01)[0]
        assert active[0] * frame / 16000 < 0.1 and (len(rms) - active[-1]) * frame / 16000 < 0.12, path


def test_progress_reports_every_utterance(tiny):
    _, _, calls = tiny
    assert calls == [(i, N_TINY) for i in range(1, N_TINY + 1)]


def test_metadata_records_speakers_sentences_styles_and_versions(tiny):
    root, _, _ = tiny
    meta = json.loads((root / "demo-corpus.json").read_text())
    assert [s["name"] for s in meta["speakers"]] == ["spk1m", "spk2f", "spk3m", "spk4f"]
    assert all({"name", "gender", "voice"} <= set(s) for s in meta["speakers"])
    assert "flutter 0" in meta["speakers"][0]["voice"]["espeak_voice_file"]
    assert meta["emotions"] == ["angry", "sad"]
    assert meta["sentences"] == {"s01": SENTENCES["s01"], "s02": SENTENCES["s02"]}
    assert set(meta["prosody"]) == {"angry", "sad"} and meta["prosody"]["sad"]["rate"]["sd"] > 0
    assert meta["seed"] == 0 and meta["generator"]["serbench"] == __version__
    assert len(meta["files"]) == N_TINY
    drawn = meta["files"]["spk2f/sad/s02.wav"]["prosody"]
    assert drawn["rate"] == draw_prosody(SPEAKERS[1], "sad", "s02", 0).rate


# --- determinism ----------------------------------------------------------------------------------

def test_same_call_gives_byte_identical_files(tiny, tmp_path):
    root, _, _ = tiny
    again = tmp_path / "again"
    # Another order of emotions and other synthesis in between must not change a byte.
    render_utterance(SPEAKERS[5], "happy", "s09", seed=3)
    synthesize_demo_corpus(again, n_speakers=4, n_sentences=2, emotions=("sad", "angry"))
    assert _wavs(again) == _wavs(root)
    assert len(_wavs(root)) == N_TINY


def test_render_utterance_matches_the_written_file(tiny):
    root, _, _ = tiny
    samples = render_utterance(SPEAKERS[3], "angry", "s02", seed=0)
    stored, sr = sf.read(str(root / "spk4f/angry/s02.wav"), dtype="int16")
    assert sr == 16000 and samples.dtype == np.int16
    np.testing.assert_array_equal(samples, stored)


@pytest.mark.parametrize("other", [("spk1m", "sad", "s01", 0), ("spk1m", "angry", "s02", 0),
                                   ("spk1m", "angry", "s01", 1)])
def test_prosody_draw_is_seeded_by_identity(other):
    spk = {s.name: s for s in SPEAKERS}
    base = draw_prosody(spk["spk1m"], "angry", "s01", 0)
    assert draw_prosody(spk["spk1m"], "angry", "s01", 0) == base
    name, emotion, text_id, seed = other
    assert draw_prosody(spk[name], emotion, text_id, seed) != base


def test_prosody_draws_overlap_but_follow_the_style_means():
    draws = {e: [draw_prosody(s, e, t, 0) for s in SPEAKERS for t in SENTENCES] for e in STYLES}
    rates = {e: np.array([p.rate for p in d]) for e, d in draws.items()}
    pitches = {e: np.array([p.pitch for p in d]) for e, d in draws.items()}
    assert rates["angry"].mean() > rates["neutral"].mean() > rates["sad"].mean()
    assert pitches["happy"].mean() > pitches["neutral"].mean() > pitches["sad"].mean()
    # Jittered, not constant: the classes overlap a little.
    assert rates["neutral"].std() > 5 and rates["angry"].min() < rates["neutral"].max()


# --- the styles are audible -----------------------------------------------------------------------

def _f0(frame: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 500.0) -> float:
    """Pitch of one frame: the lag of the highest autocorrelation peak between 1/fmax and 1/fmin.

    Plain numpy on purpose: librosa.yin runs numba-compiled code, which crashed the interpreter on
    some virtual CPUs (numba's host code generation), and this check needs no more than this."""
    frame = frame - frame.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(frame, 2 * len(frame))) ** 2)[:len(frame)]
    lo, hi = int(sr / fmax), int(sr / fmin)
    return sr / (lo + int(np.argmax(ac[lo:hi])))


def _acoustics(path: Path) -> dict[str, float]:
    x, sr = sf.read(str(path), dtype="float64")
    frame, hop = 1024, 320
    frames = [x[i:i + frame] for i in range(0, len(x) - frame + 1, hop)]
    rms = np.array([np.sqrt(np.mean(f ** 2)) for f in frames])
    voiced = rms > rms.max() * 0.1  # every frame gets a pitch: keep the loud (voiced) ones
    f0 = [_f0(f, sr) for f, v in zip(frames, voiced) if v]
    return {"f0": float(np.median(f0)), "rms": float(np.sqrt(np.mean(x ** 2))), "rate": 1.0 / (len(x) / sr)}


@pytest.mark.parametrize("measure", ["f0", "rms", "rate"])
def test_angry_is_higher_louder_faster_than_sad(tiny, measure):
    root, _, _ = tiny
    for spk in ("spk1m", "spk2f", "spk3m", "spk4f"):
        for tid in ("s01", "s02"):
            angry = _acoustics(root / spk / "angry" / f"{tid}.wav")[measure]
            sad = _acoustics(root / spk / "sad" / f"{tid}.wav")[measure]
            assert angry > sad, (spk, tid, measure, angry, sad)


def test_learnability_check_separates_angry_from_sad_across_speakers(tiny):
    root, _, _ = tiny
    check = learnability_check(root)
    assert check["n_utterances"] == N_TINY and check["n_speakers"] == 4
    assert check["confusion"]["labels"] == ["angry", "sad"]
    assert np.asarray(check["confusion"]["matrix"]).sum() == N_TINY
    assert set(check["per_speaker"]) == {"spk1m", "spk2f", "spk3m", "spk4f"}
    # Two far-apart styles: a linear SVM on MFCC statistics must tell them apart on unseen speakers.
    assert check["ua"] >= 0.75 and check["wa"] >= 0.75


# --- re-runs and conflicts ------------------------------------------------------------------------

def test_rerun_writes_nothing(tiny, tmp_path):
    root = _copy(tiny[0], tmp_path)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")}
    result = synthesize_demo_corpus(root, **TINY)
    assert (result.n_written, result.n_skipped_existing, result.n_utterances) == (0, N_TINY, N_TINY)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")} == before


def test_rerun_after_an_interrupted_run_keeps_matching_files(tiny, tmp_path):
    root = _copy(tiny[0], tmp_path)
    (root / "demo-corpus.json").unlink()      # an interrupted run has not written it yet
    (root / "spk4f/sad/s02.wav").unlink()     # nor its last file
    result = synthesize_demo_corpus(root, **TINY)
    assert (result.n_written, result.n_skipped_existing) == (1, N_TINY - 1)
    assert _wavs(root) == _wavs(tiny[0])
    assert (root / "demo-corpus.json").is_file()


def test_other_settings_are_refused_then_replaced_with_overwrite(tiny, tmp_path):
    root = _copy(tiny[0], tmp_path)
    with pytest.raises(DemoCorpusError, match=r"other settings.*seed 0 there, 1 here.*overwrite"):
        synthesize_demo_corpus(root, **{**TINY, "seed": 1})
    assert _wavs(root) == _wavs(tiny[0])  # untouched
    result = synthesize_demo_corpus(root, n_speakers=4, n_sentences=1, emotions=("angry", "neutral"),
                                    overwrite=True)
    assert result.n_utterances == 8 and len(result.removed) == 12
    m = scan("demo", root, strict=True).manifest
    assert m["emotion"].value_counts().to_dict() == {"angry": 4, "neutral": 4}
    assert not (root / "spk1m" / "sad").exists()


def test_an_edited_file_is_refused_then_restored_with_overwrite(tiny, tmp_path):
    root = _copy(tiny[0], tmp_path)
    target = root / "spk2f/angry/s01.wav"
    x, sr = sf.read(str(target), dtype="int16")
    sf.write(str(target), x[::-1], sr, subtype="PCM_16")
    (root / "demo-corpus.json").unlink()
    with pytest.raises(DemoCorpusError, match=r"spk2f/angry/s01\.wav: exists but differs"):
        synthesize_demo_corpus(root, **TINY)
    result = synthesize_demo_corpus(root, overwrite=True, **TINY)
    assert result.n_written == 1 and _wavs(root) == _wavs(tiny[0])


def test_a_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoCorpusError, match=r"not empty.*notes\.txt.*overwrite"):
        synthesize_demo_corpus(tmp_path, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_broken_metadata_file_is_refused(tmp_path):
    (tmp_path / "demo-corpus.json").write_text("{not json")
    with pytest.raises(DemoCorpusError, match=r"demo-corpus\.json: unreadable"):
        synthesize_demo_corpus(tmp_path, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_speakers": 3}, "n_speakers"),
    ({"n_speakers": len(SPEAKERS) + 1}, "n_speakers"),
    ({"n_speakers": 4.0}, "n_speakers"),
    ({"n_speakers": True}, "n_speakers"),
    ({"n_sentences": 0}, "n_sentences"),
    ({"n_sentences": len(SENTENCES) + 1}, "n_sentences"),
    ({"emotions": "angry"}, "list of labels"),
    ({"emotions": ["angry"]}, "at least 2"),
    ({"emotions": ["angry", "angry"]}, "twice"),
    ({"emotions": ["angry", "fear"]}, "no synthesis style"),
    ({"seed": -1}, "seed"),
    ({"seed": "0"}, "seed"),
    ({"progress": 5}, "progress"),
])
def test_bad_arguments_are_rejected(tmp_path, kwargs, message):
    with pytest.raises(DemoCorpusError, match=message):
        synthesize_demo_corpus(tmp_path / "out", **{**TINY, **kwargs})
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_folder(tmp_path):
    path = tmp_path / "file.wav"
    path.write_bytes(b"x")
    with pytest.raises(DemoCorpusError, match="not a folder"):
        synthesize_demo_corpus(path, **TINY)


# --- the eSpeak NG binding ------------------------------------------------------------------------

def test_espeak_speaks_a_named_voice():
    samples, sr = espeak.synthesize("Good morning.", "en-us+m3")
    assert sr == 22050 and samples.dtype == np.int16
    assert 0.3 < len(samples) / sr < 3.0 and np.abs(samples.astype(int)).max() > 1000
    info = espeak.engine_info()
    assert info == espeak.engine_info() and info.sample_rate == sr and info.version


def test_espeak_parameters_change_the_audio():
    slow, _ = espeak.synthesize("Good morning to you.", "en-us", rate=100)
    fast, _ = espeak.synthesize("Good morning to you.", "en-us", rate=300)
    assert len(slow) > 1.8 * len(fast)


@pytest.mark.parametrize("call, message", [
    (lambda: espeak.synthesize("Hello.", "xx-nonexistent"), "no voice"),
    (lambda: espeak.synthesize("Hello.", Path("/nonexistent/voice")), "does not exist"),
    (lambda: espeak.synthesize("   ", "en-us"), "empty text"),
    (lambda: espeak.synthesize("Hello.", "en-us", rate=20), "rate=20"),
    (lambda: espeak.synthesize("Hello.", "en-us", pitch=101), "pitch=101"),
])
def test_espeak_errors_name_the_problem(call, message):
    with pytest.raises(espeak.EspeakError, match=message):
        call()


def test_espeak_falls_back_to_a_voice_chosen_by_language_and_gender():
    samples, _ = espeak.synthesize("Hello there.", "en-zz", gender="f")
    assert np.abs(samples.astype(int)).max() > 1000
    with pytest.raises(espeak.EspeakError, match="no voice 'en-zz'"):
        espeak.synthesize("Hello there.", "en-zz")


def test_espeak_is_usable_from_threads(tmp_path):
    voice = tmp_path / "voice"
    voice.write_text(SPEAKERS[1].voice_file())
    texts = ["One two three.", "The cat sat down.", "Four five six."]
    expected = [espeak.synthesize(t, voice, seed=7)[0] for t in texts]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        got[i] = espeak.synthesize(texts[i % 3], voice, seed=7)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        np.testing.assert_array_equal(got[i], expected[i % 3])


def test_espeak_voice_files_with_long_paths_work(tmp_path):
    # eSpeak NG cuts voice-file paths at 59 bytes; the binding must hide that.
    deep = tmp_path / ("d" * 40) / ("e" * 40)
    deep.mkdir(parents=True)
    long_voice = deep / "voice"
    long_voice.write_text(SPEAKERS[0].voice_file())
    assert len(str(long_voice)) > 59
    samples, _ = espeak.synthesize("Hello there.", long_voice, seed=1)
    again, _ = espeak.synthesize("Hello there.", long_voice, seed=1)
    np.testing.assert_array_equal(samples, again)
    assert np.abs(samples.astype(int)).max() > 1000


# --- never write or delete outside the folder given (links are followed, then refused) ----------

def test_a_linked_speaker_folder_is_refused_without_writing_through_it(tmp_path):
    root, outside = tmp_path / "corpus", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "spk1m").symlink_to(outside)
    for overwrite in (False, True):
        with pytest.raises(OutsideError, match=r"spk1m.*outside"):
            synthesize_demo_corpus(root, overwrite=overwrite, **TINY)
    assert list(outside.iterdir()) == []
    assert [p.name for p in root.iterdir()] == ["spk1m"]


def test_overwrite_never_deletes_through_a_linked_folder(tiny, tmp_path):
    root, outside = _copy(tiny[0], tmp_path), tmp_path / "outside"
    shutil.move(root / "spk1m" / "sad", outside)  # the old corpus listed spk1m/sad/*: now a link to user data
    (root / "spk1m" / "sad").symlink_to(outside)
    before = _wavs(root)
    with pytest.raises(OutsideError, match=r"spk1m/sad/s01\.wav: refusing to delete"):
        synthesize_demo_corpus(root, n_speakers=4, n_sentences=2, emotions=("angry", "happy"), overwrite=True)
    assert sorted(p.name for p in outside.iterdir()) == ["s01.wav", "s02.wav"]
    assert _wavs(root) == before and (root / "demo-corpus.json").is_file()  # nothing deleted at all
