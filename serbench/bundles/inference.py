"""Label new recordings with a :class:`~serbench.bundles.model.Model`: one row per file or per window.

Inputs are audio files (any sample rate, channel count and container that
:func:`serbench.audio.load_audio` decodes), folders (their audio files, recursively, sorted),
arrays (mono or ``(n, channels)`` float signals at ``sample_rate``), ``(array, rate)``
pairs, or a manifest DataFrame with a ``path`` column (and ``speaker``, ``utterance_id``,
``emotion``, which become the ``speaker``, ``utterance_id`` and ``true`` columns).

Each input is decoded to 16 kHz mono, its features are computed by the bundle's feature set
exactly as ``serbench extract`` computes them, and the system's own ``predict`` scores them,
so the scores are those the model gives in the benchmark.

The result has one row per input (``segment='file'``) or, with ``window``, one row per
window (``segment='window'``: ``start_s``, ``end_s``) plus one ``segment='summary'`` row per
file (its scores are the mean of its windows' scores, its emotion their argmax). Windows
are ``window`` seconds long every ``hop`` seconds; the last one ends at the end of the file
(it may overlap its predecessor more), so no audio is left out; a file shorter than one
window is one window. Score columns are ``prob_<label>`` (softmax probabilities, the deep
systems) or ``score_<label>`` (SVM one-vs-rest decision scores: larger means more likely,
not a probability). ``status`` is 'ok', 'failed' (with ``error``: unreadable, silent, no
usable features) or, for a window of digital silence, 'skipped'; a failed input never
stops the others.

Per-speaker normalization (bundles trained with ``--speaker-norm``): each speaker's inputs
are z-scored with that speaker's own statistics, as in training, so the speaker of every
input must be known and each speaker needs at least two usable inputs. With ``window`` and
no speakers given, each file is taken as one speaker and normalized with its own windows.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from serbench.audio import TARGET_SR
from serbench.bundles.format import BundleError
from serbench.errors import AudioError

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports this module).
Model = Any

#: File suffixes taken from a folder (what libsndfile decodes); other files there are listed as passed over.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd",
                  ".caf", ".w64", ".rf64")
#: Below one 16-bit step: what the feature extraction records as digital silence.
SILENCE_PEAK = 1.0 / 32768
#: Shortest window accepted (seconds): the functionals need enough 10 ms frames for their statistics
#: (regression coefficients, percentiles, deltas) and the log-mel sets a few 25 ms frames per segment.
MIN_WINDOW_S = 0.25
#: Shortest step between windows (seconds): one frame of the feature sets; finer steps repeat the same frames.
MIN_HOP_S = 0.01
#: Most windows per file: beyond this a prediction is more rows than anyone reads (a hop typed wrong).
MAX_WINDOWS = 10_000
#: Most memory the features of one input (a whole file, or one window) may take; a longer input is
#: refused with what it would need, and ``--window`` predicts it in pieces.
MEMORY_BUDGET = 1.5e9
#: Bytes of memory per second of audio that a feature set's extractor takes for one input: peak RSS
#: growth measured while extracting a synthetic 120-s 16-kHz signal (IS10: 600 s, where it grows
#: faster than linearly; 13.5 GB peak for one hour). Sets not listed (the log-mel arrays of the deep
#: systems, whose networks then run over the whole input) get DEFAULT_BYTES_PER_S.
BYTES_PER_S = {"IS09": 0.11e6, "IS10": 4.5e6, "eGeMAPS": 0.26e6, "ComParE": 0.42e6, "MFCC": 0.52e6,
               "PLP": 0.29e6, "HuWSF": 0.62e6}
DEFAULT_BYTES_PER_S = 1.0e6
#: Per-speaker statistics need at least this many inputs of the speaker.
MIN_SPEAKER_ROWS = 2
SUMMARY = "mean of the window scores; emotion = their argmax"

SPEAKER_NORM_HELP = ("was trained with per-speaker normalization: each speaker's inputs are z-scored with that "
                     "speaker's own statistics, which need several recordings of the same speaker, so single files "
                     "cannot be normalized. Give the speaker of the inputs (--speaker NAME for all of them, "
                     "--speaker-folder N, a corpus with --corpus/--root, or speakers= in Python), or --window S "
                     "to normalize each file with its own windows")


class PredictError(BundleError):
    """Inputs or options that cannot be predicted (no inputs, bad windows, speakers unknown)."""


@dataclass
class Source:
    """One input recording: a file or an array, its speaker and extra output columns."""

    name: str
    path: Path | None = None
    signal: np.ndarray | None = None
    sample_rate: int = TARGET_SR
    speaker: str | None = None
    extra: dict = field(default_factory=dict)
    #: What was odd about the file when decoded (truncated, far beyond full scale), with its name.
    warnings: list[str] = field(default_factory=list)


@dataclass
class Unit:
    """A file or one window of it: its place in the output and, once computed, its model input."""

    source: int
    segment: str
    start_s: float = math.nan
    end_s: float = math.nan
    value: Any = None
    status: str = "ok"
    error: str = ""
    scores: np.ndarray | None = None
    predicted: int | None = None


# ---------------------------------------------------------------- inputs

def _folder_files(folder: Path, passed_over: list[str]) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_dir() or p.name.startswith("."):
            continue
        if p.suffix.lower() in AUDIO_SUFFIXES:
            out.append(p)
        else:
            passed_over.append(str(p))
    return out


def _speaker_of(speakers: Any, i: int, name: str, path: Path | None) -> str | None:
    if speakers is None:
        return None
    if isinstance(speakers, str):
        return speakers
    if callable(speakers):
        value = speakers(path if path is not None else Path(name))
        return None if value is None else str(value)
    return None if speakers[i] is None else str(speakers[i])


def _is_pair(item: Any) -> bool:
    """``(signal array, sample rate)``."""
    return (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], np.ndarray)
            and isinstance(item[1], (int, np.integer)) and not isinstance(item[1], bool))


def collect(inputs: Any, speakers: Any = None, sample_rate: int = TARGET_SR) -> tuple[list[Source], list[str]]:
    """``(sources, passed_over)``: the recordings ``inputs`` name, and non-audio files found in folders."""
    passed_over: list[str] = []
    if isinstance(inputs, pd.DataFrame):
        return _from_manifest(inputs, speakers), passed_over
    if isinstance(inputs, (str, Path, np.ndarray)) or _is_pair(inputs):
        inputs = [inputs]
    items = list(inputs)
    if not items:
        raise PredictError("no inputs: give audio files, folders or arrays")
    if speakers is not None and not isinstance(speakers, str) and not callable(speakers):
        speakers = list(speakers)
        if len(speakers) != len(items):
            raise PredictError(f"speakers has {len(speakers)} entries for {len(items)} inputs; give one per input "
                               "(a folder's files share its entry) or one name for all")
    out: list[Source] = []
    for i, item in enumerate(items):
        if _is_pair(item):
            arr, rate = item
            name = f"<array {i}>"
            out.append(Source(name, signal=arr, sample_rate=int(rate), speaker=_speaker_of(speakers, i, name, None)))
        elif isinstance(item, np.ndarray):
            name = f"<array {i}>"
            out.append(Source(name, signal=item, sample_rate=int(sample_rate),
                              speaker=_speaker_of(speakers, i, name, None)))
        elif isinstance(item, (str, Path)):
            path = Path(item).expanduser()
            files = _folder_files(path, passed_over) if path.is_dir() else [path]
            for f in files:
                out.append(Source(str(f), path=f, speaker=_speaker_of(speakers, i, str(f), f)))
        else:
            raise PredictError(f"input {i}: {type(item).__name__} is neither a path, a folder nor an array")
    if not out:
        raise PredictError("no audio files in the given folder(s)" + (f"; passed over {len(passed_over)} other "
                                                                       "file(s)" if passed_over else ""))
    return out, passed_over


def _from_manifest(manifest: pd.DataFrame, speakers: Any) -> list[Source]:
    if "path" not in manifest.columns:
        raise PredictError("a DataFrame input needs a 'path' column (a corpus manifest)")
    out = []
    for i, row in enumerate(manifest.itertuples(index=False)):
        rec = row._asdict()
        path = Path(str(rec["path"]))
        spk = _speaker_of(speakers, i, str(path), path) if speakers is not None else rec.get("speaker")
        extra = {}
        if "utterance_id" in rec:
            extra["utterance_id"] = str(rec["utterance_id"])
        if "emotion" in rec:
            extra["true"] = str(rec["emotion"])
        out.append(Source(str(path), path=path, speaker=None if spk is None or pd.isna(spk) else str(spk),
                          extra=extra))
    if not out:
        raise PredictError("the manifest holds no utterances")
    return out


def decode(src: Source) -> np.ndarray:
    """The source as a 16 kHz mono float32 signal; :class:`AudioError` names what is wrong."""
    if src.path is not None:
        from serbench.audio import load_audio

        audio = load_audio(src.path)
        src.warnings = [f"{src.name}: {w}" for w in audio.warnings]
        return audio.signal
    import soxr

    x = np.asarray(src.signal)
    if x.ndim == 2:
        x = x.mean(axis=1)            # (n, channels), as soundfile returns them
    if x.ndim != 1 or x.size == 0:
        raise AudioError(src.name, f"expected a non-empty (n,) or (n, channels) signal, got shape {np.shape(src.signal)}")
    if not np.issubdtype(x.dtype, np.number):
        raise AudioError(src.name, f"signal of dtype {x.dtype} is not numeric")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise AudioError(src.name, "signal contains NaN or infinite samples")
    if src.sample_rate < 1000:
        raise AudioError(src.name, f"sample rate {src.sample_rate} Hz is not an audio rate; give the signal's rate")
    if src.sample_rate != TARGET_SR:
        x = soxr.resample(x, src.sample_rate, TARGET_SR, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x)


def windows(n_samples: int, window: float, hop: float, sr: int = TARGET_SR) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` sample bounds of the windows of a signal (see the module docstring).

    ``ceil((n - w) / h) + 1`` windows of ``w`` samples, window ``k`` starting at
    ``min(k * h, n - w)``; one window ``(0, n)`` when the signal is shorter than ``w``.
    """
    w, h = max(1, int(round(window * sr))), max(1, int(round(hop * sr)))
    if n_samples <= w:
        return [(0, n_samples)]
    count = math.ceil((n_samples - w) / h) + 1
    return [(min(k * h, n_samples - w), min(k * h, n_samples - w) + w) for k in range(count)]


