"""The results store: per-utterance predictions and a run record per run, on disk.

Layout (the contract with :mod:`serbench.reports`, see CONTRIBUTING.md)::

    <root>/<corpus>/<system>/<run_id>/predictions.parquet
    <root>/<corpus>/<system>/<run_id>/run.json

A run is written into ``<run_id>.partial/``: ``run.json`` with ``"status": "partial"``
first, then one ``fold-<name>.parquet`` (+ ``fold-<name>.json`` with that fold's
chosen hyper-parameters and timings) per finished fold, each written atomically, so
an interrupted run keeps every finished fold. While a process writes a partial run it
holds an exclusive lock on ``<run_id>.partial/.lock`` (POSIX ``flock``, released when it
finishes or dies), so a second process resuming the same run gets a clear error instead
of redoing the same folds. :meth:`RunWriter.finish` merges the
folds into ``predictions.parquet``, writes the complete ``run.json`` and renames the
folder to ``<run_id>``. ``RunStore.start_run(..., resume=True)`` reopens the latest
partial run with the same corpus, system, config, labels and data fingerprint.

Metrics are never trusted from ``run.json``: :func:`load_run` and
:meth:`RunStore.list_runs` recompute them from the predictions.
"""
from __future__ import annotations

import atexit
import datetime as _dt
import hashlib
import json
import math
import os
import re
import secrets
import warnings as _warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from serbench.errors import SerbenchError
from serbench.experiments import metrics
from serbench.io import atomic_write, atomic_write_text
from serbench.settings import runs_root

RUN_JSON = "run.json"
PREDICTIONS = "predictions.parquet"
PARTIAL_SUFFIX = ".partial"
PREDICTION_COLUMNS = ("utterance_id", "speaker", "fold", "true", "predicted")
METRIC_KEYS = ("wa", "ua", "wa_mean", "wa_sd", "ua_mean", "ua_sd")
LOCK_FILE = ".lock"
LIST_COLUMNS = ["corpus", "system", "run_id", "status", "wa", "ua", "finished", "path",
                "kind", "speaker_norm", "n_folds", "note"]


class StoreError(SerbenchError):
    """A run folder or record that does not follow the results-store format."""


def new_run_id(now: _dt.datetime | None = None) -> str:
    """UTC timestamp (microseconds) + 6 random hex digits: unique, and sorts by start time."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"{now.astimezone(_dt.timezone.utc):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, paths and NaN made JSON-safe (NaN and inf -> null)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _dump(record: dict) -> str:
    return json.dumps(jsonable(record), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _safe_name(name: str) -> str:
    """A file-name-safe form of a fold name; a hash suffix keeps distinct names distinct."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if safe != name or not safe:
        safe = f"{safe}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
    return safe


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: unreadable run record ({exc}); delete the run folder or re-run it") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path}: a run record must be a JSON object")
    return data


def check_predictions(df: pd.DataFrame, labels: Sequence[str] | None, where: str) -> None:
    """Raise :class:`StoreError` unless ``df`` has the store's prediction columns and consistent labels."""
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise StoreError(f"{where}: predictions lack column(s) {missing}; "
                         f"expected {list(PREDICTION_COLUMNS)} + score_<label>")
    dup = df["utterance_id"][df["utterance_id"].duplicated()]
    if len(dup):
        raise StoreError(f"{where}: utterance(s) predicted more than once, e.g. {dup.head(5).tolist()}")
    if labels is not None:
        unknown = sorted(set(df["true"].astype(str)) - set(labels))
        if unknown:
            raise StoreError(f"{where}: true label(s) {unknown} are not in the run's labels {list(labels)}")


# Locks this process holds, by partial-run folder: re-opening a run in the same process (a
# resumed run after an exception) reuses the lock instead of tripping over its own.
_HELD_LOCKS: dict[str, Any] = {}


