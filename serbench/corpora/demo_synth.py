"""Synthesize the demo corpus: a small acted-emotion corpus spoken by eSpeak NG voices.

``serbench demo-corpus --to DIR`` calls :func:`synthesize_demo_corpus`. The result is
read by :mod:`serbench.corpora.demo` (``scan("demo", DIR)``)::

    DIR/demo-corpus.json                  speakers, sentences, styles, settings, file hashes
    DIR/<speaker>/<emotion>/<text id>.wav 16 kHz mono PCM16, e.g. spk1m/angry/s01.wav

How an utterance is made
------------------------
Each speaker is an eSpeak NG voice file written by this module (language, gender,
pitch, formant scaling, breathiness, voicing); each emotion is a prosody style:
pitch level and range, speaking rate, word gaps, loudness and voice quality. For one
utterance the style's parameters are drawn from normal distributions (mean and sd
per parameter, see :data:`STYLES`) with a random generator seeded from
``(seed, speaker, emotion, text id)``, so the classes overlap a little and every file
is reproducible on its own. Then:

1. eSpeak NG speaks the sentence at 22050 Hz (rate, pitch, pitch range, word gap);
2. soxr resamples to 16 kHz; leading and trailing silence is trimmed to 50 ms;
3. voice quality in numpy: spectral tilt (brighter or darker), tension (a soft
   saturation that adds harmonics) and breathiness (high-passed noise that follows
   the speech envelope);
4. the peak is set to the style's level (dBFS, always below full scale) and the
   signal is quantized to 16 bits.

The same call writes byte-identical files (on the same machine and library
versions): no global random state is used, and the voice files avoid eSpeak NG's
settings whose state carries over between calls (see :mod:`serbench.corpora.espeak`).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, lfilter

from serbench import __version__
from serbench.audio import TARGET_SR
from serbench.corpora import espeak
from serbench.corpora.demo import METADATA
from serbench.errors import CorpusError
from serbench.io import atomic_write_bytes, atomic_write_text, ensure_inside, unlink_inside

#: Bump when a change to this module changes the audio it writes for the same settings:
#: a folder made by another synthesis version is then refused unless ``overwrite``.
SYNTH_VERSION = 1

FORMAT = "serbench-demo-corpus"
MIN_SPEAKERS = 4
MIN_EMOTIONS = 2
TRIM_MARGIN_S = 0.05
TRIM_FLOOR_DB = -40.0

#: Neutral English sentences, text id -> text (written for this corpus).
SENTENCES: dict[str, str] = {
    "s01": "The library opens at nine on weekdays.",
    "s02": "Please put the folder on the table.",
    "s03": "The train leaves from platform four.",
    "s04": "We painted the fence before the summer holidays.",
    "s05": "There are seven chairs in the room.",
    "s06": "My brother bought a new bicycle last week.",
    "s07": "The report will be ready by Thursday afternoon.",
    "s08": "She left her umbrella at the bus station.",
    "s09": "The garden gets a lot of sun.",
    "s10": "They moved the piano into the living room.",
    "s11": "I will call you when the package arrives.",
    "s12": "The shop on the corner sells fresh bread.",
    "s13": "He wrote the numbers on a card.",
    "s14": "The meeting moved to the second floor.",
    "s15": "Our neighbours have a dog and two cats.",
    "s16": "The bridge was closed for repairs in April.",
}


#: English accents: lines of an eSpeak NG voice file that pick its phoneme table and
#: spelling rules (a voice file's ``language`` line alone selects only the dictionary).
ACCENTS: dict[str, tuple[str, ...]] = {
    "en-gb": (),
    "en-us": ("phonemes en-us", "dictrules 3 6"),
    "en-gb-scotland": ("phonemes en-sc", "dictrules 2 5 6 7"),
    "en-gb-x-rp": ("phonemes en-rp",),
    "en-029": ("phonemes en-wi", "dictrules 8"),
}


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: an eSpeak NG voice file made from these settings.

    ``accent`` is a key of :data:`ACCENTS`, ``pitch_hz`` the voice's (base, top) pitch
    in Hz, ``formant_scale`` scales the formant frequencies F1..F5 (vocal tract
    length), ``breath`` adds eSpeak's aspiration noise (0 none .. 6 strong), ``voicing``
    is the voiced-sound level (%), ``rate_factor`` scales every style's speaking rate
    (a personal tempo).
    """

    name: str
    gender: str
    accent: str
    pitch_hz: tuple[int, int]
    formant_scale: float
    breath: int = 0
    voicing: int = 100
    rate_factor: float = 1.0

    def voice_file(self) -> str:
        """The eSpeak NG voice file text for this speaker."""
        f = self.formant_scale
        lines = [
            f"name serbench-{self.name}",
            "language en",
            *ACCENTS[self.accent],
            f"gender {'male' if self.gender == 'm' else 'female'}",
            f"pitch {self.pitch_hz[0]} {self.pitch_hz[1]}",
            # Both settings are fixed on purpose: their state would carry over between
            # calls and break byte-identical output (see serbench.corpora.espeak).
            "flutter 0",
            "roughness 8",
            f"voicing {self.voicing}",
        ]
        # Formant n: frequency %, height %, width %. Higher formants move less than the
        # lower ones when the vocal tract is shorter, hence the damping towards 100.
        for n, damp in ((1, 1.0), (2, 1.0), (3, 0.8), (4, 0.6), (5, 0.5)):
            lines.append(f"formant {n} {round(100 * (1 + (f - 1) * damp))} 100 100")
        if self.breath:
            b = self.breath
            lines.append(f"breath 0 {b} {b} {b} {b} {b} 0 0")
        return "\n".join(lines) + "\n"