def check_window(window: float | None, hop: float | None) -> tuple[float | None, float | None]:
    if window is None:
        if hop is not None:
            raise PredictError("--hop needs --window")
        return None, None
    window = float(window)
    hop = window if hop is None else float(hop)
    if not math.isfinite(window) or window < MIN_WINDOW_S:
        raise PredictError(f"--window {window:g}: give a length in seconds >= {MIN_WINDOW_S} (the feature sets "
                           "need that much audio per window)")
    if not math.isfinite(hop) or hop < MIN_HOP_S or hop > window:
        raise PredictError(f"--hop {hop:g}: give a step in seconds from {MIN_HOP_S} (one feature frame) to the "
                           f"window length {window:g} (longer steps would leave audio out)")
    return window, hop


def window_count(n_samples: int, window: float, hop: float, sr: int = TARGET_SR) -> int:
    """How many windows :func:`windows` gives for a signal of ``n_samples`` (without listing them)."""
    w, h = max(1, int(round(window * sr))), max(1, int(round(hop * sr)))
    return 1 if n_samples <= w else math.ceil((n_samples - w) / h) + 1


def _too_many_windows(name: str, n_samples: int, sr: int, window: float, hop: float) -> str:
    """'' or why ``name`` (``n_samples`` at ``sr``) would give more than :data:`MAX_WINDOWS` windows."""
    count = window_count(int(round(n_samples * TARGET_SR / sr)), window, hop)
    if count <= MAX_WINDOWS:
        return ""
    return (f"{name}: --window {window:g} --hop {hop:g} gives {count} windows for its {n_samples / sr:.1f} s, more "
            f"than {MAX_WINDOWS}; give a longer --hop or --window")


