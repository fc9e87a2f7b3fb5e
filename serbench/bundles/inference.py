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
file: its scores are the mean of its windows' scores (the mean probability), its emotion
their arg-max, and ``share_<label>`` the share of its scored windows whose emotion is
``<label>``. Windows are ``window`` seconds long every ``hop`` seconds; the last one ends at
the end of the file (it may overlap its predecessor more), so no audio is left out; a file
shorter than one window is one window.

Score columns are ``prob_<label>``: probabilities that sum to 1 (the deep systems' softmax;
the SVMs' decision values through a softmax whose slope was fitted out of fold on the
training speakers, :mod:`serbench.baselines.calibration`). The emotion is always the
arg-max of the probabilities. ``scores='decision'`` gives an SVM's raw one-vs-rest decision
values instead, as ``score_<label>`` (larger = more likely; not probabilities); bundles
written before SVMs were calibrated only have those. ``status`` is 'ok', 'failed' (with
``error``: unreadable, silent, no usable features) or, for a window of digital silence,
'skipped'; a failed input never stops the others.

Per-speaker normalization (bundles trained with ``--speaker-norm``): each speaker's inputs
are z-scored with that speaker's own statistics, as in training, so the speaker of every
input must be known and each speaker needs at least :data:`MIN_SPEAKER_INPUTS` usable
inputs (fewer are refused in one line). With ``window`` and no speakers given, each file is
taken as one speaker and normalized with its own windows (then it needs that many windows).
A prediction normalized this way depends on which other inputs of the speaker are given;
:func:`batch_check` measures it on every call and warns per speaker (column ``batch_stable``).

Inputs recorded at a far lower rate, or with far less bandwidth, than the training audio are
named in ``df.attrs['warnings']`` (:func:`bandwidth_warning`).

Decoding and feature extraction run in this process or, given an executor
(:func:`serbench.executors.make_executor`: local worker processes or Dask), on its workers in
chunks, a few chunks ahead of the batch being scored; the client scores batches in input order
and :class:`Prediction` hands out each batch's rows as soon as it is scored, so a folder of
thousands of files never holds all their features. The predictions do not depend on the executor.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from serbench.audio import TARGET_SR
from serbench.bundles.options import (  # noqa: F401  (re-exported: the checks made before heavy imports)
    AUDIO_SUFFIXES, FORMATS, MIN_HOP_S, MIN_WINDOW_S, OUTPUT_SUFFIXES, PredictError, _folder_files, check_output,
    check_window, output_format,
)
from serbench.errors import AudioError

if TYPE_CHECKING:
    # pandas is imported where a table is made: a command then loads the model (scikit-learn, skops) first,
    # and skops' import-time search of every loaded module for scipy's ufuncs skips pandas' hundreds.
    import pandas as pd

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports this module).
Model = Any

#: Below one 16-bit step: what the feature extraction records as digital silence.
SILENCE_PEAK = 1.0 / 32768
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
#: A per-speaker normalized bundle needs at least this many usable inputs of each speaker.
#: Measured by hand on CASIA (4 speakers x 300 files) and EMO-DB cut to 2 s (10 speakers x
#: 35-71 files) with an IS10 ``svm-linear --speaker-norm`` trained on all but one speaker: the
#: held-out speaker's files predicted with statistics from k random files of it (the predicted
#: files among them, 30 draws per speaker and k) against all of its files. Agreement with the
#: all-file labels, CASIA / EMO-DB: k=2 0.44/0.46, 3 0.60/0.62, 5 0.71/0.71, 8 0.78/0.81,
#: 10 0.79/0.84, 15 0.81/0.89, 20 0.83/0.91, 30 0.87/0.94, 50 0.91/0.97; accuracy (all files:
#: 0.559/0.809): k=2 0.35/0.42, 5 0.51/0.63, 10 0.52/0.74, 15 0.53/0.78, 20 0.56/0.78, 30
#: 0.55/0.80. At 20 the accuracy has reached its all-file level on CASIA and its plateau on
#: EMO-DB (15 -> 20 -> 30: 0.78, 0.78, 0.80), and 83-91% of labels agree with all-file
#: statistics (10th percentile of draws: 0.70/0.80); below 10 both fall fast. Labels still
#: move at 20, hence :func:`batch_check` on every call.
MIN_SPEAKER_INPUTS = 20
#: :func:`batch_check`: the speaker's inputs are put in this many seeded random orders, each split into its first
#: and its last part (two subsets), so every input lies in between BATCH_ORDERS and twice as many subsets.
BATCH_ORDERS = 4
#: :func:`batch_check`: an input is unstable when its emotion under a subset's statistics differs from its emotion
#: with all the speaker's inputs in at least this share of the subsets holding it. Measured by hand with the demo
#: bundle (`make demo`: IS10 svm-linear --speaker-norm) on the demo corpus's spk1m (48 files, 12 per emotion):
#: over 400 random halves one file changes emotion in 22% of them, one in 14%, one in 2%, the other 45 never.
#: Over 100 seeds of the check, a quarter names 1.2 files on average there (at most 3; the first and last
#: halves of the emotion-sorted folder named 23), no file of a balanced 10 + 10 batch of the test bundle
#: (MFCC), and warns about 20 files of one emotion plus 2, 3 or 5 of another in 80, 100 and 75% of seeds (a
#: half: 25, 79, 28%). A file in 4 subsets is thus named for one change: the point is to warn where the batch
#: is lopsided, where such changes are common, and MIN_SPEAKER_INPUTS's measurement puts the average change of
#: random 20-input batches at 9-17% of labels, below a quarter.
UNSTABLE_SHARE = 0.25
SUMMARY = ("mean of the window probabilities; emotion = their arg-max; share_<label> = share of the windows "
           "whose emotion is <label>")
