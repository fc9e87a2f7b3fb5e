"""The feature cache: append-only Parquet part files, one folder per corpus and feature set.

Layout::

    <cache root>/<corpus>/<set name>-<key>/meta.json
    <cache root>/<corpus>/<set name>-<key>/part-<time ns>-<pid>-<n>.parquet

Each part is written atomically (temp file + rename) by :meth:`FeatureCache.append`,
so a killed extraction keeps every part it committed and the next run resumes. A
reader merges the parts and keeps the newest row per ``utterance_id`` (newest by
the writer's timestamp in the part name). :meth:`FeatureCache.compact` rewrites
many parts into one, atomically, then deletes exactly the parts it merged, so a
part committed meanwhile by another process is never lost.

Columns: ``utterance_id, content_hash`` (SHA-256 of the audio file's bytes),
``status`` (``'ok' | 'nan' | 'failed'``), ``status_detail``, ``path`` (the audio
file when extracted; for ``cache verify``), then

* vector sets: one float32 column per feature (openSMILE computes in float32, so
  this is lossless for it; for the other sets float32 keeps ~7 significant digits,
  far finer than the features' variation);
* array sets: ``shape`` (list<int32>), ``n_frames`` (the last axis) and ``values``
  (the C-order flattened array, large_list<float32>); float32, not float16, because
  delta channels of log-mel are small differences that float16 would round coarsely.

Parts are written with Parquet page checksums (CRC-32 per data page) and every read
verifies them, so a flipped bit in stored values is an error naming the part, never a
silently different feature. A folder is a cache set only when its own ``meta.json``
names it (set, key and corpus): ``cache info | verify | clear`` leave anything else alone.
Reading never writes: a complete cache on a read-only disk is simply read, and
compaction, an optimization, is skipped (with a note) when it cannot write.

Rows with status ``'failed'`` are cached with the file's content hash: an unchanged
broken file is not re-tried on every run, a fixed (changed) file is re-extracted
automatically, and ``extract(..., retry_failed=True)`` retries them on demand.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serbench.errors import SerbenchError
from serbench.features.registry import FeatureSet, Kind
from serbench.io import OutsideError, atomic_write, atomic_write_text, ensure_inside, rmtree_inside
from serbench.settings import cache_root

KEY_COLUMNS: tuple[str, ...] = ("utterance_id", "content_hash", "status", "status_detail", "path")
ARRAY_COLUMNS: tuple[str, ...] = ("shape", "n_frames", "values")
STATUSES: tuple[str, ...] = ("ok", "nan", "failed")
META = "meta.json"
#: The writer's lock file in a set's folder (holds the pid of the process extracting into it).
LOCK = ".lock"
#: Compact (at the end of an extraction) when a folder holds more parts than this: a
#: warm run then reads one file per set, and rewriting is cheap next to extracting.
COMPACT_PARTS = 1
#: :meth:`FeatureCache.read_matrix` reads this many columns at a time.
MATRIX_BLOCK = 2048
_PART = re.compile(r"^part-(\d+)-(\d+)-(\d+)(-c)?\.parquet$")
# Per process, with the pid in the name: two writers never pick the same part name.
_PART_COUNTER = itertools.count(1)
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_SET_FOLDER = re.compile(r"^(?P<name>.+)-(?P<key>[0-9a-f]{12})$")


class CacheError(SerbenchError):
    """The feature cache cannot be written or read (full disk, corrupt part, foreign folder)."""


@dataclass(frozen=True)
class Row:
    """One utterance's result for one feature set, as the extraction loop produces it."""

    utterance_id: str
    content_hash: str
    status: str
    status_detail: str
    path: str
    values: np.ndarray | None  # vector (D,) or array (any shape); None when failed


def _part_sort_key(path: Path) -> tuple[int, int, int, int]:
    m = _PART.match(path.name)
    assert m is not None
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), 1 if m.group(4) else 0