def _memory(seconds: float, feature_set: str) -> float:
    """Bytes the features of ``seconds`` of audio take (see :data:`BYTES_PER_S`) plus the 16-kHz signal."""
    return seconds * (BYTES_PER_S.get(feature_set, DEFAULT_BYTES_PER_S) + 4 * TARGET_SR)


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _too_long(name: str, seconds: float, feature_set: str, windowed: bool = False) -> str:
    need = _memory(seconds, feature_set)
    if need <= MEMORY_BUDGET:
        return ""
    longest = MEMORY_BUDGET / _memory(1.0, feature_set)
    what = f"windows of {seconds:g} s" if windowed else f"{seconds:.0f} s as one input"
    return (f"{name}: {what} would need about {_size(need)} for the {feature_set} features, over the "
            f"{_size(MEMORY_BUDGET)} allowed per input (about {longest:.0f} s); give "
            + ("a shorter --window" if windowed else "--window S (e.g. --window 10) to predict it in windows"))


def check_sources(sources: list[Source], window: float | None, hop: float | None,
                  feature_set: str | None = None) -> None:
    """Raise :class:`PredictError` before any work when an input has too many windows or, without
    ``window``, is too long to extract as one input (memory, see :data:`MEMORY_BUDGET`).

    File lengths come from their headers (nothing is decoded); an unreadable header is left
    for the prediction to report on that input's row. ``feature_set``: the bundle's set
    name (None: the memory is not checked).
    """
    if not window and feature_set is None:
        return
    from serbench.audio import audio_info

    for src in sources:
        if src.path is not None:
            try:
                info = audio_info(src.path)
            except AudioError:
                continue
            frames, rate = info.frames, info.sample_rate
        else:
            sig = np.asarray(src.signal)
            if sig.ndim not in (1, 2) or src.sample_rate < 1000:
                continue                  # decode() fails that input's row, naming what is wrong
            frames, rate = sig.shape[0], src.sample_rate
        if window:
            why = _too_many_windows(src.name, frames, rate, window, hop or window)
            if not why and feature_set is not None:
                why = _too_long(src.name, min(window, frames / rate), feature_set, windowed=True)
        else:
            why = _too_long(src.name, frames / rate, feature_set or "")
        if why:
            raise PredictError(why)


