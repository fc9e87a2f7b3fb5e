"""The inputs of a prediction: files, folders, arrays or a manifest as :class:`Source` objects, decoded to
16 kHz mono, cut into windows, and checked (window counts, memory, bandwidth) before any feature is computed.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serbench.audio import TARGET_SR
from serbench.bundles.options import PredictError, folder_files
from serbench.errors import AudioError

if TYPE_CHECKING:
    import pandas as pd

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports the prediction modules).
Model = Any

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
            files = folder_files(path, passed_over) if path.is_dir() else [path]
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
