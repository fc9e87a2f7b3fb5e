"""The extraction loop: manifest -> missing (utterance, set) pairs -> workers -> cache parts.

Per run: scan the corpus, hash every audio file (SHA-256 of its bytes), ask each
set's cache which utterances it holds at that hash, and extract only the rest.
Each file is decoded once (``serbench.audio.load_audio``) for all the sets it is
missing in. With ``jobs > 1`` chunks of files go to that many local worker processes, and
with an ``executor`` (:mod:`serbench.executors`, e.g. a Dask cluster) to its workers; each
worker builds every extractor (one ``opensmile.Smile`` per set) once and reuses it. Rows come
back to this process, which alone writes the cache. Workers read the audio at the same paths,
so the corpus root must be visible to them; on a Dask worker each file's content hash is
checked against the one this process read, and a missing or different file is an error
naming the path (reported, not cached). Results are committed as Parquet parts every :data:`COMMIT_ROWS` rows or
:data:`COMMIT_SECONDS` seconds, and once more when the run stops for any reason,
so an interrupted run keeps its work and the next run resumes.

Status per row: ``'ok'``; ``'nan'`` when the values hold NaN or inf (too-short
audio) or the audio is digital silence (no sample reaches one 16-bit step: the
sets would describe nothing but zeros, so the values are NaN rather than a silent
zero); ``'failed'`` when the file cannot be decoded (:class:`~serbench.errors.AudioError`)
or an extractor raised. One bad file never stops the run; failures are listed in the report.

Sets whose backend has ``batch_seconds`` (the self-supervised upstreams) extract several files per
call (the extractor's ``batch(signals, sr)``): the files to extract are then ordered by duration
(the manifest's, read from the headers; longest first, ties in manifest order) and cut into chunks
of about ``batch_seconds`` of audio, so a chunk holds files of similar length; its files are
decoded, then handed to ``batch`` together. Should ``batch`` raise, the chunk's files are extracted
one by one, so a bad file fails alone. The other sets still run file by file, and without a batched
set the order and chunks are as before. With a batched set the progress bar counts seconds of audio.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from serbench.audio import TARGET_SR, file_hash, load_audio
from serbench.corpora import get_loader, scan
from serbench.errors import AudioError
from serbench.features.cache import CacheError, FeatureCache, Row
from serbench.features.registry import (
    Extractor,
    FeatureSet,
    FeatureSetError,
    Kind,
    get_feature_set,
    resolve_feature_sets,
)

#: Commit a part when this many rows of a set are buffered ...
COMMIT_ROWS = 256
#: ... or when this many seconds passed since the last commit.
COMMIT_SECONDS = 5.0
#: Below one 16-bit quantization step: what openSMILE (which works on int16) sees as zero.
SILENCE_PEAK = 1.0 / 32768


@dataclass
class Failure:
    """One utterance that could not be extracted for one set (``cached``: failed in an earlier run)."""

    utterance_id: str
    path: str
    reason: str
    cached: bool = False


@dataclass
class SetReport:
    """What one run did for one feature set.

    ``extracted`` and ``cached`` count rows by where they came from (this run or the
    cache); ``nan`` and ``failed`` count rows by status over both, so the summary
    describes the whole corpus, not only this run's share. ``nan_ids`` lists the
    utterances with status 'nan'. ``seconds`` is the extractor time summed over files
    (worker processes included), so with several jobs it adds up to more than the wall time.
    """

    name: str
    key: str
    extracted: int = 0
    cached: int = 0
    nan: int = 0
    nan_ids: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    cache_path: str = ""

    @property
    def n_failed(self) -> int:
        return len(self.failed)


@dataclass
class ExtractReport:
    """Per-set counts of one :func:`extract` run, plus timings of its stages."""

    corpus: str
    root: str
    utterances: int
    sets: dict[str, SetReport]
    jobs: int = 1
    hash_seconds: float = 0.0
    decode_seconds: float = 0.0
    wall_seconds: float = 0.0
    #: Things the user should know that did not stop the run (e.g. a compaction that could not write).
    notes: list[str] = field(default_factory=list)

    def failures(self) -> list[tuple[str, Failure]]:
        return [(name, f) for name, r in self.sets.items() for f in r.failed]

    def to_dict(self) -> dict[str, object]:
        return {
            "corpus": self.corpus, "root": self.root, "utterances": self.utterances, "jobs": self.jobs,
            "hash_seconds": self.hash_seconds, "decode_seconds": self.decode_seconds,
            "wall_seconds": self.wall_seconds, "notes": list(self.notes),
            "sets": {n: {"key": r.key, "extracted": r.extracted, "cached": r.cached, "nan": r.nan,
                         "failed": [f.__dict__ for f in r.failed], "seconds": r.seconds,
                         "cache_path": r.cache_path}
                     for n, r in self.sets.items()},
        }


# ---- worker side ------------------------------------------------------------------------
# (utterance_id, path, content_hash, set names missing for it)
Task = tuple[str, str, str, tuple[str, ...]]
# set name -> (status, detail, values or None, extractor seconds)
Result = dict[str, tuple[str, str, "np.ndarray | None", float]]

_EXTRACTORS: dict[tuple[str, str], Extractor] = {}


def _extractor(fs: FeatureSet) -> Extractor:
    """The process-wide extractor of a set: built once per (worker) process."""
    k = (fs.name, fs.key)
    if k not in _EXTRACTORS:
        _EXTRACTORS[k] = fs.make_extractor()
    return _EXTRACTORS[k]


def _judge(fs: FeatureSet, values: np.ndarray) -> tuple[str, str]:
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad == 0:
        return "ok", ""
    return "nan", f"NaN or inf in {bad} of {values.size} {'features' if fs.kind is Kind.VECTOR else 'values'}"


def _silent(signal) -> bool:
    return signal.signal.size == 0 or float(np.max(np.abs(signal.signal))) < SILENCE_PEAK


_SILENT = ("nan", "audio is digital silence (peak below one 16-bit step); values set to NaN", None, 0.0)


def _finish(fs: FeatureSet, signal, values: np.ndarray, seconds: float) -> tuple[str, str, np.ndarray, float]:
    status, detail = _judge(fs, values)
    # What is odd about the file (truncated, far beyond full scale) stays with its row: the
    # manifest's status_detail of an 'ok' row says it, and the run's notes list it.
    detail = "; ".join([detail, *signal.warnings] if detail else signal.warnings)
    return status, detail, values, seconds


def _apply(fs: FeatureSet, signal) -> tuple[str, str, np.ndarray | None, float]:
    """One set on one decoded file."""
    if _silent(signal):
        return _SILENT
    t1 = time.perf_counter()
    try:
        values = np.asarray(_extractor(fs)(signal.signal, signal.sample_rate))
    except Exception as exc:  # one extractor failing on one file must not stop the run
        # "error", not "failed": a fault of the extractor, not of the file, so it is
        # reported but not cached, and the next run tries again.
        return "error", f"{fs.name} extractor error: {type(exc).__name__}: {exc}", None, time.perf_counter() - t1
    return _finish(fs, signal, values, time.perf_counter() - t1)


def _decode(task: Task):
    """``(Audio or the AudioError's reason, seconds)``."""
    t0 = time.perf_counter()
    try:
        return load_audio(task[1]), time.perf_counter() - t0
    except AudioError as exc:
        return exc.reason, time.perf_counter() - t0


def _process_one(task: Task) -> tuple[str, Result, float]:
    uid, _, _, names = task
    signal, decode = _decode(task)
    if isinstance(signal, str):
        return uid, {n: ("failed", signal, None, 0.0) for n in names}, decode
    return uid, {name: _apply(get_feature_set(name), signal) for name in names}, decode


def _process_tasks(tasks: Sequence[Task]) -> list[tuple[str, Result, float]]:
    """The files of a chunk: each decoded once; sets file by file, batched sets (an extractor with
    ``batch``) on all the chunk's files in one call, in task order."""
    decoded = [_decode(t) for t in tasks]
    results: list[Result] = []
    batched: dict[str, list[int]] = {}
    for i, (task, (signal, _)) in enumerate(zip(tasks, decoded)):
        out: Result = {}
        for name in task[3]:
            if isinstance(signal, str):
                out[name] = ("failed", signal, None, 0.0)
                continue
            fs = get_feature_set(name)
            if callable(getattr(_extractor(fs), "batch", None)) and not _silent(signal):
                batched.setdefault(name, []).append(i)
            else:
                out[name] = _apply(fs, signal)
        results.append(out)
    for name, members in batched.items():
        fs = get_feature_set(name)
        signals = [decoded[i][0] for i in members]
        t1 = time.perf_counter()
        try:
            values = _extractor(fs).batch([a.signal for a in signals], TARGET_SR)
            if len(values) != len(members):
                raise FeatureSetError(f"{name}: batch gave {len(values)} rows for {len(members)} files")
        except Exception:  # which file? each alone: the bad one fails by itself, the others are kept
            for i in members:
                results[i][name] = _apply(fs, decoded[i][0])
            continue
        # The batch's time, shared out by audio length (what the report sums per set).
        spent = time.perf_counter() - t1
        total = sum(a.signal.size for a in signals) or 1
        for i, a, v in zip(members, signals, values):
            results[i][name] = _finish(fs, a, np.asarray(v), spent * a.signal.size / total)
    return [(t[0], r, d) for t, r, (_, d) in zip(tasks, results, decoded)]


#: (set name, key) pairs this worker process has found to be the client's.
_SAME_KEYS: set[tuple[str, str]] = set()


def _key_faults(keys: dict[str, str] | None) -> dict[str, str]:
    """Set name -> why this worker cannot extract it for the client: its key here differs from the client's.

    A set's key names the code and data its values come from (an SSL set's: the weights' SHA-256), so a
    worker that would compute it differently (other weights in its model folder, another library
    version) must not write rows under the client's key.
    """
    faults = {}
    for name, expected in (keys or {}).items():
        if (name, expected) in _SAME_KEYS:
            continue
        try:
            here = get_feature_set(name).key
        except Exception as exc:  # the set cannot even be built here (a missing model folder, ...)
            faults[name] = f"{name} cannot be built on worker {os.uname().nodename}: {' '.join(str(exc).split())}"
            continue
        if here != expected:
            faults[name] = (f"{name} on worker {os.uname().nodename} has cache key {here}, the client's is "
                            f"{expected}: the worker computes it from other inputs (its model folder's weights, "
                            "or another library version); give every worker the same ones")
        else:
            _SAME_KEYS.add((name, expected))
    return faults


def _without(tasks: Sequence[Task], faults: dict[str, str]) -> tuple[list[Task], dict[str, Result]]:
    """The tasks less the sets this worker cannot extract, and those sets' 'error' results by utterance."""
    if not faults:
        return list(tasks), {}
    kept, refused = [], {}
    for uid, path, content, names in tasks:
        refused[uid] = {n: ("error", faults[n], None, 0.0) for n in names if n in faults}
        left = tuple(n for n in names if n not in faults)
        if left:   # a file no set is left for is not decoded
            kept.append((uid, path, content, left))
    return kept, refused


def _merge(tasks: Sequence[Task], done: list[tuple[str, Result, float]],
           refused: dict[str, Result]) -> list[tuple[str, Result, float]]:
    """Every task's results, in task order: what was extracted and what was refused."""
    if not refused:
        return done
    got = {uid: (res, d) for uid, res, d in done}
    return [(t[0], {**got.get(t[0], ({}, 0.0))[0], **refused.get(t[0], {})}, got.get(t[0], ({}, 0.0))[1])
            for t in tasks]


def _process_chunk(_shared: object, tasks: Sequence[Task],
                   keys: dict[str, str] | None = None) -> list[tuple[str, Result, float]]:
    """A chunk on a worker process: the sets whose key there is the client's (``keys``), every file."""
    kept, refused = _without(tasks, _key_faults(keys))
    return _merge(tasks, _process_tasks(kept), refused)


def _process_chunk_checked(_shared: object, tasks: Sequence[Task],
                           keys: dict[str, str] | None = None) -> list[tuple[str, Result, float]]:
    """:func:`_process_chunk` on a worker that may see another disk: each file must be there, unchanged."""
    given = tasks
    tasks, refused = _without(tasks, _key_faults(keys))
    out: list[tuple[str, Result, float] | None] = []
    readable: list[Task] = []
    for task in tasks:
        uid, path, expected, names = task
        if not os.path.isfile(path):
            reason = (f"{path}: not found on worker {os.uname().nodename}; the corpus root must be visible to "
                      "every worker at the same path")
        else:
            try:
                reason = "" if file_hash(path) == expected else (
                    f"{path}: worker {os.uname().nodename} reads a different file at this path (content hash "
                    "differs from the client's); the corpus root must be the same on every worker")
            except OSError as exc:
                reason = f"{path}: unreadable on worker {os.uname().nodename} ({exc.strerror or exc})"
        if reason:  # "error": a fault of the worker's view, not of the file, so it is never cached
            out.append((uid, {n: ("error", reason, None, 0.0) for n in names}, 0.0))
        else:
            out.append(None)
            readable.append(task)
    done = iter(_process_tasks(readable))
    return _merge(given, [r if r is not None else next(done) for r in out], refused)


# ---- main side --------------------------------------------------------------------------
class _Committer:
    """Buffers one set's rows and commits them as parts (by count or age)."""

    def __init__(self, store: FeatureCache) -> None:
        self.store = store
        self.rows: list[Row] = []
        self.last = time.monotonic()

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if len(self.rows) >= COMMIT_ROWS or time.monotonic() - self.last >= COMMIT_SECONDS:
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        self.last = time.monotonic()
        self.store.append(rows)


def _hash_files(paths: Sequence[str], threads: int) -> tuple[dict[str, str], dict[str, str]]:
    """path -> sha256, path -> error for files that vanished or cannot be read."""
    hashes: dict[str, str] = {}
    errors: dict[str, str] = {}

    def one(p: str) -> tuple[str, str | None, str | None]:
        try:
            return p, file_hash(p), None
        except OSError as exc:
            return p, None, f"cannot read file ({exc.strerror or exc})"

    # hashlib releases the GIL on large blocks, so threads overlap the reads.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for p, h, err in pool.map(one, paths):
            if h is not None:
                hashes[p] = h
            else:
                errors[p] = err or p
    return hashes, errors


#: At most this many files in one chunk of a batched set (files whose duration the manifest lacks count 0 s).
CHUNK_FILES = 256


def _batch_seconds(fs: FeatureSet) -> float | None:
    """Seconds of audio per chunk of a set whose extractor takes several files per call (None: file by file)."""
    value = getattr(fs.backend, "batch_seconds", None)
    return float(value) if value else None


def _durations(manifest: pd.DataFrame) -> dict[str, float]:
    """utterance id -> seconds: the manifest's header durations (else the headers'); 0 where unknown."""
    ids = manifest["utterance_id"].astype(str).tolist()
    if "duration" in manifest.columns:
        values = pd.to_numeric(manifest["duration"], errors="coerce").fillna(0.0).tolist()
    else:
        from serbench.audio import audio_info

        values = []
        for p in manifest["path"].astype(str):
            try:
                values.append(audio_info(p).duration)
            except (AudioError, OSError):
                values.append(0.0)
    return {u: float(v) for u, v in zip(ids, values)}


def _chunks(tasks: list[Task], jobs: int, seconds: float | None = None,
            durations: dict[str, float] | None = None) -> list[list[Task]]:
    if seconds is None:
        # Small enough for a lively progress bar and balanced workers, large enough to amortize IPC.
        size = max(1, min(8, math.ceil(len(tasks) / (jobs * 8))))
        return [tasks[i:i + size] for i in range(0, len(tasks), size)]
    # A batched set: consecutive files (ordered by length) up to ``seconds`` of audio, fewer where that
    # would leave workers idle; a file longer than that is a chunk alone.
    durations = durations or {}
    if jobs > 1:
        seconds = min(seconds, max(sum(durations.get(t[0], 0.0) for t in tasks) / (2 * jobs), 1.0))
    out: list[list[Task]] = []
    current: list[Task] = []
    held = 0.0
    for t in tasks:
        d = durations.get(t[0], 0.0)
        if current and (held + d > seconds or len(current) >= CHUNK_FILES):
            out.append(current)
            current, held = [], 0.0
        current.append(t)
        held += d
    if current:
        out.append(current)
    return out


def _run(chunks: list[list[Task]], jobs: int, executor=None, batched: bool = False,
         keys: dict[str, str] | None = None) -> Iterator[list[tuple[str, Result, float]]]:
    """Each chunk's results, on ``executor`` (or ``jobs`` local processes, or in this process); ``keys``: the
    sets' cache keys here, which a worker must compute alike (:func:`_key_faults`)."""
    from serbench.executors import DaskExecutor, InProcess, LocalProcesses

    if executor is None or isinstance(executor, InProcess):
        if jobs <= 1 or len(chunks) <= 1:
            # In-process: hand over every file as it finishes, so an interrupt loses nothing done
            # (with a batched set, every chunk: an interrupt loses the chunk in progress).
            for c in chunks:
                if batched:
                    yield _process_tasks(c)
                    continue
                for t in c:
                    yield [_process_one(t)]
            return
        with LocalProcesses(jobs, threads=1) as local:
            yield from _run(chunks, jobs, local, batched, keys)
        return
    token = executor.share(None)
    # A Dask worker may run on another machine: it checks that it reads the very file hashed here.
    fn = _process_chunk_checked if isinstance(executor, DaskExecutor) else _process_chunk
    # The keys travel with each chunk (a few dozen bytes): Dask would scatter a shared dict item by item.
    futures = [executor.submit(fn, token, c, keys) for c in chunks]
    for fut in executor.as_completed(futures):
        yield fut.result()


def _progress(enabled: bool):
    """The extraction's bar: files done of all, or (a task with ``unit="s"``) seconds of audio and their rate."""
    # rich is imported here, not at module level, so worker processes do not pay for it.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    files = MofNCompleteColumn()

    class Done(ProgressColumn):
        def render(self, task) -> Text:
            if task.fields.get("unit") != "s":
                return files.render(task)
            speed = task.speed
            rate = f", {speed:.2f} s/s" if speed else ""
            return Text(f"{task.completed:.0f}/{task.total:.0f} s of audio{rate}", style="progress.download")

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), Done(), TimeRemainingColumn(),
                    console=console, disable=not (enabled and console.is_terminal), transient=False)