# ---------------------------------------------------------------- features

def _features(model: Model, signal: np.ndarray) -> tuple[Any, str]:
    """``(input, '')`` for the model, or ``(None, reason)``."""
    from serbench.features.registry import Kind

    if signal.size == 0 or float(np.max(np.abs(signal))) < SILENCE_PEAK:
        return None, "digital silence (peak below one 16-bit step)"
    fs = model.feature_set
    try:
        values = np.asarray(model.extractor()(signal, TARGET_SR))
    except Exception as exc:  # an extractor failing on one input must not stop the others
        return None, f"{fs.name} features could not be computed ({type(exc).__name__}: {exc})"
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        return None, f"{fs.name} features hold NaN or inf in {bad} of {values.size} values"
    if fs.kind is Kind.VECTOR:
        # Through float32, as the feature cache stores vectors: the model sees what it was trained on.
        values = values.astype(np.float32).astype(np.float64).ravel()
        want = (model.record.get("model") or {}).get("n_features")
        if want is not None and values.size != int(want):
            return None, f"{fs.name} gave {values.size} features, the model was trained on {want}"
        return values, ""
    return values.astype(np.float32), ""


def _units(model: Model, i: int, src: Source, window: float | None, hop: float | None) -> list[Unit]:
    summary = "summary" if window else "file"
    try:
        signal = decode(src)
    except AudioError as exc:
        return [Unit(i, summary, status="failed", error=exc.reason)]
    duration = signal.size / TARGET_SR
    if not window:
        value, why = _features(model, signal)
        return [Unit(i, "file", 0.0, duration, value, "ok" if why == "" else "failed", why)]
    out = []
    for a, b in windows(signal.size, window, hop or window):
        value, why = _features(model, signal[a:b])
        status = "ok" if not why else ("skipped" if why.startswith("digital silence") else "failed")
        out.append(Unit(i, "window", a / TARGET_SR, b / TARGET_SR, value, status, why))
    out.append(Unit(i, "summary", 0.0, duration))
    return out