class FeatureCache:
    """One cache folder: the rows of one feature set (at its key) for one corpus."""

    def __init__(self, corpus: str, feature_set: FeatureSet, cache: str | Path | None = None) -> None:
        from serbench.corpora import check_corpus_name

        self.corpus = check_corpus_name(corpus)  # it names a folder: never a path
        self.feature_set = feature_set
        self.root = cache_root(cache)
        self.path = self.root / corpus / f"{feature_set.name}-{feature_set.key}"
        self._names: list[str] | None = None

    # ---- schema -------------------------------------------------------------------
    @property
    def feature_columns(self) -> list[str]:
        if self._names is None:
            self._names = self.feature_set.feature_names()
            clash = set(self._names) & set(KEY_COLUMNS)
            if clash or len(set(self._names)) != len(self._names):
                raise CacheError(f"feature set {self.feature_set.name} has clashing column names {sorted(clash)}")
        return self._names

    def schema(self) -> pa.Schema:
        fields = [pa.field(c, pa.string()) for c in KEY_COLUMNS]
        if self.feature_set.kind is Kind.VECTOR:
            fields += [pa.field(c, pa.float32()) for c in self.feature_columns]
        else:
            fields += [pa.field("shape", pa.list_(pa.int32())), pa.field("n_frames", pa.int32()),
                       pa.field("values", pa.large_list(pa.float32()))]
        return pa.schema(fields)

    def meta(self) -> dict[str, object]:
        d = self.feature_set.describe()
        d["corpus"] = self.corpus
        d["columns"] = list(KEY_COLUMNS) + (self.feature_columns if self.feature_set.kind is Kind.VECTOR
                                            else list(ARRAY_COLUMNS))
        d["storage"] = "float32"
        return d

    # ---- parts ----------------------------------------------------------------------
    def parts(self) -> list[Path]:
        """Committed part files, oldest first."""
        if not self.path.is_dir():
            return []
        return sorted((p for p in self.path.iterdir() if _PART.match(p.name)), key=_part_sort_key)

    def _table(self, rows: Sequence[Row]) -> pa.Table:
        cols: dict[str, object] = {c: [getattr(r, c) for r in rows] for c in KEY_COLUMNS}
        if self.feature_set.kind is Kind.VECTOR:
            width = len(self.feature_columns)
            mat = np.full((len(rows), width), np.nan, dtype=np.float32)
            for i, r in enumerate(rows):
                if r.values is not None:
                    v = np.asarray(r.values).reshape(-1)
                    if v.size != width:
                        raise CacheError(f"{self.feature_set.name}: {r.utterance_id} gave {v.size} values, "
                                         f"expected {width}")
                    mat[i] = v
            arrays = [pa.array(cols[c], pa.string()) for c in KEY_COLUMNS]
            arrays += [pa.array(mat[:, j]) for j in range(width)]
            return pa.Table.from_arrays(arrays, schema=self.schema())
        shapes, frames, values = [], [], []
        for r in rows:
            if r.values is None:
                shapes.append(None), frames.append(None), values.append(None)
            else:
                a = np.asarray(r.values, dtype=np.float32)
                shapes.append(list(a.shape)), frames.append(int(a.shape[-1]) if a.ndim else 1)
                values.append(a.reshape(-1))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)  # large_list: a corpus can exceed 2**31 values
        offsets[1:] = np.cumsum([0 if v is None else v.size for v in values])
        flat = np.concatenate([v for v in values if v is not None]) if any(v is not None for v in values) \
            else np.zeros(0, np.float32)
        mask = pa.array([v is None for v in values])
        values_arr = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()), mask=mask)
        arrays = [pa.array(cols[c], pa.string()) for c in KEY_COLUMNS]
        arrays += [pa.array(shapes, pa.list_(pa.int32())), pa.array(frames, pa.int32()), values_arr]
        return pa.Table.from_arrays(arrays, schema=self.schema())

    def append(self, rows: Sequence[Row]) -> Path | None:
        """Commit ``rows`` as one new part file (atomic). Raises :class:`CacheError` when the disk is full."""
        if not rows:
            return None
        table = self._table(rows)
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{next(_PART_COUNTER):06d}.parquet"
        self._write(self.path / name, table)
        return self.path / name

    def check_meta(self) -> dict | None:
        """This folder's ``meta.json`` (None when the folder has neither it nor parts).

        Raises :class:`CacheError` naming ``meta.json`` when it is there but does not describe
        this set (garbage, another set's), or when it is missing beside part files: the reader,
        the writer and ``cache verify`` then agree that the folder is damaged.
        """
        meta_path = self.path / META
        if not meta_path.is_file() and not meta_path.is_symlink():
            n = len(self.parts())
            if n:
                raise CacheError(f"{meta_path}: missing, though the folder holds {n} cache part(s); delete "
                                 f"{self.path} to re-extract this set")
            return None
        problem = meta_problem(self.path)
        if problem:
            raise CacheError(f"{meta_path}: {problem}; delete {self.path} to re-extract this set")
        return folder_meta(self.path)

    def _write(self, target: Path, table: pa.Table) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if (self.path / META).is_file():
                self.check_meta()
            else:
                atomic_write_text(self.path / META, json.dumps(self.meta(), indent=1, sort_keys=True) + "\n",
                                  inside=self.root)
            with atomic_write(target, "wb", inside=self.root) as f:
                # Dictionary encoding only for the key columns: for float values it finds no repeats,
                # makes files larger and, for one long utterance's array, needs gigabytes to try.
                pq.write_table(table, f, compression="zstd", write_statistics=False, write_page_checksum=True,
                               use_dictionary=list(KEY_COLUMNS))
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise CacheError(
                    f"no space left in the feature cache folder {self.path} (writing {target.name}); "
                    "rows committed before are kept. Free space or point --cache / SERBENCH_CACHE "
                    "at a disk with room, then run again to resume"
                ) from exc
            if exc.errno in _DENIED_ERRNOS:
                raise self._not_writable(exc) from exc
            raise

    def _not_writable(self, exc: OSError) -> CacheError:
        return CacheError(f"the feature cache folder {self.path} is not writable ({exc.strerror or exc}); "
                          "make it writable or point --cache / SERBENCH_CACHE at a writable folder")

    def check_writable(self) -> None:
        """Raise :class:`CacheError` unless parts can be committed here (tried by creating a temp file).

        Called before extracting, so that a read-only cache fails at once, not after the first
        batch of extracted rows has nowhere to go.
        """
        import tempfile

        ensure_inside(self.path, self.root)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", suffix=".tmp", dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise CacheError(f"no space left in the feature cache folder {self.path}; free space or point "
                                 "--cache / SERBENCH_CACHE at a disk with room") from exc
            raise self._not_writable(exc) from exc

    @contextlib.contextmanager
    def writer_lock(self, say: Callable[[str], None] | None = None) -> Iterator[bool]:
        """Hold the one-writer lock of this set (``fcntl.flock`` on ``<folder>/.lock``) while extracting.

        A second process waits here for the first, after ``say("waiting for pid N extracting into
        DIR")``, then reads what the first one committed instead of extracting it again. Yields
        whether it had to wait. The lock goes with the process (a killed writer releases it).
        Where the lock file cannot be created (a read-only cache) nothing can be written either:
        it yields at once and :meth:`check_writable` says why.
        """
        import fcntl

        lock = self.path / LOCK
        ensure_inside(lock, self.root)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno in _DENIED_ERRNOS or exc.errno in _FULL_ERRNOS:
                yield False
                return
            raise
        waited = False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                (say or _warn)(f"waiting for pid {holder} extracting into {self.path}")
                fcntl.flock(fd, fcntl.LOCK_EX)
                waited = True
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield waited
        finally:
            os.close(fd)            # releases the lock

    def writable(self) -> bool:
        """Whether this process may write into the folder (no write is attempted)."""
        return os.access(self.path, os.W_OK | os.X_OK)

    # ---- reading --------------------------------------------------------------------
    def _read_parts(self, columns: Sequence[str] | None) -> tuple[pa.Table | None, list[Path]]:
        # A concurrent compaction may delete a part between listing and reading: list again.
        for _ in range(5):
            parts = self.parts()
            if not parts:
                return None, []
            meta = self.check_meta() or {}
            tables = []
            try:
                for p in parts:
                    self._check_part_schema(p, meta)
                    tables.append(read_part(p, columns))
            except FileNotFoundError:
                continue
            except (pa.ArrowException, OSError) as exc:
                raise CacheError(f"cannot read cache part {p}: {_one_line(exc)}; run `serbench cache verify` "
                                 f"or delete {self.path} to re-extract") from exc
            try:
                return pa.concat_tables(tables), parts
            except pa.ArrowInvalid as exc:
                raise CacheError(f"cache parts in {self.path} disagree on their columns ({_one_line(exc)}); "
                                 "delete the folder to re-extract") from exc
        raise CacheError(f"{self.path}: parts kept disappearing while reading; is another process clearing it?")

    @staticmethod
    def _check_part_schema(part: Path, meta: dict, schema: pa.Schema | None = None) -> None:
        """Raise :class:`CacheError` in one line when ``part`` is not a part of the set ``meta.json``
        describes (a foreign Parquet file dropped in the folder), before its columns are read."""
        columns = meta.get("columns")
        if not isinstance(columns, list):
            return
        schema = schema if schema is not None else pq.read_schema(part)
        names = list(schema.names)
        expected = _expected_types(meta)
        if names != columns:
            missing = [c for c in columns if c not in names]
            extra = [c for c in names if c not in columns]
            what = (f"{len(names)} columns where meta.json lists {len(columns)}"
                    + (f"; lacks {_few(missing)}" if missing else "") + (f"; has {_few(extra)}" if extra else ""))
        elif expected is not None and list(schema.types) != expected:
            wrong = [n for n, t, want in zip(names, schema.types, expected) if t != want]
            what = f"column types differ from what the cache writes ({_few(wrong)})"
        else:
            return
        raise CacheError(_cap(f"{part}: not a part of this cache set ({what}); delete it, or the folder, to "
                              "re-extract", 400))

    @staticmethod
    def _newest(table: pa.Table) -> pa.Table:
        ids = table.column("utterance_id").to_numpy(zero_copy_only=False)
        # Last occurrence of each id = the newest row (parts are concatenated oldest first).
        _, first_in_reversed = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - first_in_reversed)
        return table.take(pa.array(keep)) if len(keep) != len(ids) else table

    def read(self, columns: Sequence[str] | None = None) -> pa.Table | None:
        """All rows (newest per utterance id) with ``columns`` (default all); None when empty."""
        if columns is not None and "utterance_id" not in columns:
            columns = ["utterance_id", *columns]
        table, _ = self._read_parts(columns)
        return None if table is None else self._newest(table)

    def read_matrix(self, ids: Sequence[str], columns: Sequence[str] | None = None, dtype: type = np.float32,
                    block: int = MATRIX_BLOCK) -> tuple[np.ndarray, list[str], pd.DataFrame] | None:
        """``(values, columns, keys)``: a vector set's values of ``ids`` as one ``(len(ids), len(columns))`` array.

        ``columns``: feature columns to read (default every one), in the order given; ``dtype``: the
        array's (float32 is what is stored, so lossless; float64 for consumers that need it). Rows
        are the newest per id; an id without a row gives a row of NaN. ``keys``:
        ``content_hash, status, status_detail`` indexed by utterance id (as :meth:`index`), from the
        same parts. Parquet reads only the columns asked for, ``block`` columns at a time into the
        array, and one part's footer at a time (with 51,200 columns a parsed footer takes some 150 MB),
        so memory holds the array, one block and one footer, never the whole table. None when the
        folder holds no part.
        """
        if self.feature_set.kind is not Kind.VECTOR:
            raise CacheError(f"{self.feature_set.name} is an array set; read_matrix reads vector sets")
        for _ in range(5):
            parts = self.parts()
            if not parts:
                return None
            meta = self.check_meta() or {}
            with contextlib.ExitStack() as stack:
                try:
                    # Open now, read below: a part a compaction deletes meanwhile is still read whole.
                    sources = [stack.enter_context(pa.OSFile(str(p), "r")) for p in parts]
                except FileNotFoundError:
                    continue           # a concurrent compaction removed a part: list again
                except OSError as exc:
                    raise CacheError(f"cannot read the cache parts in {self.path} ({exc.strerror or exc}); run "
                                     f"`serbench cache verify` or delete the folder to re-extract") from exc
                return self._matrix(parts, sources, meta, list(ids), columns, dtype, block)
        raise CacheError(f"{self.path}: parts kept disappearing while reading; is another process clearing it?")

    def _matrix(self, parts: list[Path], sources: list, meta: dict, ids: list[str], columns: Sequence[str] | None,
                dtype: type, block: int) -> tuple[np.ndarray, list[str], pd.DataFrame]:
        def parsed(i: int):
            try:
                f = pq.ParquetFile(sources[i], page_checksum_verification=True)
                self._check_part_schema(parts[i], meta, f.schema_arrow)
                return f
            except (pa.ArrowException, OSError) as exc:
                raise CacheError(f"cannot read cache part {parts[i]}: {_one_line(exc)}; run `serbench cache "
                                 f"verify` or delete {self.path} to re-extract") from exc

        def read(f, i: int, cols: list[str]) -> pa.Table:
            try:
                return f.read(columns=cols)
            except (pa.ArrowException, OSError) as exc:
                raise CacheError(f"cannot read cache part {parts[i]}: {_one_line(exc)}; run `serbench cache "
                                 f"verify` or delete {self.path} to re-extract") from exc

        # Pass 1, the key columns: where (part, row) the newest row of each id is (parts are oldest first).
        keys, names = [], []
        for i in range(len(parts)):
            f = parsed(i)
            names = [c for c in f.schema_arrow.names if c not in KEY_COLUMNS]
            keys.append(read(f, i, ["utterance_id", "content_hash", "status", "status_detail"]))
            del f
        if columns is None:
            columns = names
        else:
            columns = list(columns)
            unknown = sorted(set(columns) - set(names))
            if unknown:
                raise CacheError(_cap(f"{self.path}: no column {_few(unknown)} in this cache set (its columns: "
                                      f"{_few(names)}, {len(names)} in all)", 300))
        newest: dict[str, tuple[int, int]] = {}
        for i, t in enumerate(keys):
            for r, u in enumerate(t.column("utterance_id").to_pylist()):
                newest[u] = (i, r)
        # Pass 2, the values: each part that holds a wanted row, ``block`` columns at a time.
        out = np.full((len(ids), len(columns)), np.nan, dtype=dtype)
        wanted = [(k, newest[u]) for k, u in enumerate(ids) if u in newest]
        for i in sorted({part for _, (part, _) in wanted}):
            at = np.array([k for k, (part, _) in wanted if part == i], dtype=np.int64)
            take = np.array([r for _, (part, r) in wanted if part == i], dtype=np.int64)
            f = parsed(i)
            for start in range(0, len(columns), block):
                cols = columns[start:start + block]
                t = read(f, i, cols)
                values = np.stack([t.column(c).to_numpy() for c in cols])      # (block, part rows) float32
                del t
                out[at, start:start + len(cols)] = values[:, take].T
                del values
            del f
        newest_rows = sorted(newest.values())
        index = pa.concat_tables([keys[i].take(pa.array([r for part, r in newest_rows if part == i], pa.int64()))
                                  for i in range(len(keys))]).to_pandas().set_index("utterance_id")
        return out, columns, index

    def index(self) -> pd.DataFrame:
        """``content_hash, status, status_detail`` indexed by utterance id (newest rows; empty if none)."""
        table = self.read(["content_hash", "status", "status_detail"])
        if table is None:
            return pd.DataFrame(columns=["content_hash", "status", "status_detail"],
                                index=pd.Index([], name="utterance_id", dtype=object))
        return table.to_pandas().set_index("utterance_id")

    def compact(self, min_parts: int | None = None) -> bool:
        """Merge the parts into one when there are more than ``min_parts``; True if it did.

        Compaction only speeds up reading, so it never stands in the way: on a folder this
        process cannot write it does nothing, and when writing the merged part fails (a full
        disk) the parts stay as they are, still complete, and :class:`CacheError` says so.
        """
        min_parts = COMPACT_PARTS if min_parts is None else min_parts
        if len(self.parts()) <= min_parts or not self.writable():
            return False
        table, parts = self._read_parts(None)
        if table is None or len(parts) <= min_parts:
            return False
        merged = self._newest(table)
        newest = _PART.match(parts[-1].name)
        assert newest is not None
        # Named after the newest merged part so it sorts before any part committed meanwhile.
        target = self.path / f"part-{newest.group(1)}-{newest.group(2)}-{newest.group(3)}-c.parquet"
        try:
            self._write(target, merged)
        except (CacheError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else _one_line(exc)
            raise CacheError(f"could not compact {len(parts)} parts in {self.path} ({reason}); they are "
                             "kept and read as they are, the next extraction tries again") from exc
        for p in parts:
            if p != target:
                p.unlink(missing_ok=True)
        self._remove_stale_temps()
        return True

    def _remove_stale_temps(self, older_than_s: float = 3600.0) -> None:
        # A killed writer leaves its temp file; one this old belongs to no live write.
        now = time.time()
        for p in self.path.glob(".part-*.tmp"):
            try:
                if now - p.stat().st_mtime > older_than_s:
                    p.unlink()
            except FileNotFoundError:
                pass


def _warn(message: str) -> None:
    import logging

    logging.getLogger(__name__).warning(message)


def read_part(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One part file, its page checksums verified (parts written before checksums have none to check)."""
    return pq.read_table(path, columns=list(columns) if columns else None, page_checksum_verification=True)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """The exception's text on one line, at most ``limit`` characters (pyarrow's can dump a whole schema)."""
    text = " ".join(str(exc).split())
    return _cap(text or type(exc).__name__, limit)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _few(names: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(repr(c) for c in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


# ---- whole-cache views (cache info / verify / clear) -----------------------------------
@dataclass(frozen=True)
class CacheFolder:
    """One ``<corpus>/<set>-<key>`` folder under a cache root whose ``meta.json`` describes it."""

    corpus: str
    name: str
    key: str
    path: Path

    @property
    def current(self) -> bool | None:
        """Whether this folder holds the registered set at today's key: True, False (stale: another key, or a set
        this version does not have), or None when today's key cannot be computed here (a self-supervised set whose
        weights are not on this machine): unknown, never taken for stale."""
        from serbench.features.registry import FeatureSetError, get_feature_set

        try:
            fs = get_feature_set(self.name)
        except FeatureSetError:
            return False
        try:
            return fs.key == self.key
        except (FeatureSetError, ImportError, OSError):
            return None


def folder_meta(path: Path) -> dict | None:
    """The ``meta.json`` of ``<root>/<corpus>/<set>-<key>`` when it names that set, key and corpus, else None.

    This is what makes a folder a cache set: a name that merely looks like one is not enough.
    """
    if meta_problem(path) is not None:
        return None
    return json.loads((path / META).read_text(encoding="utf-8"))


def meta_problem(path: Path) -> str | None:
    """Why the ``meta.json`` of the folder ``path`` does not make it a cache set (None: it does)."""
    m = _SET_FOLDER.match(path.name)
    if m is None:
        return "the folder is not named <set>-<key>"
    try:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
    except OSError as exc:
        return f"unreadable ({exc.strerror or type(exc).__name__})"
    except ValueError as exc:
        return f"not JSON ({_one_line(exc, 80)})"
    if not isinstance(meta, dict):
        return f"not a JSON object but a {type(meta).__name__}"
    for field_, want in (("name", m["name"]), ("key", m["key"]), ("corpus", path.parent.name)):
        if meta.get(field_) != want:
            return _cap(f"its {field_} is {meta.get(field_)!r}, the folder's is {want!r}", 160)
    if not isinstance(meta.get("columns"), list):
        return "it lists no columns"
    return None


def _set_folders(cache: str | Path | None, corpus: str | None, feature_sets: Iterable[str] | None
                 ) -> Iterable[tuple[Path, Path, re.Match]]:
    """``(corpus folder, set folder, name match)`` of every folder named like a set under the root."""
    root = cache_root(cache)
    wanted = {n.strip().lower() for n in feature_sets} if feature_sets else None
    if corpus:
        from serbench.corpora import check_corpus_name

        corpus = check_corpus_name(corpus)
    if not root.is_dir():
        return
    for cdir in sorted(p for p in root.iterdir() if p.is_dir()):
        if corpus and cdir.name != corpus:
            continue
        for sdir in sorted(p for p in cdir.iterdir() if p.is_dir()):
            m = _SET_FOLDER.match(sdir.name)
            if m is None or (wanted is not None and m["name"].lower() not in wanted):
                continue
            yield cdir, sdir, m


def list_folders(cache: str | Path | None = None, corpus: str | None = None,
                 feature_sets: Iterable[str] | None = None) -> list[CacheFolder]:
    """Cache sets under the root, optionally for one corpus and some set names (case-insensitive).

    Only folders whose own ``meta.json`` describes them (:func:`folder_meta`) are listed.
    """
    return [CacheFolder(cdir.name, m["name"], m["key"], sdir)
            for cdir, sdir, m in _set_folders(cache, corpus, feature_sets) if folder_meta(sdir) is not None]


def unrecognized_folders(cache: str | Path | None = None, corpus: str | None = None,
                         feature_sets: Iterable[str] | None = None) -> list[Path]:
    """Folders named like a cache set whose ``meta.json`` is missing or does not describe them (left alone)."""
    return [sdir for _, sdir, _ in _set_folders(cache, corpus, feature_sets) if folder_meta(sdir) is None]


def damaged_folders(cache: str | Path | None = None, corpus: str | None = None,
                    feature_sets: Iterable[str] | None = None) -> list[tuple[Path, str]]:
    """``(folder, one line)`` for each folder named like a cache set that holds cache parts (which ``extract`` would
    read, and refuses) but whose ``meta.json`` is missing or does not describe it: ``cache verify``
    reports these as problems, where a folder without parts is merely not a cache set."""
    out = []
    for _, sdir, _ in _set_folders(cache, corpus, feature_sets):
        problem = meta_problem(sdir)
        if problem is None:
            continue
        n = sum(1 for p in sdir.iterdir() if _PART.match(p.name))
        if n:
            if not (sdir / META).exists():
                problem = "missing"
            out.append((sdir, f"{sdir / META}: {problem}, though the folder holds {n} cache part(s); delete "
                              f"{sdir} to re-extract this set"))
    return out


def folder_info(folder: CacheFolder) -> dict[str, object]:
    """Rows per status, part count and bytes on disk of one folder (reads only key columns).

    An unreadable part does not raise: ``error`` names it and the row counts are None.
    """
    parts = sorted((p for p in folder.path.iterdir() if _PART.match(p.name)), key=_part_sort_key)
    size = sum(p.stat().st_size for p in folder.path.iterdir() if p.is_file())
    counts: dict[str, int | None] = {s: 0 for s in STATUSES}
    rows: int | None = 0
    error = None
    if parts:
        tables = []
        for p in parts:
            try:
                tables.append(read_part(p, ["utterance_id", "status"]))
            except Exception as exc:  # pyarrow raises several types for damaged files
                error = f"{p}: unreadable part ({_one_line(exc)}); `serbench cache verify` checks the folder"
                break
        if error is None:
            table = FeatureCache._newest(pa.concat_tables(tables))
            rows = table.num_rows
            for s, n in pd.Series(table.column("status").to_numpy(zero_copy_only=False)).value_counts().items():
                counts[str(s)] = int(n)
        else:
            rows, counts = None, {s: None for s in STATUSES}
    return {"corpus": folder.corpus, "set": folder.name, "key": folder.key, "current": folder.current,
            "rows": rows, **counts, "parts": len(parts), "bytes": size, "path": str(folder.path), "error": error}


def verify_folder(folder: CacheFolder, rehash: bool = False) -> list[str]:
    """Problems found in one folder (empty when sound).

    Checks: ``meta.json`` readable and naming this folder's set and key, every part
    readable with the columns meta lists, no utterance id twice within a part,
    statuses valid; with ``rehash``, that each ok row's audio file still exists and
    still has the cached content hash.
    """
    from serbench.audio import file_hash

    problems: list[str] = []
    meta_path = folder.path / META
    meta: dict = {}
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{meta_path}: unreadable meta.json ({exc})")
    if meta:
        if meta.get("key") != folder.key or meta.get("name") != folder.name:
            problems.append(f"{meta_path}: records {meta.get('name')}-{meta.get('key')}, folder is {folder.path.name}")
    columns = meta.get("columns")
    expected = _expected_types(meta)
    tables = []
    for p in sorted((p for p in folder.path.iterdir() if _PART.match(p.name)), key=_part_sort_key):
        try:
            t = read_part(p)
        except Exception as exc:  # pyarrow raises several types for damaged files
            problems.append(f"{p}: unreadable Parquet ({_one_line(exc)})")
            continue
        if columns is not None and t.column_names != columns:
            problems.append(f"{p}: columns differ from meta.json ({t.num_columns} vs {len(columns)})")
        elif expected is not None and [f.type for f in t.schema] != expected:
            wrong = [f.name for f, want in zip(t.schema, expected) if f.type != want]
            problems.append(f"{p}: column types differ from what the cache writes ({', '.join(wrong[:5])})")
        ids = t.column("utterance_id").to_numpy(zero_copy_only=False) if "utterance_id" in t.column_names else []
        if len(set(ids)) != len(ids):
            problems.append(f"{p}: {len(ids) - len(set(ids))} duplicate utterance id(s) within the part")
        if "status" in t.column_names:
            bad = set(t.column("status").to_pylist()) - set(STATUSES)
            if bad:
                problems.append(f"{p}: invalid status value(s) {sorted(bad)}")
        tables.append(t.select([c for c in KEY_COLUMNS if c in t.column_names]))
    temps = list(folder.path.glob(".part-*.tmp"))
    if temps:
        problems.append(f"{folder.path}: {len(temps)} leftover temp file(s) of interrupted writes "
                        "(harmless; removed by the next extraction's compaction after an hour)")
    if rehash and tables:
        try:
            merged = FeatureCache._newest(pa.concat_tables(tables)).to_pandas()
        except pa.ArrowInvalid:
            merged = pd.DataFrame()
        for r in merged.itertuples(index=False):
            path = getattr(r, "path", None)
            if not path:
                continue
            if not os.path.isfile(path):
                problems.append(f"{folder.path.name}: {r.utterance_id}: audio {path} no longer exists")
            elif file_hash(path) != r.content_hash:
                problems.append(f"{folder.path.name}: {r.utterance_id}: audio {path} changed since extraction "
                                "(the next extract re-extracts it)")
    return problems


def _expected_types(meta: dict) -> list[pa.DataType] | None:
    """Arrow types of the columns meta.json lists, as :meth:`FeatureCache.schema` writes them."""
    columns = meta.get("columns")
    if not isinstance(columns, list) or len(columns) < len(KEY_COLUMNS):
        return None
    rest = columns[len(KEY_COLUMNS):]
    if meta.get("kind") == Kind.ARRAY.value and rest == list(ARRAY_COLUMNS):
        return [pa.string()] * len(KEY_COLUMNS) + [pa.list_(pa.int32()), pa.int32(), pa.large_list(pa.float32())]
    if meta.get("kind") == Kind.VECTOR.value:
        return [pa.string()] * len(KEY_COLUMNS) + [pa.float32()] * len(rest)
    return None


def clear_folders(folders: Iterable[CacheFolder]) -> int:
    """Delete cache sets; returns bytes freed.

    Each folder must still be a cache set (:func:`folder_meta`), must not be a link and must
    lie inside its cache root with links resolved; all are checked before any is deleted.
    """
    folders = list(folders)
    for f in folders:
        if folder_meta(f.path) is None:
            raise CacheError(f"{f.path}: not a cache set (its meta.json does not describe it); left alone")
        if f.path.is_symlink():
            raise OutsideError(f"{f.path}: refusing to delete it, it is a link (to {f.path.resolve()}); "
                               "remove the link yourself if it is no longer needed")
        ensure_inside(f.path, f.path.parent.parent, "delete")
    freed = 0
    for f in folders:
        freed += sum(p.stat().st_size for p in f.path.rglob("*") if p.is_file() and not p.is_symlink())
        rmtree_inside(f.path, f.path.parent.parent)
        parent = f.path.parent
        if parent.is_dir() and not parent.is_symlink() and not any(parent.iterdir()):
            parent.rmdir()
    return freed