def extract_manifest(
    manifest: pd.DataFrame,
    corpus: str,
    feature_sets: str | Iterable[str | FeatureSet] | None = None,
    *,
    cache: str | Path | None = None,
    jobs: int = 1,
    progress: bool = True,
    retry_failed: bool = False,
    root: str | Path = "",
    executor=None,
) -> tuple[ExtractReport, dict[str, str], dict[str, str]]:
    """Extract what the cache lacks for the utterances of ``manifest``.

    ``jobs`` local worker processes, or an ``executor`` (:mod:`serbench.executors`) for the chunks
    of files; only this process writes the cache.

    Returns the report, ``utterance_id -> content hash`` and ``utterance_id -> error``
    for files that could not even be hashed (not cached: the next run tries again).
    Extractor exceptions (a fault of the code, not the file) are reported but not cached either.
    """
    if jobs < 1:
        raise FeatureSetError(f"jobs (--jobs) must be at least 1, got {jobs}")
    t_start = time.perf_counter()
    sets = resolve_feature_sets(feature_sets)
    corpus = get_loader(corpus).INFO.name if corpus else corpus
    ids = manifest["utterance_id"].astype(str).tolist()
    paths = manifest["path"].astype(str).tolist()
    report = ExtractReport(corpus=corpus, root=str(root), utterances=len(ids), jobs=jobs,
                           sets={fs.name: SetReport(fs.name, fs.key) for fs in sets})

    t0 = time.perf_counter()
    by_path, hash_errors = _hash_files(paths, threads=min(4, 2 * jobs))
    report.hash_seconds = time.perf_counter() - t0
    hashes = {u: by_path[p] for u, p in zip(ids, paths) if p in by_path}
    unreadable = {u: hash_errors[p] for u, p in zip(ids, paths) if p in hash_errors}

    stores = {fs.name: FeatureCache(corpus, fs, cache) for fs in sets}
    path_of = dict(zip(ids, paths))

    def plan() -> list[Task]:
        """What the cache lacks, set by set (the report's cached counts are filled on the way)."""
        missing: dict[str, list[str]] = {u: [] for u in ids}
        for fs in sets:
            rep = report.sets[fs.name] = SetReport(fs.name, fs.key)
            rep.cache_path = str(stores[fs.name].path)
            index = stores[fs.name].index()
            known = index["content_hash"].to_dict()
            status = index["status"].to_dict()
            details = index["status_detail"].to_dict()
            for u, p in zip(ids, paths):
                if u in unreadable:
                    rep.failed.append(Failure(u, p, unreadable[u]))
                elif known.get(u) == hashes[u] and not (retry_failed and status.get(u) == "failed"):
                    rep.cached += 1
                    if status.get(u) == "failed":
                        rep.failed.append(Failure(u, p, str(details.get(u) or ""), cached=True))
                    if status.get(u) == "nan":
                        rep.nan += 1
                        rep.nan_ids.append(u)
                else:
                    missing[u].append(fs.name)
        return [(u, path_of[u], hashes[u], tuple(n)) for u, n in missing.items() if n]

    tasks = plan()
    with contextlib.ExitStack() as locks:
        if tasks:
            # One writer per set: a second extraction waits for the first, then extracts only what the
            # first did not commit (the plan is made again under the locks, taken in name order).
            for name in sorted({n for t in tasks for n in t[3]}):
                locks.enter_context(stores[name].writer_lock())
            tasks = plan()
        _extract_tasks(tasks, stores, report, hashes, path_of, jobs, executor, progress, corpus, sets,
                       durations=_durations(manifest) if any(_batch_seconds(fs) for fs in sets) else None)
    report.wall_seconds = time.perf_counter() - t_start
    return report, hashes, unreadable