# ---------------------------------------------------------------- scoring

def _fingerprint(inputs: Any) -> str:
    h = hashlib.sha256()
    for a in (inputs if isinstance(inputs, list) else [inputs]):
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return "predict-" + h.hexdigest()


def _score(model: Model, units: list[Unit], speakers: list[str], threads: int | None) -> None:
    """Fill ``scores`` and ``predicted`` of ``units`` (all with an input) with one call of the system."""
    from serbench.experiments.dataset import Dataset
    from serbench.experiments.harness import FoldContext
    from serbench.features.registry import Kind

    vector = model.feature_set.kind is Kind.VECTOR
    inputs: Any = np.vstack([u.value for u in units]) if vector else [u.value for u in units]
    if model.speaker_norm:
        from serbench.experiments.normalize import normalize_mels_per_speaker, normalize_per_speaker

        inputs = normalize_per_speaker(inputs, speakers) if vector else normalize_mels_per_speaker(inputs, speakers)
    n = len(units)
    data = Dataset(corpus="predict", labels=list(model.labels), y=np.zeros(n, dtype=np.int64),
                   speakers=np.asarray(speakers, dtype=str), utterance_ids=np.array([str(k) for k in range(n)]),
                   inputs=inputs, fingerprint=_fingerprint(inputs))
    ctx = FoldContext(run_id="predict", system=model.name, fold="predict", seed=0, device=model.device,
                      threads=threads, log=lambda _m: None)
    out = model.system.predict(model.fitted, data, np.arange(n), model.settings, ctx)
    scores = np.asarray(out.scores, dtype=np.float64)
    decided = np.nanargmax(scores, axis=1) if out.predicted is None else np.asarray(out.predicted)
    for u, row, d in zip(units, scores, decided):
        u.scores, u.predicted = row, int(d)


def _speakers(sources: list[Source], model: Model, window: float | None) -> list[str]:
    if not model.speaker_norm:
        return [s.speaker or s.name for s in sources]
    missing = [s.name for s in sources if s.speaker is None]
    if missing and len(missing) < len(sources):
        raise PredictError(f"{len(missing)} input(s) have no speaker (e.g. {missing[0]}); model {model.name} "
                           "normalizes per speaker: give every input's speaker")
    if missing and not window:
        raise PredictError(f"model {model.name} {SPEAKER_NORM_HELP}")
    return [s.speaker or s.name for s in sources]


def _enough_per_speaker(units: list[Unit], speakers: list[str]) -> list[Unit]:
    """Mark the inputs of speakers with fewer than MIN_SPEAKER_ROWS usable inputs failed; return the rest."""
    from collections import Counter

    ok = [u for u in units if u.status == "ok" and u.segment != "summary"]
    counts = Counter(speakers[u.source] for u in ok)
    keep = []
    for u in ok:
        c = counts[speakers[u.source]]
        if c < MIN_SPEAKER_ROWS:
            u.status, u.value = "failed", None
            u.error = (f"speaker {speakers[u.source]!r} has {c} usable input(s); per-speaker normalization needs at "
                       f"least {MIN_SPEAKER_ROWS} of the same speaker")
        else:
            keep.append(u)
    return keep


def _scored_units(model: Model, sources: list[Source], speakers: list[str], window: float | None,
                  hop: float | None, threads: int | None, batch: int, tick: Callable[[], None]) -> Iterator[Unit]:
    """Every unit of every source, in order, scored in batches (all at once with per-speaker normalization)."""
    pending: list[Unit] = []
    done: list[Unit] = []

    def flush() -> None:
        todo = [u for u in pending if u.status == "ok" and u.segment != "summary"]
        if model.speaker_norm:
            todo = _enough_per_speaker(pending, speakers)
        if todo:
            _score(model, todo, [speakers[u.source] for u in todo], threads)
        for u in todo:
            u.value = None                                    # inputs are not needed once scored
        done.extend(pending)
        pending.clear()

    for i, src in enumerate(sources):
        pending.extend(_units(model, i, src, window, hop))
        tick()
        if not model.speaker_norm and sum(u.value is not None for u in pending) >= batch:
            flush()
            yield from done
            done.clear()
    flush()
    yield from done


