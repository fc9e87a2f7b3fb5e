"""What is scored: a :class:`Unit` (a file or one window of it), its model input computed as ``serbench
extract`` computes it, and the system's scores for a batch of units.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from serbench.audio import TARGET_SR
from serbench.bundles.sources import Source, bandwidth_warning, decode, windows
from serbench.errors import AudioError

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports the prediction modules).
Model = Any

#: Below one 16-bit step: what the feature extraction records as digital silence.
SILENCE_PEAK = 1.0 / 32768


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


# ---------------------------------------------------------------- features

def model_input(model: Model, signal: np.ndarray) -> tuple[Any, str]:
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


def units_of(model: Model, i: int, src: Source, window: float | None, hop: float | None) -> list[Unit]:
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
        value, why = model_input(model, signal)
        return [Unit(i, "file", 0.0, duration, value, "ok" if why == "" else "failed", why)]
    out = []
    for a, b in windows(signal.size, window, hop or window):
        value, why = model_input(model, signal[a:b])
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


def model_output(model: Model, values: list, speakers: list[str], threads: int | None,
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


def score_units(model: Model, units: list[Unit], speakers: list[str], threads: int | None, kind: str) -> None:
    """Fill ``scores`` and ``predicted`` of ``units`` (all with an input) with one call of the system."""
    scores, decided = model_output(model, [u.value for u in units], speakers, threads, kind)
    for u, row, d in zip(units, scores, decided):
        u.scores, u.predicted = row, int(d)