def _extract_tasks(tasks: list[Task], stores: dict[str, FeatureCache], report: ExtractReport, hashes: dict[str, str],
                   path_of: dict[str, str], jobs: int, executor, progress: bool, corpus: str,
                   sets: list[FeatureSet], durations: dict[str, float] | None = None) -> None:
    """Run ``tasks``, commit their rows into ``stores`` and compact them (the caller holds the locks)."""
    needed = sorted({n for t in tasks for n in t[3]})
    # A cache that cannot take the results fails now, not after the first batch was computed.
    for name in needed:
        stores[name].check_writable()
    # A set that extracts several files per call: files of similar length go together (longest first).
    chunk_s = max((b for fs in sets if fs.name in needed for b in [_batch_seconds(fs)] if b), default=None)
    durations = durations or {}
    if chunk_s is not None:
        order = {t[0]: i for i, t in enumerate(tasks)}
        tasks = sorted(tasks, key=lambda t: (-durations.get(t[0], 0.0), order[t[0]]))

    committers = {name: _Committer(stores[name]) for name in stores}
    odd: dict[str, str] = {}           # audio read with a warning: path -> what
    label = f"{corpus}: " + ", ".join(fs.name for fs in sets)
    try:
        # Nothing to extract (all cached): no bar at all, rather than an empty "0/0" one.
        with _progress(progress and bool(tasks)) as bar:
            if chunk_s is None:
                bar_task = bar.add_task(label, total=len(tasks))
            else:
                bar_task = bar.add_task(label, total=sum(durations.get(t[0], 0.0) for t in tasks), unit="s")
            workers = getattr(executor, "workers", 1) if executor is not None else jobs
            chunks = _chunks(tasks, max(jobs, workers), chunk_s, durations)
            keys = {fs.name: fs.key for fs in sets if fs.name in needed}
            for results in _run(chunks, jobs, executor, batched=chunk_s is not None, keys=keys):
                for uid, result, decode in results:
                    report.decode_seconds += decode
                    for name, (st, detail, values, seconds) in result.items():
                        rep = report.sets[name]
                        rep.seconds += seconds
                        if st in ("failed", "error"):
                            rep.failed.append(Failure(uid, path_of[uid], detail))
                            if st == "error":
                                continue
                        else:
                            rep.extracted += 1
                            if st == "ok" and detail:
                                odd.setdefault(path_of[uid], detail)
                            if st == "nan":
                                rep.nan += 1
                                rep.nan_ids.append(uid)
                        committers[name].add(Row(uid, hashes[uid], st, detail, path_of[uid], values))
                    bar.advance(bar_task, 1 if chunk_s is None else durations.get(uid, 0.0))
    finally:
        # Commit whatever finished, also on KeyboardInterrupt or a worker crash: it is complete work.
        pending = [c for c in committers.values() if c.rows]
        for c in pending:
            c.flush()
    for path, what in list(odd.items())[:10]:
        report.notes.append(f"{path}: {what}")
    if len(odd) > 10:
        report.notes.append(f"... and {len(odd) - 10} more file(s) read with a warning (see status_detail of "
                            "their rows: `serbench.features.load`)")
    for store in stores.values():
        try:
            store.compact()
        except CacheError as exc:  # the parts are complete without it
            report.notes.append(str(exc))