def _summarize(units: list[Unit]) -> None:
    """The summary unit of each windowed file: mean of its scored windows' scores."""
    by_source: dict[int, list[Unit]] = {}
    for u in units:
        by_source.setdefault(u.source, []).append(u)
    for group in by_source.values():
        summary = group[-1]
        if summary.segment != "summary" or summary.status != "ok":
            continue
        scored = [u for u in group[:-1] if u.scores is not None]
        if not scored:
            reasons = sorted({u.error for u in group[:-1] if u.error})
            summary.status = "failed"
            summary.error = "no window could be scored" + (f" ({'; '.join(reasons)})" if reasons else "")
            continue
        mean = np.mean(np.vstack([u.scores for u in scored]), axis=0)
        summary.scores, summary.predicted = mean, int(np.nanargmax(mean))


# ---------------------------------------------------------------- the table

def predict(model: Model, inputs: Any, *, speakers: Any = None, window: float | None = None,
            hop: float | None = None, sample_rate: int = TARGET_SR, threads: int | None = None, batch: int = 64,
            progress: bool = False) -> pd.DataFrame:
    """One row per input (or per window, plus a summary row per file); see the module docstring.

    ``speakers``: one name for all inputs, one per input (a folder's files share it), or a
    function of the file's path; a manifest DataFrame's ``speaker`` column is used when not
    given. ``sample_rate``: of array inputs. ``batch``: inputs scored per call of the system.
    ``progress``: a rich progress bar on stderr. ``df.attrs`` holds ``model``, ``score_kind``,
    ``passed_over`` (non-audio files found in folders), ``warnings`` (files read with a warning:
    truncated, far beyond full scale; one line each, naming the file) and, with windows, ``summary``.
    """
    window, hop = check_window(window, hop)
    if int(batch) < 1:
        raise PredictError(f"batch {batch!r}: give a positive number of inputs")
    sources, passed_over = collect(inputs, speakers, sample_rate)
    check_sources(sources, window, hop, model.feature_set.name)
    spk = _speakers(sources, model, window)
    with _progress(progress, len(sources), model.name) as tick:
        units = list(_scored_units(model, sources, spk, window, hop, threads, int(batch), tick))
    if window:
        _summarize(units)
    df = _frame(model, sources, units, show_speaker=any(s.speaker is not None for s in sources) or model.speaker_norm,
                speakers=spk)
    df.attrs.update({"model": model.name, "score_kind": model.score_kind, "passed_over": passed_over,
                     "warnings": [w for s in sources for w in s.warnings]})
    if window:
        df.attrs["summary"] = SUMMARY
    return df


def _frame(model: Model, sources: list[Source], units: list[Unit], *, show_speaker: bool,
           speakers: list[str]) -> pd.DataFrame:
    labels = list(model.labels)
    scores = np.full((len(units), len(labels)), np.nan)
    emotion: list[Any] = [None] * len(units)
    for k, u in enumerate(units):
        if u.scores is not None and u.status == "ok":
            scores[k] = u.scores
            emotion[k] = labels[u.predicted]
    cols: dict[str, Any] = {"file": [sources[u.source].name for u in units]}
    if show_speaker:
        cols["speaker"] = [speakers[u.source] for u in units]
    for key in ("utterance_id", "true"):
        if any(key in s.extra for s in sources):
            cols[key] = [sources[u.source].extra.get(key) for u in units]
    cols.update({"segment": [u.segment for u in units], "start_s": [u.start_s for u in units],
                 "end_s": [u.end_s for u in units], "emotion": emotion})
    for j, label in enumerate(labels):
        cols[model.score_prefix + label] = scores[:, j]
    cols["status"] = [u.status if u.status != "ok" or u.scores is not None else "failed" for u in units]
    cols["error"] = [u.error for u in units]
    return pd.DataFrame(cols)


