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

from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from serbench.audio import TARGET_SR
# Re-exported: the checks made before heavy imports, and what the modules below hold.
from serbench.bundles.extraction import FeatureSpec, extracted_units, make_extractor  # noqa: F401
from serbench.bundles.options import (  # noqa: F401
    AUDIO_SUFFIXES, FORMATS, MIN_HOP_S, MIN_WINDOW_S, OUTPUT_SUFFIXES, PredictError, check_output, check_window,
    output_format,
)
from serbench.bundles.output import TableWriter, write_table  # noqa: F401
from serbench.bundles.sources import (  # noqa: F401
    BYTES_PER_S, MAX_WINDOWS, MEMORY_BUDGET, Source, bandwidth_warning, check_sources, collect, high_band_share,
    window_count, windows,
)
from serbench.bundles.speaker_norm import (  # noqa: F401
    MIN_SPEAKER_INPUTS, SPEAKER_NORM_HELP, enough_per_speaker, speakers_of, batch_check,
)
from serbench.bundles.units import Unit, score_units  # noqa: F401

if TYPE_CHECKING:
    # pandas is imported where a table is made: prediction with an SVM bundle needs no more than numpy.
    import pandas as pd

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports this module).
Model = Any

SUMMARY = ("mean of the window probabilities; emotion = their arg-max; share_<label> = share of the windows "
           "whose emotion is <label>")
#: What a ``score_`` column holds when raw SVM decision values are asked for.
DECISION_NOTE = "SVM one-vs-rest decision values (larger = more likely; not probabilities)"
SCORE_CHOICES = ("probability", "decision")
#: The progress bar shows from this many inputs on (fewer finish before a bar says anything).
PROGRESS_MIN_INPUTS = 3



def _scored_units(model: Model, sources: list[Source], speakers: list[str], window: float | None,
                  hop: float | None, threads: int | None, batch: int, tick: Callable[[], None], kind: str,
                  notes: list[str], executor: Any = None) -> Iterator[list[Unit]]:
    """Every unit of every source, in order, scored in batches (all at once with per-speaker normalization),
    yielded batch by batch; windowed files' summaries are filled in."""
    pending: list[Unit] = []

    def flush() -> list[Unit]:
        todo = [u for u in pending if u.status == "ok" and u.segment != "summary"]
        if model.speaker_norm:
            todo = enough_per_speaker(pending, speakers)
        if todo:
            spk = [speakers[u.source] for u in todo]
            score_units(model, todo, spk, threads, kind)
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
    for _i, units in extracted_units(model, sources, window, hop, executor, tick):
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
        self.speakers = speakers_of(self.sources, model, window)
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




__all__ = ["predict", "collect", "batch_check", "bandwidth_warning", "high_band_share", "scores_note",
           "MIN_SPEAKER_INPUTS", "SCORE_CHOICES", "windows", "window_count", "check_window", "check_sources", "check_output",
           "write_table", "TableWriter", "Prediction", "FeatureSpec", "make_extractor", "output_format", "PredictError", "OUTPUT_SUFFIXES", "MIN_WINDOW_S", "MIN_HOP_S", "MAX_WINDOWS",
           "MEMORY_BUDGET", "BYTES_PER_S",
           "AUDIO_SUFFIXES", "FORMATS", "SUMMARY", "SPEAKER_NORM_HELP"]