def extract(
    corpus: str,
    root: str | Path,
    feature_sets: str | Iterable[str | FeatureSet] | None = None,
    *,
    cache: str | Path | None = None,
    jobs: int = 1,
    emotions: Sequence[str] | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    executor=None,
) -> ExtractReport:
    """Extract ``feature_sets`` (default :data:`~serbench.features.registry.DEFAULT_SETS`) for a corpus.

    Only utterances the cache lacks at their current content hash are extracted;
    ``retry_failed`` also retries rows cached as ``'failed'``. Returns an
    :class:`ExtractReport` with per-set counts, failures (file and reason) and timings.
    """
    manifest = scan(corpus, root, emotions=emotions).manifest
    report, _, _ = extract_manifest(manifest, corpus, feature_sets, cache=cache, jobs=jobs, progress=progress,
                                    retry_failed=retry_failed, root=root, executor=executor)
    return report


def _attach_status(manifest: pd.DataFrame, table: pd.DataFrame | None, hashes: dict[str, str],
                   uncached: dict[str, str], fs: FeatureSet) -> pd.DataFrame:
    """Add ``status``/``status_detail``: from the cached row, else from this run's uncached failure."""
    m = manifest.copy()
    ids = m["utterance_id"].astype(str)
    missing = f"{fs.name}: no cached row at the file's current content"
    if table is None:
        cached = pd.DataFrame(index=ids, columns=["content_hash", "status", "status_detail"], dtype=object)
    else:
        cached = table[["content_hash", "status", "status_detail"]].reindex(ids)
    current = ids.map(hashes)
    matches = (cached["content_hash"].to_numpy() == current.to_numpy()) & current.notna().to_numpy()
    # Cannot happen after a complete extraction; say so rather than guess.
    status = np.where(matches, cached["status"].astype(object).to_numpy(), "failed")
    detail = np.where(matches, cached["status_detail"].astype(object).where(cached["status_detail"].notna(), "")
                      .astype(str).to_numpy(), missing)
    failed_now = np.array([uncached.get(u) for u in ids], dtype=object)
    now = np.array([u in uncached for u in ids], dtype=bool)
    status = np.where(now, "failed", status)
    detail = np.where(now, failed_now, detail)
    m["status"] = pd.array(status.astype(str), dtype="string")
    m["status_detail"] = pd.array(detail.astype(str), dtype="string")
    return m