#: What a ``score_`` column holds when raw SVM decision values are asked for.
DECISION_NOTE = "SVM one-vs-rest decision values (larger = more likely; not probabilities)"
#: Bandwidth check (:func:`bandwidth_warning`): an input recorded at or below this fraction of the
#: training audio's lowest sample rate is named ...
RATE_FRACTION = 0.5
#: ... and so is one whose share of energy above :data:`HIGH_BAND_HZ` is below
#: :data:`HIGH_BAND_FLOOR` (-40 dB: a telephone band or a low-pass filter) when the training
#: audio's median share was at least :data:`HIGH_BAND_TRAINING` (-30 dB). Median share over 24
#: training files: CASIA 0.016, EMO-DB (2-s copy) 0.015; an 8-kHz recording resampled to 16 kHz
#: has ~1e-6.
HIGH_BAND_HZ = 4000.0
HIGH_BAND_FLOOR = 1e-4
HIGH_BAND_TRAINING = 1e-3
SCORE_CHOICES = ("probability", "decision")
#: The progress bar shows from this many inputs on (fewer finish before a bar says anything).
PROGRESS_MIN_INPUTS = 3

SPEAKER_NORM_HELP = ("was trained with per-speaker normalization: each speaker's inputs are z-scored with that "
                     "speaker's own statistics, which need several recordings of the same speaker, so single files "
                     "cannot be normalized. Give the speaker of the inputs (--speaker NAME for all of them, "
                     "--speaker-folder N, a corpus with --corpus/--root, or speakers= in Python), or --window S "
                     "to normalize each file with its own windows")


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
    #: The sample rate the input was recorded at (before conversion to 16 kHz); None until decoded.
    orig_rate: int | None = None


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
    #: Per-speaker normalized bundles: False when the emotion changed with the batch (:func:`batch_check`).
    stable: bool | None = None
    #: Summary rows: share of the scored windows won by each class.
    shares: np.ndarray | None = None


# ---------------------------------------------------------------- inputs

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
    if "pandas" in sys.modules and isinstance(inputs, sys.modules["pandas"].DataFrame):   # not one without pandas
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
    import pandas as pd

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
        src.orig_rate = int(audio.orig_sample_rate)
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
    src.orig_rate = int(src.sample_rate)
    if src.sample_rate != TARGET_SR:
        x = soxr.resample(x, src.sample_rate, TARGET_SR, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x)


def high_band_share(signal: np.ndarray, sr: int = TARGET_SR, cutoff: float = HIGH_BAND_HZ) -> float:
    """Share of the signal's energy above ``cutoff`` Hz (0..1; 0 for silence). ``signal`` (n,) at ``sr``."""
    x = np.asarray(signal, dtype=np.float64)
    if x.size < 2:
        return 0.0
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2
    total = float(power.sum())
    if total <= 0:
        return 0.0
    freqs = np.fft.rfftfreq(x.size, 1.0 / sr)
    return float(power[freqs > cutoff].sum() / total)