#: Speakers in the order they are used: ``n_speakers=4`` takes the first four (2 m, 2 f).
SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk1m", "m", "en-us", (82, 118), 1.00, rate_factor=1.00),
    Speaker("spk2f", "f", "en-us", (168, 232), 1.14, breath=2, voicing=95, rate_factor=1.04),
    Speaker("spk3m", "m", "en-gb", (96, 134), 0.97, voicing=110, rate_factor=0.94),
    Speaker("spk4f", "f", "en-gb", (182, 250), 1.18, rate_factor=1.08),
    Speaker("spk5m", "m", "en-gb-scotland", (72, 104), 0.94, breath=1, rate_factor=0.97),
    Speaker("spk6f", "f", "en-us", (154, 214), 1.10, breath=3, voicing=90, rate_factor=0.96),
    Speaker("spk7m", "m", "en-029", (104, 146), 1.03, rate_factor=1.06),
    Speaker("spk8f", "f", "en-gb-x-rp", (196, 264), 1.21, breath=1, rate_factor=1.01),
)


@dataclass(frozen=True)
class Style:
    """An emotion's prosody: (mean, sd) of each parameter drawn per utterance.

    ``pitch`` offsets eSpeak's base pitch (50 = the voice's own; +10 is about +15 %),
    ``pitch_range`` is eSpeak's range (0 monotone .. 100, 50 normal), ``rate`` words
    per minute, ``word_gap`` pause between words (10 ms units), ``level_db`` the peak
    level in dBFS, ``tilt`` spectral tilt (-1 dark .. +1 bright), ``tension`` the soft
    saturation drive (0 none), ``breath_db`` the breath noise relative to the speech
    envelope (dB; -60 is inaudible).
    """

    pitch: tuple[float, float]
    pitch_range: tuple[float, float]
    rate: tuple[float, float]
    word_gap: tuple[float, float]
    level_db: tuple[float, float]
    tilt: tuple[float, float]
    tension: tuple[float, float]
    breath_db: tuple[float, float]


#: The canonical emotion labels this corpus can synthesize and their styles.
STYLES: dict[str, Style] = {
    "angry": Style(pitch=(8, 6), pitch_range=(68, 12), rate=(190, 16), word_gap=(0, 0.7),
                   level_db=(-1.5, 1.2), tilt=(0.45, 0.2), tension=(1.6, 0.5), breath_db=(-60, 0)),
    "happy": Style(pitch=(16, 6), pitch_range=(88, 10), rate=(182, 16), word_gap=(0, 0.7),
                   level_db=(-3.0, 1.5), tilt=(0.2, 0.2), tension=(0.4, 0.3), breath_db=(-60, 0)),
    "neutral": Style(pitch=(0, 5), pitch_range=(45, 10), rate=(165, 14), word_gap=(0.5, 0.8),
                     level_db=(-6.0, 1.5), tilt=(0.0, 0.2), tension=(0.0, 0.2), breath_db=(-60, 0)),
    "sad": Style(pitch=(-8, 5), pitch_range=(24, 10), rate=(142, 14), word_gap=(1.5, 1.0),
                 level_db=(-9.5, 2.0), tilt=(-0.3, 0.25), tension=(0.0, 0.1), breath_db=(-30, 5)),
}