def _acquire_lock(path: Path) -> None:
    """Take ``path/.lock`` exclusively for this process, or raise :class:`StoreError` naming the holder."""
    key = str(Path(path).resolve())
    if key in _HELD_LOCKS:
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): concurrent writers of one run are the user's to avoid
        return
    fh = open(Path(path) / LOCK_FILE, "a+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip()
        fh.close()
        raise StoreError(f"{path} is being written by another process{f' (pid {holder})' if holder else ''}; "
                         "wait for it to finish, or start a separate run with --no-resume") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    _HELD_LOCKS[key] = fh


@atexit.register
def _close_locks() -> None:
    # The kernel drops flock locks with the process; closing first keeps interpreter shutdown quiet.
    for fh in _HELD_LOCKS.values():
        fh.close()
    _HELD_LOCKS.clear()


def lock_holder(path: str | Path) -> str | None:
    """Who is writing the partial run at ``path``: the other process' pid ('' if unknown), else None."""
    path = Path(path)
    if str(path.resolve()) in _HELD_LOCKS or not (path / LOCK_FILE).is_file():
        return None
    try:
        import fcntl
    except ImportError:
        return None
    try:
        with open(path / LOCK_FILE, encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return fh.read().strip()
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:  # the writer finished and removed its lock meanwhile
        return None
    return None


def _release_lock(path: Path) -> None:
    fh = _HELD_LOCKS.pop(str(Path(path).resolve()), None)
    (Path(path) / LOCK_FILE).unlink(missing_ok=True)
    if fh is not None:
        fh.close()


class RunWriter:
    """Writes one run into ``<run_id>.partial/`` fold by fold; :meth:`finish` completes it.

    Obtain one from :meth:`RunStore.start_run`. ``record`` is the run.json being built.
    The writer holds the run's lock until :meth:`finish` (or the process ends).
    """

    def __init__(self, path: Path, record: dict, resumed: bool = False, *, lock: bool = True) -> None:
        self.path = Path(path)
        self.record = record
        self.resumed = resumed
        if lock:  # readers (lock=False) only look at finished folds, which are written atomically
            _acquire_lock(self.path)

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def labels(self) -> list[str]:
        return list(self.record["labels"])

    # -- folds -------------------------------------------------------------------------
    def _fold_files(self) -> dict[str, tuple[Path, Path]]:
        out = {}
        for meta in sorted(self.path.glob("fold-*.json")):
            info = _read_json(meta)
            pq = meta.with_suffix(".parquet")
            if "fold" in info and pq.is_file():
                out[str(info["fold"])] = (pq, meta)
        return out

    def finished_folds(self) -> list[str]:
        """Names of the folds whose predictions are on disk (a fold counts once its .json is written)."""
        return sorted(self._fold_files())

    def fold_info(self, name: str) -> dict:
        """What :meth:`write_fold` stored with fold ``name`` (hyper-parameters, timings)."""
        files = self._fold_files()
        if name not in files:
            raise StoreError(f"{self.path}: fold {name!r} is not finished")
        return _read_json(files[name][1])

    def write_fold(self, name: str, predictions: pd.DataFrame, info: dict | None = None) -> None:
        """Store the predictions of fold ``name`` (its ``fold`` column must equal ``name``) atomically.

        ``predictions`` has the store's columns (utterance_id, speaker, fold, true, predicted,
        score_<label>...). The parquet is written first and the ``.json`` last, so a fold
        interrupted between the two counts as unfinished and is redone.
        """
        where = f"{self.path} fold {name!r}"
        check_predictions(predictions, self.labels, where)
        if not (predictions["fold"].astype(str) == str(name)).all():
            raise StoreError(f"{where}: the 'fold' column must equal the fold name")
        stem = self.path / f"fold-{_safe_name(str(name))}"
        with atomic_write(stem.with_suffix(".parquet"), "wb") as f:
            predictions.reset_index(drop=True).to_parquet(f, index=False)
        atomic_write_text(stem.with_suffix(".json"), _dump({"fold": str(name), **(info or {})}))

    def predictions(self) -> pd.DataFrame:
        """The finished folds' predictions, concatenated in fold-name order."""
        files = self._fold_files()
        if not files:
            return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
        return pd.concat([pd.read_parquet(files[k][0]) for k in sorted(files)], ignore_index=True)

    def discard(self) -> None:
        """Delete this partial run (nothing of it is kept): for a run that failed before any fold."""
        if not self.path.name.endswith(PARTIAL_SUFFIX):
            raise StoreError(f"{self.path}: only a partial run can be discarded")
        from serbench.io import rmtree_inside

        _release_lock(self.path)
        rmtree_inside(self.path, self.path.parent.parent.parent)

    # -- completion --------------------------------------------------------------------
    def finish(self, *, timings: dict | None = None, extra: dict | None = None) -> Path:
        """Merge the folds, write predictions.parquet and the complete run.json, rename the folder.

        ``timings`` goes to ``run.json["timings"]``; ``extra`` adds top-level keys. Per-fold
        metrics come from :func:`serbench.experiments.metrics.summarize` on the predictions,
        merged with what each fold stored. Returns the final run folder.
        """
        files = self._fold_files()
        if not files:
            raise StoreError(f"{self.path}: no finished folds; nothing to finish")
        preds = self.predictions()
        check_predictions(preds, self.labels, str(self.path))
        summary = metrics.summarize(preds)
        folds = []
        for f in summary["folds"]:
            info = {k: v for k, v in _read_json(files[f["fold"]][1]).items() if k != "fold"}
            folds.append({**f, **info})
        record = dict(self.record)
        record.update(extra or {})
        record.update({
            "status": "complete",
            "finished": utc_now(),
            "timings": timings or {},
            "folds": folds,
            "metrics": {k: summary[k] for k in METRIC_KEYS},
            "per_class_recall": summary["per_class_recall"],
        })
        with atomic_write(self.path / PREDICTIONS, "wb") as fh:
            preds.to_parquet(fh, index=False)
        atomic_write_text(self.path / RUN_JSON, _dump(record))
        final = self.path.with_name(self.run_id)
        if final.exists():
            raise StoreError(f"{final} already exists; run ids are unique, so it was written by hand: move it away")
        _release_lock(self.path)
        os.rename(self.path, final)
        # The fold files are now merged into predictions.parquet; removing them after the
        # rename means a crash at any point leaves either a resumable partial or a complete run.
        for pq, meta in files.values():
            for p in (final / pq.name, final / meta.name):
                p.unlink(missing_ok=True)
        self.path = final
        self.record = record
        return final


class RunStore:
    """The results store under ``root`` (default: ``$SERBENCH_RUNS`` or ``./runs``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = runs_root(root)

    def system_dir(self, corpus: str, system: str) -> Path:
        """``<root>/<corpus>/<system>``; the corpus must be a known corpus name, the system a plain name."""
        from serbench.corpora import check_corpus_name

        corpus = check_corpus_name(corpus)
        if not system or "/" in system or "\\" in system or system.startswith(".") or ".." in system:
            raise StoreError(f"invalid system name {system!r} for the results store: no slashes, not empty")
        return self.root / corpus / system

    def start_run(
        self,
        corpus: str,
        system: str,
        config: dict,
        labels: Sequence[str],
        command: str | Sequence[str],
        *,
        kind: str = "baseline",
        seed: int | None = None,
        fingerprint: str | None = None,
        resume: bool = False,
        extra: dict | None = None,
    ) -> RunWriter:
        """Open a run for writing (see the module docstring for the layout).

        ``config`` must be JSON-serializable; ``labels`` are the class labels (score columns);
        ``fingerprint`` identifies the input data (e.g. a hash of the feature matrix) so that
        ``resume=True`` only continues a partial run computed on the same data. With
        ``resume=True`` the latest matching partial run is reopened (its finished folds
        are kept: ask :meth:`RunWriter.finished_folds`); otherwise, or when none matches,
        a new run is started.
        """
        if kind not in ("baseline", "deep"):
            raise StoreError(f"kind must be 'baseline' or 'deep', got {kind!r}")
        command = command if isinstance(command, str) else " ".join(map(str, command))
        config = json.loads(_dump(config))  # normalizes types so that resume compares like with like
        labels = [str(x) for x in labels]
        from serbench.io import ensure_inside

        if resume:
            found = self.find_partial(corpus, system, config, labels, fingerprint=fingerprint, kind=kind)
            if found is not None:
                ensure_inside(found, self.root)     # never resumed (written) through a link out of the store
                _acquire_lock(found)      # before touching run.json: another process may own it
                record = _read_json(found / RUN_JSON)
                record.setdefault("resumed", []).append({"at": utc_now(), "command": command})
                atomic_write_text(found / RUN_JSON, _dump(record))
                return RunWriter(found, record, resumed=True)
        run_id = new_run_id()
        path = self.system_dir(corpus, system) / f"{run_id}{PARTIAL_SUFFIX}"
        ensure_inside(path, self.root)              # runs/<corpus>/<system> may not lead out of the store
        try:
            path.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise StoreError(f"--runs {self.root}: cannot create a run folder there ({type(exc).__name__}: "
                             f"{exc.strerror or exc}); give a writable --runs folder (or $SERBENCH_RUNS)") from None
        record = {
            "run_id": run_id, "corpus": corpus, "system": system, "kind": kind, "command": command,
            "config": config, "labels": labels, "seed": seed, "versions": versions(), "git_commit": git_commit(),
            "data_fingerprint": fingerprint, "started": utc_now(), "finished": None, "timings": {},
            "folds": [], "metrics": {}, "status": "partial", **(extra or {}),
        }
        atomic_write_text(path / RUN_JSON, _dump(record))
        return RunWriter(path, record)

    def find_partial(self, corpus: str, system: str, config: dict, labels: Sequence[str], *,
                     fingerprint: str | None = None, kind: str = "baseline") -> Path | None:
        """The latest ``.partial`` run folder of ``corpus``/``system`` with this exact config, or None."""
        base = self.system_dir(corpus, system)
        config = json.loads(_dump(config))
        for path in sorted(base.glob(f"*{PARTIAL_SUFFIX}"), reverse=True):
            try:
                rec = _read_json(path / RUN_JSON)
            except StoreError:
                continue  # a folder whose header was never written cannot be resumed
            if (rec.get("status") == "partial" and rec.get("kind") == kind and rec.get("config") == config
                    and rec.get("labels") == [str(x) for x in labels]
                    and rec.get("data_fingerprint") == fingerprint):
                return path
        return None

    def run_dirs(self, corpus: str | None = None) -> list[Path]:
        """Every run folder (complete or partial) under the store, optionally of one corpus, sorted."""
        if corpus:
            from serbench.corpora import check_corpus_name

            corpus = check_corpus_name(corpus)
        base = self.root / corpus if corpus else self.root
        pattern = "*/*" if corpus else "*/*/*"
        if not base.is_dir():
            return []
        return sorted(p for p in base.glob(pattern) if p.is_dir() and (p / RUN_JSON).is_file())

    def clean_partials(self, corpus: str | None = None) -> list[Path]:
        """Delete the partial runs no process is writing (their lock is free); returns what was removed.

        Their finished folds are lost: a later run of the same configuration starts afresh.
        """
        from serbench.io import rmtree_inside

        removed = []
        for path in self.run_dirs(corpus):
            if not path.name.endswith(PARTIAL_SUFFIX) or lock_holder(path) is not None:
                continue
            if str(path.resolve()) in _HELD_LOCKS:
                continue  # this process is writing it
            if path.is_symlink() or not path.resolve().is_relative_to(self.root.resolve()):
                continue  # a link leading out of the store: not ours to delete
            rmtree_inside(path, self.root)
            removed.append(path)
        return removed

    def list_runs(self, corpus: str | None = None) -> pd.DataFrame:
        """One row per run: corpus, system, run_id, status, wa, ua (fractions), finished, path, ...

        WA and UA are recomputed from each complete run's predictions; partial runs show NaN,
        since a subset of folds is not the system's result. A partial run that another process
        is writing right now has status 'running' (its pid under ``note``). A run folder that
        cannot be read is listed with status 'invalid' and the reason under ``note``, not skipped.
        """
        rows = []
        for path in self.run_dirs(corpus):
            row: dict[str, Any] = {"path": str(path), "note": ""}
            try:
                run = load_run(path, warnings=[])
                rec, preds = run.record, run.predictions
                cfg = rec.get("config") or {}
                row.update(corpus=rec.get("corpus"), system=rec.get("system"), run_id=rec.get("run_id"),
                           status=rec.get("status"), finished=rec.get("finished"), kind=rec.get("kind"),
                           speaker_norm=cfg.get("speaker_norm"), n_folds=int(preds["fold"].nunique()))
                complete = rec.get("status") == "complete"
                holder = None if complete else lock_holder(path)
                if holder is not None:
                    row.update(status="running", note=f"written now by pid {holder or '?'}")
                row["wa"] = rec["metrics"]["wa"] if complete else np.nan
                row["ua"] = rec["metrics"]["ua"] if complete else np.nan
            except (StoreError, ValueError, OSError) as exc:
                row.update(corpus=path.parent.parent.name, system=path.parent.name,
                           run_id=path.name.removesuffix(PARTIAL_SUFFIX), status="invalid",
                           wa=np.nan, ua=np.nan, note=str(exc))
            rows.append(row)
        df = pd.DataFrame(rows, columns=LIST_COLUMNS)
        return df.sort_values(["corpus", "system", "run_id"], kind="stable").reset_index(drop=True)


@dataclass
class RunResult:
    """One run read from the store, with metrics recomputed from its predictions.

    ``predictions``: one row per test utterance (CONTRIBUTING's columns); ``metrics``:
    :func:`serbench.experiments.metrics.summarize` of them (fractions; empty for a partial run
    without finished folds). ``spec``: what the system name means, attached by the reports.
    """

    path: Path
    record: dict
    predictions: pd.DataFrame
    metrics: dict
    spec: Any = None

    @property
    def run_id(self) -> str:
        return str(self.record.get("run_id") or self.path.name.removesuffix(PARTIAL_SUFFIX))

    @property
    def corpus(self) -> str:
        return str(self.record.get("corpus") or self.path.parent.parent.name)

    @property
    def system(self) -> str:
        return str(self.record.get("system") or self.path.parent.name)

    @property
    def kind(self) -> str:
        return str(self.record.get("kind") or "")

    @property
    def config(self) -> dict:
        return dict(self.record.get("config") or {})

    @property
    def timings(self) -> dict:
        return dict(self.record.get("timings") or {})

    @property
    def status(self) -> str:
        return str(self.record.get("status"))

    @property
    def labels(self) -> list[str]:
        """The run's classes, then any label seen only in the predictions (for figures)."""
        labels = [str(x) for x in self.record.get("labels") or []]
        if self.predictions.empty:
            return labels
        seen = sorted(set(self.predictions["true"]) | set(self.predictions["predicted"]))
        return labels + [x for x in seen if x not in labels]

    @property
    def wa(self) -> float:
        return float(self.metrics.get("wa", float("nan")))

    @property
    def ua(self) -> float:
        return float(self.metrics.get("ua", float("nan")))

    @property
    def excluded(self) -> list:
        """Utterances left out of the run (features not usable), as the run record lists them."""
        exc = self.record.get("excluded")
        if isinstance(exc, dict):
            return list(exc.get("utterances") or [])
        return list(exc or [])

    @property
    def resumed_folds(self) -> list[str]:
        return list((self.record.get("timings") or {}).get("folds_resumed") or [])

    def fold_series(self, metric: str = "ua") -> pd.Series:
        """Per-fold ``metric`` ('wa' or 'ua') as fractions, indexed by fold name (str), sorted."""
        if metric not in ("wa", "ua"):
            raise ValueError(f"metric must be 'wa' or 'ua', not {metric!r}")
        folds = self.metrics.get("folds") or []
        return pd.Series({f["fold"]: f[metric] for f in folds}, name=self.system, dtype=float).sort_index()


#: Stored metrics may be rounded by other writers; a larger difference is reported.
METRIC_TOLERANCE = 1e-6


def load_run(path: str | Path, *, warnings: list[str] | None = None) -> RunResult:
    """Read a run folder (or its run.json) into a :class:`RunResult`, metrics recomputed.

    The record's ``metrics``, ``per_class_recall`` and each ``folds`` entry's ``wa``/``ua``/
    ``n_test`` are replaced by :func:`metrics.summarize` of the predictions. Stored metrics
    that disagree are reported: appended to ``warnings`` when a list is given, else as a
    Python warning. A complete run must hold predictions; a partial run returns its finished
    folds (possibly none). Raises :class:`StoreError` naming the file on anything unreadable.
    """
    path = Path(path)
    if path.name == RUN_JSON:
        path = path.parent
    rec = _read_json(path / RUN_JSON)
    for key in ("run_id", "corpus", "system", "labels", "status"):
        if key not in rec:
            raise StoreError(f"{path / RUN_JSON}: missing key {key!r}; not a serbench run record")
    if rec["status"] == "complete":
        if not (path / PREDICTIONS).is_file():
            raise StoreError(f"{path}: run.json says complete but {PREDICTIONS} is missing; re-run the system")
        try:
            preds = pd.read_parquet(path / PREDICTIONS)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise StoreError(f"{path / PREDICTIONS}: unreadable ({exc}); delete the run folder and re-run it") \
                from exc
    else:
        preds = RunWriter(path, rec, lock=False).predictions()
    # Name the file a complete run's predictions came from (a partial run's are its fold files).
    check_predictions(preds, rec["labels"], str(path / PREDICTIONS) if rec["status"] == "complete" else str(path))
    if preds.empty:
        if rec["status"] == "complete":
            raise StoreError(f"{path / PREDICTIONS}: no predictions; delete the run folder and re-run it")
        return RunResult(path=path, record=rec, predictions=preds, metrics={})
    preds = preds.copy()
    # Folds are names (str) by contract; normalizing guards against int folds written by hand.
    for col in ("fold", "true", "predicted", "utterance_id", "speaker"):
        preds[col] = preds[col].astype(str)
    summary = metrics.summarize(preds)
    stored = rec.get("metrics") or {}
    if rec["status"] == "complete":
        for key in ("wa", "ua"):
            value = stored.get(key)
            if isinstance(value, (int, float)) and not math.isclose(value, summary[key], abs_tol=METRIC_TOLERANCE):
                msg = (f"{path / RUN_JSON}: stored {key}={value:.4f} disagrees with the predictions "
                       f"({summary[key]:.4f}); using the recomputed value")
                if warnings is not None:
                    warnings.append(msg)
                else:
                    _warnings.warn(msg, stacklevel=2)
    rec = dict(rec)
    rec["metrics"] = {k: summary[k] for k in METRIC_KEYS}
    rec["per_class_recall"] = summary["per_class_recall"]
    by_fold = {f["fold"]: f for f in rec.get("folds") or []}
    rec["folds"] = [{**by_fold.get(f["fold"], {}), **f} for f in summary["folds"]]
    return RunResult(path=path, record=rec, predictions=preds, metrics=summary)


def versions() -> dict[str, str | None]:
    """Versions of Python, serbench and the packages that shape results (None where not installed)."""
    import platform
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("serbench", "numpy", "scipy", "pandas", "scikit-learn", "pyarrow", "opensmile", "librosa", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the serbench source tree, or None (not a checkout, no git)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = res.stdout.strip()
    return sha if res.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def fingerprint(*arrays: Iterable) -> str:
    """SHA-256 over arrays/sequences (e.g. the feature matrix and utterance ids): identifies input data."""
    h = hashlib.sha256()
    for a in arrays:
        arr = np.asarray(a)
        if arr.dtype.kind in "OUS":
            h.update("\x1f".join(map(str, arr.ravel().tolist())).encode("utf-8"))
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(str(arr.shape).encode())
    return h.hexdigest()


__all__ = ["RunStore", "RunWriter", "RunResult", "StoreError", "load_run", "new_run_id", "fingerprint", "check_predictions",
           "jsonable", "versions", "git_commit", "RUN_JSON", "PREDICTIONS", "PREDICTION_COLUMNS"]