def bandwidth_warning(model: Model, src: Source, signal: np.ndarray) -> str:
    """'' or one line naming an input far narrower than the training audio (recorded in model.json).

    Warned: a recording rate at most :data:`RATE_FRACTION` of the training audio's lowest rate (8 kHz
    against 16 kHz: nothing above 4 kHz), or
    (any rate) almost no energy above :data:`HIGH_BAND_HZ` (< :data:`HIGH_BAND_FLOOR` of the total)
    when the training audio's median share was at least :data:`HIGH_BAND_TRAINING`. Bundles that
    record no training audio are not checked.
    """
    audio = ((model.record or {}).get("training") or {}).get("audio") or {}
    rates = [int(r) for r in (audio.get("sample_rates") or {})]
    train_share = audio.get("high_band_share")
    if rates and src.orig_rate is not None and src.orig_rate <= RATE_FRACTION * min(rates):
        return (f"{src.name}: recorded at {src.orig_rate} Hz, at most half the training audio's "
                f"{min(rates)} Hz: the model never heard audio this narrow-band; expect less reliable predictions")
    if train_share is not None and float(train_share) >= HIGH_BAND_TRAINING:
        share = high_band_share(signal)
        if 0 < share < HIGH_BAND_FLOOR or (share == 0 and np.any(signal)):
            return (f"{src.name}: almost no energy above {HIGH_BAND_HZ / 1000:g} kHz ({share:.1e} of the total; "
                    f"training audio: median {float(train_share):.1e}): telephone-band or low-passed audio, which "
                    "the model never heard; expect less reliable predictions")
    return ""


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
    narrow = bandwidth_warning(model, src, signal)
    if narrow:
        src.warnings.append(narrow)
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