#: Where the drawn values are clipped: eSpeak's accepted ranges and sane effect sizes.
_LIMITS: dict[str, tuple[float, float]] = {
    "pitch": (-40, 40), "pitch_range": (0, 100), "rate": (100, 300), "word_gap": (0, 8),
    "level_db": (-18, -0.5), "tilt": (-0.9, 0.9), "tension": (0.0, 3.0), "breath_db": (-60, -12),
}


@dataclass(frozen=True)
class Prosody:
    """The parameters drawn for one utterance (recorded per file in ``demo-corpus.json``)."""

    pitch: int
    pitch_range: int
    rate: int
    word_gap: int
    level_db: float
    tilt: float
    tension: float
    breath_db: float
    espeak_seed: int


@dataclass(frozen=True)
class DemoCorpusResult:
    """What :func:`synthesize_demo_corpus` did.

    ``n_utterances`` files make up the corpus: ``n_written`` were synthesized and written,
    ``n_skipped_existing`` were already there and matched. ``total_duration_s`` sums
    all of them; ``removed`` lists the files (relative paths) deleted by ``overwrite``
    because the new settings do not produce them.
    """

    root: Path
    n_utterances: int
    n_written: int
    n_skipped_existing: int
    total_duration_s: float
    removed: tuple[str, ...] = field(default=())


class DemoCorpusError(CorpusError):
    """The demo corpus cannot be synthesized as asked (bad option, conflicting folder)."""