class _progress:
    """A rich progress bar over the inputs on stderr (a no-op when off or not on a terminal)."""

    def __init__(self, enabled: bool, total: int, name: str) -> None:
        self.enabled, self.total, self.name = enabled, total, name
        self.bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=console, disable=not console.is_terminal)
        self.bar.start()
        task = self.bar.add_task(f"predict {self.name}", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------- writing

FORMATS = ("csv", "parquet", "json")
#: Output file suffixes and the format each names (the format always follows the suffix).
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


def output_format(out: str | Path, fmt: str | None = None) -> str:
    """The format ``out``'s suffix names; ``fmt``, when given, must agree with it.

    An unknown or missing suffix is refused: a CSV written under ``.xlsx`` or no suffix at
    all misleads whoever opens it.
    """
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        got = f"suffix {Path(out).suffix!r}" if suffix else "no suffix"
        raise PredictError(f"--out {out}: {got}; the format follows the suffix, use one of "
                           f"{', '.join(OUTPUT_SUFFIXES)}")
    named = OUTPUT_SUFFIXES[suffix]
    if fmt and fmt != named:
        raise PredictError(f"--format {fmt}: --out {out} names {named} by its suffix; leave out --format or "
                           f"give a .{fmt} file name")
    return named


def check_output(out: str | Path, fmt: str | None = None, *, inputs: Any = (), model_dir: str | Path | None = None,
                 overwrite: bool = False) -> tuple[Path, str]:
    """``(path, format)`` of the table to write, checked before any work (see :func:`serbench.io.check_output_file`).

    Refused: an unknown suffix, one of the ``inputs`` (files; folders are expanded to their
    audio files), a path inside the model bundle ``model_dir``, and an existing file unless
    ``overwrite``.
    """
    from serbench.io import OutputError, check_output_file

    fmt = output_format(out, fmt)
    files: list[Path] = []
    for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        if isinstance(item, (str, Path)):
            p = Path(item).expanduser()
            files.extend(_folder_files(p, []) if p.is_dir() else [p])
    try:
        path = check_output_file(out, inputs=files, inside_inputs=[model_dir] if model_dir is not None else [],
                                 overwrite=overwrite)
    except OutputError as exc:
        raise PredictError(str(exc)) from None
    return path, fmt


def write_table(df: pd.DataFrame, out: str | Path, fmt: str | None = None, *, overwrite: bool = True) -> Path:
    """Write the predictions atomically as CSV, Parquet or JSON (a list of row objects), by ``out``'s suffix.

    Without ``overwrite`` an existing file is refused (:class:`PredictError`).
    """
    import io

    from serbench.io import atomic_write_bytes

    out = Path(out).expanduser()
    if out.is_dir():
        raise PredictError(f"--out {out}: is a folder; give a file name, e.g. {out / 'predictions.csv'}")
    fmt = output_format(out, fmt)
    if not overwrite and (out.exists() or out.is_symlink()):
        raise PredictError(f"--out {out}: already exists; give --overwrite to replace it, or another name")
    frame = df.copy()
    frame.attrs = {}
    if fmt == "csv":
        data = frame.to_csv(index=False).encode("utf-8")
    elif fmt == "json":
        import json

        # json, not DataFrame.to_json: that escapes every '/' of the file paths.
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        data = (json.dumps(records, indent=1, allow_nan=False) + "\n").encode("utf-8")
    else:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
    atomic_write_bytes(out, data)
    return out


__all__ = ["predict", "collect", "windows", "window_count", "check_window", "check_sources", "check_output",
           "write_table", "output_format", "PredictError", "OUTPUT_SUFFIXES", "MIN_WINDOW_S", "MIN_HOP_S", "MAX_WINDOWS",
           "MEMORY_BUDGET", "BYTES_PER_S",
           "AUDIO_SUFFIXES", "FORMATS", "SUMMARY", "SPEAKER_NORM_HELP"]