def _model_output(model: Model, values: list, speakers: list[str], threads: int | None,
                  kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (n, C), predicted (n,))`` of one call of the system on raw inputs ``values``.

    Per-speaker normalized bundles z-score ``values`` here, with the statistics of each
    ``speakers`` group. ``kind``: 'probability' or 'decision' (see :func:`predict`).
    """
    from serbench.experiments.dataset import Dataset
    from serbench.experiments.harness import FoldContext
    from serbench.features.registry import Kind

    vector = model.feature_set.kind is Kind.VECTOR
    inputs: Any = np.vstack(values) if vector else list(values)
    if model.speaker_norm:
        from serbench.experiments.normalize import normalize_mels_per_speaker, normalize_per_speaker

        inputs = normalize_per_speaker(inputs, speakers) if vector else normalize_mels_per_speaker(inputs, speakers)
    n = len(values)
    data = Dataset(corpus="predict", labels=list(model.labels), y=np.zeros(n, dtype=np.int64),
                   speakers=np.asarray(speakers, dtype=str), utterance_ids=np.array([str(k) for k in range(n)]),
                   inputs=inputs, fingerprint=_fingerprint(inputs))
    ctx = FoldContext(run_id="predict", system=model.name, fold="predict", seed=0, device=model.device,
                      threads=threads, log=lambda _m: None)
    out = model.system.predict(model.fitted, data, np.arange(n), model.settings, ctx)
    scores = np.asarray(out.scores, dtype=np.float64)
    if kind == "decision" and model.score_kind == "probability":
        scores = np.asarray(out.info["decision"], dtype=np.float64)   # checked by _score_kind
    decided = np.nanargmax(scores, axis=1) if out.predicted is None else np.asarray(out.predicted)
    return scores, decided.astype(np.int64)


def _score(model: Model, units: list[Unit], speakers: list[str], threads: int | None, kind: str) -> None:
    """Fill ``scores`` and ``predicted`` of ``units`` (all with an input) with one call of the system."""
    scores, decided = _model_output(model, [u.value for u in units], speakers, threads, kind)
    for u, row, d in zip(units, scores, decided):
        u.scores, u.predicted = row, int(d)


def _unit_name(src: Source, u: Unit) -> str:
    return src.name if u.segment != "window" else f"{src.name} [{u.start_s:.2f}-{u.end_s:.2f} s]"


def _identity(value: Any) -> bytes:
    """A digest of a model input's content: what orders a speaker's inputs whatever order they came in."""
    a = np.ascontiguousarray(value)
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).digest()


def _subsets(group: list[Unit]) -> tuple[int, list[list[int]], list[bytes]]:
    """``(m, subsets, identities)`` of one speaker's ``n`` inputs: :data:`BATCH_ORDERS` random orders of them,
    each giving its first ``m`` and its last ``m`` (positions in ``group``).

    The orders are drawn from the inputs sorted by content, with a seed made of those contents, so they
    are the same whatever order the inputs were given in and on every run.
    """
    n = len(group)
    ids = [_identity(u.value) for u in group]
    canonical = sorted(range(n), key=lambda i: ids[i])
    seed = hashlib.sha256(b"".join(ids[i] for i in canonical)).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    m = n - max(1, min(n - MIN_SPEAKER_INPUTS, n // 2))
    subsets = []
    for _ in range(BATCH_ORDERS):
        order = [canonical[i] for i in rng.permutation(n)]
        subsets += [order[:m], order[n - m:]]
    return m, subsets, ids


def batch_check(model: Model, units: list[Unit], speakers: list[str], sources: list[Source],
                threads: int | None, kind: str) -> list[str]:
    """Per-speaker normalized bundles: does an input's emotion change with the other inputs given with it?

    ``units`` are scored with the statistics of all their speaker's inputs. Each speaker's ``n``
    inputs are also put in :data:`BATCH_ORDERS` random orders and each order split as two smaller
    calls of ``predict`` would get it: its first ``m`` and its last ``m`` inputs, ``m = n - q``,
    ``q = max(1, min(n - MIN_SPEAKER_INPUTS, n // 2))`` (halves when there are many; never fewer than
    ``MIN_SPEAKER_INPUTS - 1``): ``2 * BATCH_ORDERS`` subsets, each input in at least ``BATCH_ORDERS``
    of them. Each input is predicted again with the statistics of each subset it lies in (the
    features are not computed again: one more call of the system per order, over at most twice the
    inputs). The orders depend only on the inputs' contents (:func:`_subsets`), so the verdict does
    not depend on the order the inputs were given in, nor on the run; identical inputs share one.
    An input whose emotion differs in at least :data:`UNSTABLE_SHARE` of the subsets holding it gets
    ``stable=False``; every speaker with such inputs gets one warning line naming a few of them.
    Returns the warnings.

    What it cannot see: a skew that all the inputs share. A speaker given only angry recordings
    is normalized as if angry were that speaker's neutral, and the check, comparing the call with
    subsets of itself, finds them consistent (a file predicted angry among its speaker's mixed
    recordings can come out sad among 19 other angry ones, with no warning in that call; the
    call holding both sets warns). Hence the minimum and the advice to give a mix of emotions.
    """
    groups: dict[str, list[Unit]] = {}
    for u in units:
        groups.setdefault(speakers[u.source], []).append(u)
    plans = {}
    for spk, group in groups.items():
        for u in group:
            u.stable = True
        if len(group) >= 2:
            plans[spk] = _subsets(group)
    if not plans:
        return []
    labels = list(model.labels)
    # Per speaker and input content: subsets holding it, and how often each other emotion came out.
    held: dict[tuple[str, bytes], int] = {}
    moved: dict[tuple[str, bytes], dict[int, int]] = {}
    for r in range(BATCH_ORDERS):
        values, keys, owners = [], [], []
        for spk, (_m, subsets, ids) in plans.items():
            for part in (2 * r, 2 * r + 1):
                for i in subsets[part]:
                    values.append(groups[spk][i].value)
                    keys.append(f"{spk}\x00{part}")   # each subset normalized with its own statistics
                    owners.append((spk, i))
        _, decided = _model_output(model, values, keys, threads, kind)
        for (spk, i), d in zip(owners, decided):
            key = (spk, plans[spk][2][i])
            held[key] = held.get(key, 0) + 1
            if int(d) != groups[spk][i].predicted:
                counts = moved.setdefault(key, {})
                counts[int(d)] = counts.get(int(d), 0) + 1
    out = []
    for spk, (m, subsets, ids) in plans.items():
        group = groups[spk]
        flagged = []
        for u, ident in zip(group, ids):
            changes = moved.get((spk, ident), {})
            if sum(changes.values()) >= UNSTABLE_SHARE * held[(spk, ident)]:
                u.stable = False
                flagged.append((u, max(changes, key=lambda c: (changes[c], -c))))
        if not flagged:
            continue
        n = len(group)
        shown = [f"{_unit_name(sources[u.source], u)}: {labels[u.predicted]} -> {labels[d]}" for u, d in flagged[:3]]
        more = f" and {len(flagged) - 3} more" if len(flagged) > 3 else ""
        out.append(f"speaker {spk!r}: {len(flagged)} of {n} input(s) change emotion when the speaker's statistics "
                   f"come from {m} of its inputs instead of all {n} (in at least {UNSTABLE_SHARE:.0%} of "
                   f"{len(subsets)} random subsets holding them: {'; '.join(shown)}{more}); with per-speaker "
                   "normalization a prediction depends on which recordings of the speaker are given together: give "
                   "more of them, with a mix of emotions (column batch_stable)")
    return out


def _speakers(sources: list[Source], model: Model, window: float | None) -> list[str]:
    if not model.speaker_norm:
        return [s.speaker or s.name for s in sources]
    missing = [s.name for s in sources if s.speaker is None]
    if missing and len(missing) < len(sources):
        raise PredictError(f"{len(missing)} input(s) have no speaker (e.g. {missing[0]}); model {model.name} "
                           "normalizes per speaker: give every input's speaker")
    if missing and not window:
        raise PredictError(f"model {model.name} {SPEAKER_NORM_HELP}")
    spk = [s.speaker or s.name for s in sources]
    if not window:
        from collections import Counter

        few = [(name, c) for name, c in Counter(spk).items() if c < MIN_SPEAKER_INPUTS]
        if few:
            listed = ", ".join(f"{name!r} has {c}" for name, c in few[:5]) + (
                f" (and {len(few) - 5} more speakers)" if len(few) > 5 else "")
            raise PredictError(f"model {model.name} normalizes per speaker and needs at least {MIN_SPEAKER_INPUTS} "
                               f"inputs of each speaker (with fewer, the statistics and so the emotions change with "
                               f"the batch): speaker {listed}; give more recordings of each speaker, or use a bundle "
                               "trained without --speaker-norm")
    return spk


def _enough_per_speaker(units: list[Unit], speakers: list[str]) -> list[Unit]:
    """Mark the inputs of speakers with fewer than MIN_SPEAKER_INPUTS usable inputs failed; return the rest."""
    from collections import Counter

    ok = [u for u in units if u.status == "ok" and u.segment != "summary"]
    counts = Counter(speakers[u.source] for u in ok)
    keep = []
    for u in ok:
        c = counts[speakers[u.source]]
        if c < MIN_SPEAKER_INPUTS:
            u.status, u.value = "failed", None
            u.error = (f"speaker {speakers[u.source]!r} has {c} usable input(s); per-speaker normalization needs at "
                       f"least {MIN_SPEAKER_INPUTS} of the same speaker")
        else:
            keep.append(u)
    return keep


@dataclass
class FeatureSpec:
    """What extracting a model's inputs needs, without the fitted model: sent to worker processes.

    Has what :func:`_features`, :func:`_units` and :func:`bandwidth_warning` read of a model:
    ``feature_set``, ``record`` (the parts of model.json they read) and ``extractor()``.
    """

    feature_set_name: str
    record: dict

    @classmethod
    def of(cls, model: Model) -> "FeatureSpec":
        rec = model.record or {}
        return cls(model.feature_set.name, {"model": {"n_features": (rec.get("model") or {}).get("n_features")},
                                            "training": {"audio": ((rec.get("training") or {}).get("audio") or {})}})

    @property
    def feature_set(self) -> Any:
        from serbench.features.registry import get_feature_set

        return get_feature_set(self.feature_set_name)

    def extractor(self) -> Callable:
        """The feature set's extractor, built once per process."""
        if self.feature_set_name not in _EXTRACTORS:
            _EXTRACTORS[self.feature_set_name] = make_extractor(self.feature_set)
        return _EXTRACTORS[self.feature_set_name]


#: Extractors of worker processes (and of :class:`FeatureSpec` in this one), by feature set name.
_EXTRACTORS: dict[str, Callable] = {}


def make_extractor(fs: Any) -> Callable:
    """``fs.make_extractor()``, without the scan of every installed distribution that opensmile's
    ``Smile`` object asks of audobject (``importlib.metadata.packages_distributions()``, 0.5-0.8 s):
    the distributions of the modules it names are looked up one by one instead (same answers)."""
    _seed_audobject()
    return fs.make_extractor()


def _seed_audobject() -> None:
    utils = sys.modules.get("audobject.core.utils")
    if utils is None:
        try:
            import audobject.core.utils as utils
        except ImportError:
            return
    table = getattr(utils, "PACKAGES_DISTRIBUTIONS", None)
    if not isinstance(table, dict):
        return
    import importlib.metadata as md

    for module in ("opensmile", "audobject", "audeer", "audinterface", "audformat", "audresample", "audmath"):
        if module in table:
            continue
        try:
            dist = md.distribution(module)
        except md.PackageNotFoundError:
            continue
        names = {str(f).split("/", 1)[0] for f in (dist.files or ())}
        if module in names:        # the distribution of that name holds the module: what the scan would say
            table[module] = [dist.metadata["Name"]]


def _extract_chunk(spec: FeatureSpec, window: float | None, hop: float | None,
                   items: list[tuple[int, Source]]) -> list[tuple[int, list[Unit], list[str], int | None]]:
    """A task: decode and extract each ``(index, source)``; ``(index, units, warnings, original rate)`` each."""
    out = []
    for i, src in items:
        units = _units(spec, i, src, window, hop)
        out.append((i, units, list(src.warnings), src.orig_rate))
    return out


def _chunk_size(n: int, workers: int) -> int:
    # As serbench extract: small enough for a lively bar and balanced workers, large enough to amortize IPC.
    return max(1, min(8, math.ceil(n / (workers * 8))))


def _extracted(model: Model, sources: list[Source], window: float | None, hop: float | None, executor: Any,
               tick: Callable[[], None]) -> Iterator[tuple[int, list[Unit]]]:
    """``(index, units)`` of every source, in input order, extracted in this process (``executor`` None) or
    on the executor, with at most a few chunks per worker extracted ahead of the one awaited (a reorder
    buffer: memory stays bounded however many inputs there are)."""
    if executor is None:
        for i, src in enumerate(sources):
            units = _units(model, i, src, window, hop)
            tick()
            yield i, units
        return
    spec = FeatureSpec.of(model)
    workers = max(1, int(getattr(executor, "workers", 1) or 1))
    size = _chunk_size(len(sources), workers)
    chunks = [list(range(k, min(k + size, len(sources)))) for k in range(0, len(sources), size)]
    from serbench.executors import InProcess

    if not isinstance(executor, InProcess):
        _seed_audobject()
    token = executor.share(spec)
    ahead = 4 * workers + 2
    inflight: dict[Any, int] = {}
    ready: dict[int, list] = {}
    submitted = emitted = 0
    while emitted < len(chunks):
        while submitted < len(chunks) and len(inflight) + len(ready) < ahead:
            items = [(i, sources[i]) for i in chunks[submitted]]
            inflight[executor.submit(_extract_chunk, token, window, hop, items)] = submitted
            submitted += 1
        fut = next(iter(executor.as_completed(list(inflight))))
        k = inflight.pop(fut)
        results = fut.result()
        for i, _units_i, warnings, rate in results:
            sources[i].warnings, sources[i].orig_rate = warnings, rate
            tick()
        ready[k] = results
        while emitted in ready:
            for i, units, _w, _r in ready.pop(emitted):
                yield i, units
            emitted += 1


def _scored_units(model: Model, sources: list[Source], speakers: list[str], window: float | None,
                  hop: float | None, threads: int | None, batch: int, tick: Callable[[], None], kind: str,
                  notes: list[str], executor: Any = None) -> Iterator[list[Unit]]:
    """Every unit of every source, in order, scored in batches (all at once with per-speaker normalization),
    yielded batch by batch; windowed files' summaries are filled in."""
    pending: list[Unit] = []

    def flush() -> list[Unit]:
        todo = [u for u in pending if u.status == "ok" and u.segment != "summary"]
        if model.speaker_norm:
            todo = _enough_per_speaker(pending, speakers)
        if todo:
            spk = [speakers[u.source] for u in todo]
            _score(model, todo, spk, threads, kind)
            if model.speaker_norm:
                notes.extend(batch_check(model, todo, speakers, sources, threads, kind))
        for u in todo:
            u.value = None                                    # inputs are not needed once scored
        done = list(pending)
        pending.clear()
        if window:
            _summarize(done)       # a source's units are always flushed together
        return done

    waiting = 0
    for _i, units in _extracted(model, sources, window, hop, executor, tick):
        pending.extend(units)
        waiting += sum(u.value is not None for u in units)
        if not model.speaker_norm and waiting >= batch:
            yield flush()
            waiting = 0
    yield flush()


def _summarize(units: list[Unit]) -> None:
    """The summary unit of each windowed file: mean of its scored windows' scores, share of windows per class."""
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
        won = np.bincount([u.predicted for u in scored], minlength=mean.size)
        summary.shares = won / len(scored)
        if any(u.stable is False for u in scored):
            summary.stable = False
        elif all(u.stable is not None for u in scored):
            summary.stable = True


def _score_kind(model: Model, scores: str | None) -> str:
    """What the score columns hold: 'probability' or 'decision' (None: the bundle's own kind)."""
    if scores is None:
        return model.score_kind
    if scores not in SCORE_CHOICES:
        raise PredictError(f"--scores {scores!r}: choose one of {', '.join(SCORE_CHOICES)}")
    if scores == model.score_kind:
        return scores
    if scores == "probability":
        raise PredictError(f"--scores probability: model {model.name} holds SVM decision values only (written before "
                           "SVM bundles were calibrated); train it again with `serbench train` for probabilities, or "
                           "leave out --scores")
    if model.system.kind == "deep" or not (model.record.get("model") or {}).get("calibration"):
        raise PredictError(f"--scores decision: model {model.name} gives softmax probabilities only (decision values "
                           "are an SVM's); leave out --scores")
    return scores


# ---------------------------------------------------------------- the table

def predict(model: Model, inputs: Any, *, speakers: Any = None, window: float | None = None,
            hop: float | None = None, sample_rate: int = TARGET_SR, threads: int | None = None, batch: int = 64,
            progress: bool = False, scores: str | None = None, executor: Any = None) -> pd.DataFrame:
    """One row per input (or per window, plus a summary row per file); see the module docstring.

    ``speakers``: one name for all inputs, one per input (a folder's files share it), or a
    function of the file's path; a manifest DataFrame's ``speaker`` column is used when not
    given. ``sample_rate``: of array inputs. ``batch``: inputs scored per call of the system.
    ``progress``: a rich progress bar on stderr. ``scores``: 'probability' (``prob_`` columns;
    the default where the bundle has them) or 'decision' (an SVM's raw decision values,
    ``score_`` columns). ``executor``: a :mod:`serbench.executors` executor that decodes and
    extracts the inputs (``make_executor(workers=2)``; None: this process); the predictions are
    the same. ``df.attrs`` holds ``model``, ``score_kind``, ``scores_note`` (what
    the score columns are), ``passed_over`` (non-audio files found in folders), ``warnings``
    (one line each: files read with a warning, truncated or far beyond full scale; inputs far
    narrower-band than the training audio; speakers whose emotions changed with the batch)
    and, with windows, ``summary``. :class:`Prediction` gives the rows batch by batch instead.
    """
    run = Prediction(model, inputs, speakers=speakers, window=window, hop=hop, sample_rate=sample_rate,
                     threads=threads, batch=batch, progress=progress, scores=scores, executor=executor)
    units = [u for done in run.batches() for u in done]
    df = run.frame(units)
    df.attrs.update(run.attrs())
    return df


class Prediction:
    """One prediction run, checked when made; :meth:`frames` gives its rows batch by batch, in input order.

    >>> run = Prediction(model, ["recordings/"], executor=make_executor(workers=2))   # doctest: +SKIP
    >>> for frame in run.frames(): ...                                                 # doctest: +SKIP
    >>> run.attrs()["warnings"]                                                        # doctest: +SKIP

    Only the scores of the rows stay in memory while it runs, never the features of all inputs:
    inputs are extracted a few chunks ahead of the batch being scored (all at once with per-speaker
    normalization, whose statistics need every input of a speaker). Takes :func:`predict`'s arguments.
    """

    def __init__(self, model: Model, inputs: Any, *, speakers: Any = None, window: float | None = None,
                 hop: float | None = None, sample_rate: int = TARGET_SR, threads: int | None = None, batch: int = 64,
                 progress: bool = False, scores: str | None = None, executor: Any = None) -> None:
        window, hop = check_window(window, hop)
        if int(batch) < 1:
            raise PredictError(f"batch {batch!r}: give a positive number of inputs")
        self.model, self.window, self.hop, self.threads, self.batch = model, window, hop, threads, int(batch)
        self.kind = _score_kind(model, scores)
        self.sources, self.passed_over = collect(inputs, speakers, sample_rate)
        check_sources(self.sources, window, hop, model.feature_set.name)
        self.speakers = _speakers(self.sources, model, window)
        self.show_speaker = any(s.speaker is not None for s in self.sources) or model.speaker_norm
        self.progress, self.executor = progress, executor
        self.notes: list[str] = []

    def batches(self) -> Iterator[list[Unit]]:
        """The scored units, batch by batch, in input order."""
        with _progress(self.progress, len(self.sources), self.model.name) as tick:
            yield from _scored_units(self.model, self.sources, self.speakers, self.window, self.hop, self.threads,
                                     self.batch, tick, self.kind, self.notes, self.executor)

    def frame(self, units: list[Unit]) -> pd.DataFrame:
        """The rows of ``units`` (the columns are the same for every batch of the run)."""
        return _frame(self.model, self.sources, units, show_speaker=self.show_speaker, speakers=self.speakers,
                      kind=self.kind, window=bool(self.window))

    def frames(self) -> Iterator[pd.DataFrame]:
        """The prediction table, one frame per scored batch, in input order."""
        for units in self.batches():
            if units:
                yield self.frame(units)

    def attrs(self) -> dict:
        """What :func:`predict` puts in ``df.attrs`` (complete once the rows are all out)."""
        out = {"model": self.model.name, "score_kind": self.kind, "scores_note": scores_note(self.model, self.kind),
               "passed_over": self.passed_over, "warnings": [w for s in self.sources for w in s.warnings] + self.notes}
        if self.window:
            out["summary"] = SUMMARY if self.kind == "probability" else SUMMARY.replace("probabilities", "scores")
        return out


def scores_note(model: Model, kind: str) -> str:
    """What the score columns of ``model``'s predictions hold, in words."""
    if kind == "decision":
        return DECISION_NOTE
    calibration = (model.record.get("model") or {}).get("calibration")
    if calibration:
        return (f"probabilities: softmax of the SVM's decision values, slope {calibration['scale']:.3g} fitted out of "
                f"fold on the training speakers ({calibration['method']}); emotion = their arg-max")
    return "probabilities (softmax); emotion = their arg-max"


def _frame(model: Model, sources: list[Source], units: list[Unit], *, show_speaker: bool,
           speakers: list[str], kind: str = "probability", window: bool = False) -> pd.DataFrame:
    import pandas as pd

    labels = list(model.labels)
    prefix = "prob_" if kind == "probability" else "score_"
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
        cols[prefix + label] = scores[:, j]
    if window:
        shares = np.full((len(units), len(labels)), np.nan)
        for k, u in enumerate(units):
            if u.shares is not None and u.status == "ok":
                shares[k] = u.shares
        for j, label in enumerate(labels):
            cols["share_" + label] = shares[:, j]
    if model.speaker_norm:
        cols["batch_stable"] = pd.array([u.stable if u.status == "ok" else None for u in units], dtype="boolean")
    cols["status"] = [u.status if u.status != "ok" or u.scores is not None else "failed" for u in units]
    cols["error"] = [u.error for u in units]
    return pd.DataFrame(cols)


class _progress:
    """A rich progress bar over the inputs on stderr (a no-op when off or not on a terminal)."""

    def __init__(self, enabled: bool, total: int, name: str) -> None:
        self.enabled, self.total, self.name = enabled, total, name
        self.bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled or self.total <= PROGRESS_MIN_INPUTS:
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


class TableWriter:
    """Writes a prediction table to ``out`` frame by frame, as :func:`write_table` would write it whole
    (CSV and JSON byte for byte; Parquet one row group per frame): into a temp file beside ``out``,
    renamed into place by :meth:`close` (an interrupted run leaves no half table). Use as a context
    manager; a refused ``out`` (a folder, an existing file without ``overwrite``) is refused at once.
    """

    def __init__(self, out: str | Path, fmt: str | None = None, *, overwrite: bool = True) -> None:
        out = Path(out).expanduser()
        if out.is_dir():
            raise PredictError(f"--out {out}: is a folder; give a file name, e.g. {out / 'predictions.csv'}")
        self.fmt = output_format(out, fmt)
        if not overwrite and (out.exists() or out.is_symlink()):
            raise PredictError(f"--out {out}: already exists; give --overwrite to replace it, or another name")
        self.out, self.rows = out, 0
        self._cm: Any = None
        self._file: Any = None
        self._parquet: Any = None

    def __enter__(self) -> "TableWriter":
        from serbench.io import atomic_write

        self._cm = atomic_write(self.out, "wb")
        self._file = self._cm.__enter__()
        return self

    def write(self, df: pd.DataFrame) -> None:
        """Append the rows of ``df`` (the same columns every time)."""
        frame = df.copy()
        frame.attrs = {}
        if self.fmt == "csv":
            self._file.write(frame.to_csv(index=False, header=self.rows == 0).encode("utf-8"))
        elif self.fmt == "json":
            import json
            import textwrap

            records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            # json.dumps(all_records, indent=1), one record at a time
            text = ",\n".join(textwrap.indent(json.dumps(r, indent=1, allow_nan=False), " ") for r in records)
            if text:
                self._file.write((("[\n" if self.rows == 0 else ",\n") + text).encode("utf-8"))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                self._schema = _arrow_schema(frame)
                self._parquet = pq.ParquetWriter(self._file, self._schema)
            self._parquet.write_table(pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False))
        self.rows += len(frame)

    def __exit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None:
                if self.fmt == "json":
                    self._file.write(b"[]\n" if self.rows == 0 else b"\n]\n")
                elif self.fmt == "csv" and self.rows == 0:
                    pass
                elif self.fmt == "parquet" and self._parquet is None:
                    raise PredictError(f"--out {self.out}: no rows to write")
            if self._parquet is not None:
                self._parquet.close()
        finally:
            self._cm.__exit__(*exc)


def _arrow_schema(frame: pd.DataFrame) -> Any:
    """The Parquet schema of a prediction table: text, flags and numbers, whatever the first frame holds
    (a first frame of failed rows has no emotion, yet the column is text)."""
    import pyarrow as pa

    fields = []
    for col in frame.columns:
        if col == "batch_stable":
            typ = pa.bool_()
        elif col in ("file", "speaker", "utterance_id", "true", "segment", "emotion", "status", "error"):
            typ = pa.string()
        else:
            typ = pa.float64()
        fields.append(pa.field(col, typ))
    return pa.schema(fields)


__all__ = ["predict", "collect", "batch_check", "bandwidth_warning", "high_band_share", "scores_note",
           "MIN_SPEAKER_INPUTS", "SCORE_CHOICES", "windows", "window_count", "check_window", "check_sources", "check_output",
           "write_table", "TableWriter", "Prediction", "FeatureSpec", "make_extractor", "output_format", "PredictError", "OUTPUT_SUFFIXES", "MIN_WINDOW_S", "MIN_HOP_S", "MAX_WINDOWS",
           "MEMORY_BUDGET", "BYTES_PER_S",
           "AUDIO_SUFFIXES", "FORMATS", "SUMMARY", "SPEAKER_NORM_HELP"]