def synthesize_demo_corpus(
    out: str | Path,
    *,
    n_speakers: int = 6,
    n_sentences: int = 12,
    emotions: Sequence[str] = ("angry", "happy", "neutral", "sad"),
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DemoCorpusResult:
    """Write ``n_speakers x len(emotions) x n_sentences`` utterances into ``out``.

    Speakers are the first ``n_speakers`` of :data:`SPEAKERS` (alternating male and
    female, 4..8), sentences the first ``n_sentences`` of :data:`SENTENCES` (1..16),
    ``emotions`` at least two distinct keys of :data:`STYLES`. ``seed`` changes every
    utterance's random prosody draw. ``progress(done, total)`` is called after each
    utterance.

    Re-running into the same folder is cheap and writes nothing: a file whose hash
    matches the one recorded in ``demo-corpus.json`` is kept without synthesizing, and
    after an interrupted run each existing file is kept when it equals what would be
    written. ``demo-corpus.json`` is written last. A folder made with other settings,
    a file that differs from what these settings produce, or a non-empty folder that
    is not a demo corpus is refused unless ``overwrite=True``; then the files the old
    ``demo-corpus.json`` listed and the new settings do not produce are removed
    (nothing else is ever deleted).

    Raises :class:`DemoCorpusError` for bad arguments or a conflicting folder and
    :class:`~serbench.corpora.espeak.EspeakError` when eSpeak NG fails.
    """
    root = Path(out).expanduser()
    speakers, sentences, emotions = _check_args(root, n_speakers, n_sentences, emotions, seed, overwrite, progress)
    header = _header(speakers, sentences, emotions, seed)
    plan = [(spk, emo, tid) for spk in speakers for emo in emotions for tid in sentences]
    planned = {_rel(spk, emo, tid) for spk, emo, tid in plan}
    # Before anything is written or deleted: a linked speaker or emotion folder must not lead out of root.
    for rel in sorted(planned) + [METADATA]:
        ensure_inside(root / rel, root)

    old = _read_metadata(root)
    known: dict[str, str] = {}   # relative path -> sha256 recorded by a run with the same settings
    removed: list[str] = []
    if old is not None and _comparable(old) != _comparable(header):
        if not overwrite:
            raise DemoCorpusError(
                f"{root / METADATA}: this folder holds a demo corpus made with other settings "
                f"({_describe_difference(old, header)}); choose another folder or pass overwrite=True "
                "(--overwrite) to replace it")
        removed = _remove_stale(root, old, planned)
    elif old is not None:
        known = {k: v.get("sha256", "") for k, v in old.get("files", {}).items() if isinstance(v, dict)}
    elif root.is_dir() and not overwrite:
        foreign = _foreign_files(root, planned)
        if foreign:
            listing = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise DemoCorpusError(
                f"{root}: folder is not empty and holds no {METADATA} ({listing}); choose an empty or new "
                "folder, or pass overwrite=True (--overwrite) to write the demo corpus beside these files")

    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    n_written = n_skipped = 0
    total_s = 0.0
    with tempfile.TemporaryDirectory(prefix="serbench-voices-") as voice_dir:
        voices = {}
        for spk in speakers:
            voices[spk.name] = Path(voice_dir) / spk.name
            voices[spk.name].write_text(spk.voice_file(), encoding="utf-8")
        for i, (spk, emo, tid) in enumerate(plan):
            rel = _rel(spk, emo, tid)
            path = root / rel
            prosody = draw_prosody(spk, emo, tid, seed)
            digest = _sha256(path) if path.is_file() else None
            if digest is not None and digest == known.get(rel):
                n_skipped += 1
            else:
                data = _wav_bytes(render_utterance(spk, emo, tid, seed, voice_file=voices[spk.name]))
                new_digest = hashlib.sha256(data).hexdigest()
                if digest == new_digest:
                    n_skipped += 1
                elif digest is not None and not overwrite:
                    raise DemoCorpusError(
                        f"{path}: exists but differs from what these settings synthesize (edited, or made by "
                        "another version); delete it or pass overwrite=True (--overwrite) to replace it")
                else:
                    atomic_write_bytes(path, data, inside=root)
                    n_written += 1
                digest = new_digest
            info = sf.info(str(path))
            duration = info.frames / info.samplerate
            total_s += duration
            files[rel] = {"sha256": digest, "duration_s": round(duration, 4), "prosody": asdict(prosody)}
            if progress is not None:
                progress(i + 1, len(plan))

    meta = dict(header)
    meta["generator"] = _generator_versions()
    meta["files"] = files
    atomic_write_text(root / METADATA, json.dumps(meta, indent=1, sort_keys=False) + "\n", inside=root)
    return DemoCorpusResult(root=root, n_utterances=len(plan), n_written=n_written, n_skipped_existing=n_skipped,
                            total_duration_s=total_s, removed=tuple(removed))


def draw_prosody(speaker: Speaker, emotion: str, text_id: str, seed: int = 0) -> Prosody:
    """The parameters of one utterance: the style's distributions, seeded by its identity."""
    rng = _rng(seed, speaker.name, emotion, text_id)
    style = STYLES[emotion]
    drawn = {}
    for name, (mean, sd) in asdict(style).items():
        lo, hi = _LIMITS[name]
        drawn[name] = float(np.clip(mean + sd * rng.standard_normal(), lo, hi))
    return Prosody(
        pitch=int(round(50 + drawn["pitch"])),
        pitch_range=int(round(drawn["pitch_range"])),
        rate=int(round(drawn["rate"] * speaker.rate_factor)),
        word_gap=int(round(drawn["word_gap"])),
        level_db=round(drawn["level_db"], 3),
        tilt=round(drawn["tilt"], 4),
        tension=round(drawn["tension"], 4),
        breath_db=round(drawn["breath_db"], 3),
        espeak_seed=int(rng.integers(1, 2**31 - 1)),
    )


def render_utterance(
    speaker: Speaker,
    emotion: str,
    text_id: str,
    seed: int = 0,
    *,
    voice_file: str | Path | None = None,
) -> np.ndarray:
    """Synthesize one utterance: int16 samples of shape (n,) at 16 kHz.

    ``voice_file`` is the speaker's eSpeak NG voice file when the caller has written
    it already (:func:`synthesize_demo_corpus` writes each once); otherwise a
    temporary one is written.
    """
    if emotion not in STYLES:
        raise DemoCorpusError(f"no style for emotion {emotion!r}; choose from {', '.join(STYLES)}")
    if text_id not in SENTENCES:
        raise DemoCorpusError(f"unknown text id {text_id!r}; choose from {', '.join(SENTENCES)}")
    if voice_file is None:
        with tempfile.TemporaryDirectory(prefix="serbench-voices-") as tmp:
            path = Path(tmp) / speaker.name
            path.write_text(speaker.voice_file(), encoding="utf-8")
            return render_utterance(speaker, emotion, text_id, seed, voice_file=path)
    p = draw_prosody(speaker, emotion, text_id, seed)
    # Loudness is set by the peak level at the end; eSpeak's volume stays at 100 because
    # above it a gain control engages whose state carries over to the next call.
    samples, sr = espeak.synthesize(
        SENTENCES[text_id], Path(voice_file), rate=p.rate, volume=100, pitch=p.pitch,
        pitch_range=p.pitch_range, word_gap=p.word_gap, seed=p.espeak_seed,
    )
    x = soxr.resample(samples.astype(np.float64) / 32768.0, sr, TARGET_SR, quality="HQ")
    x = _trim(x, TARGET_SR)
    # The noise generator is separate from the prosody draw so either can change alone.
    noise_rng = _rng(seed, speaker.name, emotion, text_id, "breath")
    x = _voice_quality(x, TARGET_SR, tilt=p.tilt, tension=p.tension, breath_db=p.breath_db, rng=noise_rng)
    return _to_pcm16(x, p.level_db)


def learnability_check(root: str | Path, *, n_mfcc: int = 13) -> dict:
    """How learnable the styles are: MFCC mean+std, standardize + linear SVM, leave one speaker out.

    A quick check of the corpus, not a baseline of the benchmark: it should land well
    above chance and below 100 %. Returns ``{"ua", "wa", "n_utterances", "n_speakers",
    "per_speaker": {speaker: accuracy}, "confusion": {"labels", "matrix"}}`` (fractions).
    """
    import librosa
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from serbench.audio import load_audio
    from serbench.corpora import scan

    manifest = scan("demo", root).manifest
    feats = []
    for path in manifest["path"]:
        y = load_audio(path).signal
        m = librosa.feature.mfcc(y=y, sr=TARGET_SR, n_mfcc=n_mfcc, n_fft=400, hop_length=160)
        feats.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    X = np.asarray(feats)
    y_true = np.array([str(e) for e in manifest["emotion"]], dtype=object)
    groups = np.array([str(s) for s in manifest["speaker"]], dtype=object)
    y_pred = np.empty_like(y_true)
    per_speaker = {}
    for spk in sorted(set(groups)):
        test = groups == spk
        model = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=20000))
        model.fit(X[~test], y_true[~test])
        y_pred[test] = model.predict(X[test])
        per_speaker[spk] = float(np.mean(y_pred[test] == y_true[test]))
    labels = sorted(set(y_true))
    return {
        "ua": float(balanced_accuracy_score(y_true, y_pred)),
        "wa": float(np.mean(y_pred == y_true)),
        "n_utterances": int(len(y_true)),
        "n_speakers": int(len(set(groups))),
        "per_speaker": per_speaker,
        "confusion": {"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }


# --- helpers -------------------------------------------------------------------------------------

def _check_args(root: Path, n_speakers: object, n_sentences: object, emotions: object, seed: object,
                overwrite: object, progress: object) -> tuple[list[Speaker], list[str], list[str]]:
    if root.exists() and not root.is_dir():
        raise DemoCorpusError(f"{root}: exists and is not a folder; choose a folder for the demo corpus (--to)")
    if not _is_int(n_speakers) or not MIN_SPEAKERS <= n_speakers <= len(SPEAKERS):
        raise DemoCorpusError(f"n_speakers (--speakers) must be an integer from {MIN_SPEAKERS} to "
                              f"{len(SPEAKERS)} (the voices defined), got {n_speakers!r}")
    if not _is_int(n_sentences) or not 1 <= n_sentences <= len(SENTENCES):
        raise DemoCorpusError(f"n_sentences (--sentences) must be an integer from 1 to {len(SENTENCES)}, "
                              f"got {n_sentences!r}")
    if isinstance(emotions, (str, bytes)) or not isinstance(emotions, Sequence):
        raise DemoCorpusError(f"emotions must be a list of labels such as ['angry', 'sad'], got {emotions!r}")
    emotions = [str(e).strip().lower() for e in emotions]
    unknown = sorted(set(emotions) - set(STYLES))
    if unknown:
        raise DemoCorpusError(f"emotions {unknown} have no synthesis style; choose from {', '.join(STYLES)}")
    if len(set(emotions)) != len(emotions):
        raise DemoCorpusError(f"emotions lists a label twice: {emotions}")
    if len(emotions) < MIN_EMOTIONS:
        raise DemoCorpusError(f"emotions needs at least {MIN_EMOTIONS} labels to make a classification task, "
                              f"got {emotions}")
    # The order asked for does not change the corpus, so it must not change its settings either.
    emotions = [e for e in STYLES if e in emotions]
    if not _is_int(seed) or seed < 0:
        raise DemoCorpusError(f"seed (--seed) must be a non-negative integer, got {seed!r}")
    if not isinstance(overwrite, bool):
        raise DemoCorpusError(f"overwrite must be True or False, got {overwrite!r}")
    if progress is not None and not callable(progress):
        raise DemoCorpusError(f"progress must be a callable progress(done, total) or None, got {progress!r}")
    return list(SPEAKERS[:n_speakers]), list(SENTENCES)[:n_sentences], emotions


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _rel(speaker: Speaker, emotion: str, text_id: str) -> str:
    return f"{speaker.name}/{emotion}/{text_id}.wav"


def _rng(seed: int, *parts: str) -> np.random.Generator:
    # Python's hash() is salted per process; a SHA-256 of the identity is stable everywhere.
    key = "/".join([str(int(seed)), *parts]).encode("utf-8")
    words = np.frombuffer(hashlib.sha256(key).digest(), dtype="<u4")
    return np.random.default_rng(np.random.SeedSequence(words.tolist()))


def _header(speakers: list[Speaker], sentences: list[str], emotions: list[str], seed: int) -> dict:
    """Everything that determines the audio: compared with an existing folder's metadata."""
    return {
        "format": FORMAT,
        "synth_version": SYNTH_VERSION,
        "sample_rate": TARGET_SR,
        "seed": int(seed),
        "settings": {"n_speakers": len(speakers), "n_sentences": len(sentences), "emotions": list(emotions),
                     "seed": int(seed)},
        "speakers": [{"name": s.name, "gender": s.gender, "voice": {**_voice_dict(s), "espeak_voice_file":
                                                                    s.voice_file()}} for s in speakers],
        "emotions": list(emotions),
        "sentences": {tid: SENTENCES[tid] for tid in sentences},
        "prosody": {e: {k: {"mean": v[0], "sd": v[1]} for k, v in asdict(STYLES[e]).items()} for e in emotions},
        "postprocessing": {"trim_margin_s": TRIM_MARGIN_S, "trim_floor_db": TRIM_FLOOR_DB,
                           "resampler": "soxr HQ", "format": "WAV PCM_16 mono"},
    }


def _voice_dict(s: Speaker) -> dict:
    d = asdict(s)
    d.pop("name")
    d.pop("gender")
    d["pitch_hz"] = list(s.pitch_hz)
    return d


def _comparable(meta: dict) -> str:
    keys = ("format", "synth_version", "sample_rate", "seed", "settings", "speakers", "emotions", "sentences",
            "prosody", "postprocessing")
    return json.dumps({k: meta.get(k) for k in keys}, sort_keys=True)


def _describe_difference(old: dict, new: dict) -> str:
    if old.get("format") != FORMAT:
        return f"it is not a {FORMAT} file"
    if old.get("synth_version") != new["synth_version"]:
        return f"synthesis version {old.get('synth_version')} there, {new['synth_version']} here"
    before, now = old.get("settings") or {}, new["settings"]
    diffs = [f"{k} {before.get(k)!r} there, {now[k]!r} here" for k in now if before.get(k) != now[k]]
    return "; ".join(diffs) or "voices, sentences or styles differ"


def _read_metadata(root: Path) -> dict | None:
    path = root / METADATA
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DemoCorpusError(f"{path}: unreadable ({exc}); delete it or pass overwrite=True (--overwrite) "
                              "to re-synthesize the corpus") from exc
    if not isinstance(meta, dict):
        raise DemoCorpusError(f"{path}: not a demo corpus description (expected a JSON object); delete it "
                              "or pass overwrite=True (--overwrite)")
    return meta


def _remove_stale(root: Path, old: dict, planned: set[str]) -> list[str]:
    """Delete files the old metadata listed that the new settings do not produce; nothing else.

    Every path is checked first (:func:`~serbench.io.ensure_inside`): when one leads out of
    ``root`` through a link, nothing at all is deleted.
    """
    listed = old.get("files") if isinstance(old.get("files"), dict) else {}
    stale = []
    for rel in sorted(listed):
        parts = Path(rel).parts
        # Only paths of our own layout, inside root: a crafted metadata file must not delete elsewhere.
        if rel in planned or len(parts) != 3 or ".." in parts or Path(rel).is_absolute() or not rel.endswith(".wav"):
            continue
        if (root / rel).is_file():
            ensure_inside(root / rel, root, "delete")
            stale.append(rel)
    removed = []
    for rel in stale:
        path = root / rel
        unlink_inside(path, root)
        removed.append(rel)
        for folder in (path.parent, path.parent.parent):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
    unlink_inside(root / METADATA, root)
    return removed


def _foreign_files(root: Path, planned: set[str]) -> list[str]:
    found = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_dir() or rel.as_posix() in planned:
            continue
        if rel.name.startswith(".") and rel.name.endswith(".tmp"):
            continue  # a temp file left by an interrupted atomic write
        found.append(rel.as_posix())
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _generator_versions() -> dict:
    try:
        from importlib.metadata import version
        loader = version("espeakng-loader")
    except Exception:  # metadata missing in odd installs: record that instead of failing
        loader = "unknown"
    info = espeak.engine_info()
    return {"serbench": __version__, "espeak_ng": info.version, "espeakng_loader": loader,
            "soxr": getattr(soxr, "__version__", "unknown"), "numpy": np.__version__}


def _trim(x: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping :data:`TRIM_MARGIN_S` of it on each side."""
    frame, hop = int(0.02 * sr), int(0.01 * sr)
    if len(x) <= frame:
        return x
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(x[idx] ** 2, axis=1))
    active = np.nonzero(rms > rms.max() * 10 ** (TRIM_FLOOR_DB / 20))[0]
    if active.size == 0:
        return x
    margin = int(TRIM_MARGIN_S * sr)
    start = max(0, active[0] * hop - margin)
    stop = min(len(x), active[-1] * hop + frame + margin)
    return x[start:stop]


def _voice_quality(x: np.ndarray, sr: int, *, tilt: float, tension: float, breath_db: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Spectral tilt, tension and breathiness on a float signal of shape (n,)."""
    if tilt > 0:
        # Add a differentiated (+6 dB/octave) copy: a high shelf, brighter and "pressed".
        diff = np.diff(x, prepend=x[:1])
        x = x + 2.5 * tilt * diff
    elif tilt < 0:
        # Mix in a one-pole low-pass (doubled, so the low band gains what the highs lose):
        # a darker, "lax" spectrum.
        c = 0.93
        low = lfilter([1 - c], [1, -c], x)
        x = (1 + tilt) * x + (-tilt) * low * 2.0
    if tension > 1e-3:
        peak = np.max(np.abs(x)) or 1.0
        x = np.tanh(tension * x / peak) / math.tanh(tension) * peak
    if breath_db > -59.0:
        b, a = butter(2, 1500 / (sr / 2), btype="high")
        noise = lfilter(b, a, rng.standard_normal(len(x)))
        noise /= np.sqrt(np.mean(noise ** 2)) or 1.0
        win = int(0.02 * sr)
        envelope = np.convolve(np.abs(x), np.ones(win) / win, mode="same")
        x = x + noise * envelope * 10 ** (breath_db / 20) * 3.0
    return x


def _to_pcm16(x: np.ndarray, level_db: float) -> np.ndarray:
    """Scale the peak to ``level_db`` dBFS (< 0, so nothing clips) and quantize to int16."""
    peak = float(np.max(np.abs(x)))
    if not np.isfinite(peak) or peak <= 0:
        raise DemoCorpusError("synthesis produced a silent or non-finite signal; please report this as a bug")
    y = x * (10 ** (min(level_db, -0.1) / 20) / peak)
    return np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)


def _wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, TARGET_SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


__all__ = [
    "ACCENTS", "SENTENCES", "SPEAKERS", "STYLES", "SYNTH_VERSION", "DemoCorpusError", "DemoCorpusResult", "Prosody",
    "Speaker", "Style", "draw_prosody", "learnability_check", "render_utterance", "synthesize_demo_corpus",
]