def load(
    corpus: str,
    feature_set: str | FeatureSet,
    *,
    root: str | Path,
    cache: str | Path | None = None,
    jobs: int = 1,
    emotions: Sequence[str] | None = None,
    progress: bool = True,
    executor=None,
    columns: Sequence[str] | None = None,
    dtype: type = np.float64,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of a vector set for a corpus, extracting what is missing.

    Returns ``(X, manifest)``: ``X`` (n_utterances, n_features) of ``dtype`` (float64 by default;
    float32 is what the cache stores, so lossless and half the memory) indexed by ``utterance_id``
    in manifest order; rows whose status is not ``'ok'`` are all NaN. ``columns``: only these
    feature columns, in this order (e.g. one layer of a self-supervised set:
    :func:`serbench.features.ssl.layer_columns`); Parquet then reads only those. ``manifest``
    gains ``status`` ('ok' | 'nan' | 'failed') and ``status_detail``.
    """
    fs = get_feature_set(feature_set)
    if fs.kind is not Kind.VECTOR:
        raise FeatureSetError(f"{fs.name} is an array set (per-utterance arrays); use load_arrays(corpus, "
                              f"{fs.name!r}, ...)")
    manifest, hashes, uncached, store = _extract_for(corpus, root, fs, cache=cache, jobs=jobs, emotions=emotions,
                                                     progress=progress, executor=executor)
    ids = manifest["utterance_id"].astype(str).tolist()
    read = store.read_matrix(ids, columns, dtype)
    if read is None:
        # Nothing cached: the stored parts would name the columns; without them the set does (no need,
        # where there are parts, to build an extractor such as openSMILE's just to learn the names).
        cols = list(columns) if columns is not None else store.feature_columns
        values, index = np.full((len(ids), len(cols)), np.nan, dtype=dtype), None
    else:
        values, cols, index = read
    m = _attach_status(manifest, index, hashes, uncached, fs)
    values[(m["status"] != "ok").to_numpy()] = np.nan
    # One block of one dtype: the frame wraps the array, it does not copy it.
    X = pd.DataFrame(values, index=pd.Index(ids, name="utterance_id"), columns=cols, copy=False)
    return X, m


def _extract_for(corpus: str, root, fs: FeatureSet, *, cache, jobs: int, emotions, progress: bool, executor=None):
    """Extract what the cache lacks for ``corpus`` (shared by load and load_arrays).

    Returns ``(manifest, hashes, uncached failures by utterance id, FeatureCache)``.
    """
    manifest = scan(corpus, root, emotions=emotions).manifest
    report, hashes, _ = extract_manifest(manifest, corpus, [fs], cache=cache, jobs=jobs,
                                         progress=progress, root=root, executor=executor)
    uncached = {f.utterance_id: f.reason for f in report.sets[fs.name].failed if not f.cached}
    store = FeatureCache(get_loader(corpus).INFO.name, fs, cache)
    return manifest, hashes, uncached, store


def load_arrays(
    corpus: str,
    feature_set: str | FeatureSet = "melseg",
    *,
    root: str | Path,
    cache: str | Path | None = None,
    jobs: int = 1,
    emotions: Sequence[str] | None = None,
    progress: bool = True,
    executor=None,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Per-utterance arrays of an array set (``melseg``: float32 (3, 60, T)), extracting what is missing.

    Returns ``(arrays, manifest)``: ``arrays`` maps utterance id -> array for rows
    with status ``'ok'`` only, in manifest order; ``manifest`` gains ``status`` and
    ``status_detail`` saying why the others are absent.
    """
    fs = get_feature_set(feature_set)
    if fs.kind is not Kind.ARRAY:
        raise FeatureSetError(f"{fs.name} is a vector set; use load(corpus, {fs.name!r}, ...)")
    manifest, hashes, uncached, store = _extract_for(corpus, root, fs, cache=cache, jobs=jobs, emotions=emotions,
                                                     progress=progress, executor=executor)
    table = store.read()
    index_df = None if table is None else table.select(
        ["utterance_id", "content_hash", "status", "status_detail"]).to_pandas().set_index("utterance_id")
    m = _attach_status(manifest, index_df, hashes, uncached, fs)
    arrays: dict[str, np.ndarray] = {}
    if table is not None:
        pos = {u: i for i, u in enumerate(table.column("utterance_id").to_pylist())}
        shapes = table.column("shape")
        values = table.column("values")
        for u, st in zip(m["utterance_id"].astype(str), m["status"]):
            if st != "ok":
                continue
            i = pos[u]
            shape = tuple(shapes[i].as_py())
            arrays[u] = values[i].values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(shape)
    return arrays, m
