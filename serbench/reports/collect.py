"""Read the results store for one corpus: the latest complete run of every system.

The store's on-disk format is CONTRIBUTING's contract::

    <runs>/<corpus>/<system>/<run_id>/predictions.parquet + run.json
    <runs>/<corpus>/<system>/<run_id>.partial/   (a run still being written, or killed)

Metrics are recomputed from ``predictions.parquet`` with
:func:`serbench.experiments.metrics.summarize`; the numbers stored in ``run.json``
are only compared against them (a disagreement becomes a warning), never shown.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serbench.errors import SerbenchError
from serbench.experiments.metrics import summarize
from serbench.settings import runs_root

PREDICTION_COLUMNS = ("utterance_id", "speaker", "fold", "true", "predicted")
# Folder names under <runs>/<corpus>/ that are not systems: the default output of `serbench tables`.
RESERVED_DIRS = frozenset({"tables"})
# run.json metrics are stored as fractions; allow float round-off before calling them different.
_METRIC_TOLERANCE = 1e-6


class ReportError(SerbenchError):
    """The results store cannot be turned into tables (bad run folder, nothing to compare)."""


class EmptyStoreError(ReportError):
    """No complete run exists for the corpus; the message says which commands produce them."""


@dataclass(frozen=True)
class SystemSpec:
    """What a system name means, e.g. ``IS10-svm-linear-spknorm`` or ``cnn-sru-N5``.

    ``kind`` is ``"baseline"``, ``"deep"`` or ``"other"`` (a name that fits neither pattern).
    """

    name: str
    kind: str
    feature: str | None = None
    classifier: str | None = None
    speaker_norm: bool = False
    model: str | None = None
    segments: int | None = None

    @property
    def base(self) -> str:
        """The name without the speaker-normalization suffix: the row key of the feature table."""
        return self.name[: -len("-spknorm")] if self.name.endswith("-spknorm") else self.name


_DEEP_RE = re.compile(r"^(?P<model>.+)-N(?P<segments>\d+)$")
_BASELINE_RE = re.compile(r"^(?P<feature>[^-]+)-(?P<classifier>.+?)(?P<spk>-spknorm)?$")


def parse_system(name: str, run: dict | None = None) -> SystemSpec:
    """Interpret a system name, preferring the fields of ``run.json`` (``kind``, ``config``) when present.

    >>> parse_system("IS10-svm-linear-spknorm").speaker_norm
    True
    >>> parse_system("cnn-sru-N5").segments
    5
    """
    run = run or {}
    config = run.get("config") or {}
    kind = run.get("kind") or config.get("kind")
    deep = _DEEP_RE.match(name)
    base = _BASELINE_RE.match(name)
    if kind is None:
        kind = "deep" if deep else ("baseline" if base else "other")
    if kind == "deep":
        segments = config.get("segments", int(deep["segments"]) if deep else None)
        return SystemSpec(name=name, kind="deep",
                          model=config.get("model", deep["model"] if deep else name),
                          segments=int(segments) if segments is not None else None,
                          speaker_norm=bool(config.get("speaker_norm", False)))
    if kind == "baseline":
        spk = config.get("speaker_norm")
        if spk is None:
            spk = bool(base and base["spk"])
        return SystemSpec(name=name, kind="baseline",
                          feature=config.get("feature", base["feature"] if base else name),
                          classifier=config.get("classifier", base["classifier"] if base else None),
                          speaker_norm=bool(spk))
    return SystemSpec(name=name, kind=str(kind), speaker_norm=bool(config.get("speaker_norm", False)))


@dataclass
class RunResult:
    """One complete run, with metrics recomputed from its predictions.

    ``predictions``: one row per test utterance (columns of CONTRIBUTING's contract).
    ``metrics``: the dict of :func:`summarize` (fractions), ``labels``: class order for figures.
    """

    spec: SystemSpec
    run_id: str
    path: Path
    record: dict
    predictions: pd.DataFrame
    metrics: dict
    labels: list[str]

    @property
    def system(self) -> str:
        return self.spec.name

    def fold_series(self, metric: str = "ua") -> pd.Series:
        """Per-fold ``metric`` ('wa' or 'ua') as fractions, indexed by fold name (str), sorted."""
        if metric not in ("wa", "ua"):
            raise ValueError(f"metric must be 'wa' or 'ua', not {metric!r}")
        folds = self.metrics["folds"]
        return pd.Series({f["fold"]: f[metric] for f in folds}, name=self.system, dtype=float).sort_index()


@dataclass
class Collection:
    """Everything found under ``<runs>/<corpus>/``.

    ``runs``: the latest complete run per system; ``older``: run ids passed over per system;
    ``partial``: ``*.partial`` folders ignored; ``skipped``: (folder, reason) of folders that
    could not be read; ``warnings``: e.g. run.json metrics disagreeing with the predictions.
    """

    corpus: str
    root: Path
    runs: dict[str, RunResult] = field(default_factory=dict)
    older: dict[str, list[str]] = field(default_factory=dict)
    partial: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, system: str) -> RunResult | None:
        return self.runs.get(system)

    def specs(self) -> list[SystemSpec]:
        return [r.spec for r in self.runs.values()]

    def notes(self) -> list[str]:
        """Human-readable lines about what was ignored or passed over; empty when nothing was."""
        lines: list[str] = []
        if self.partial:
            names = ", ".join(f"{p.parent.name}/{p.name}" for p in self.partial)
            lines.append(f"{len(self.partial)} partial run folder(s) ignored (incomplete): {names}")
        for system, ids in sorted(self.older.items()):
            lines.append(f"{system}: using latest run {self.runs[system].run_id}; "
                         f"{len(ids)} older complete run(s) not shown: {', '.join(ids)}")
        for path, reason in self.skipped:
            lines.append(f"skipped {path}: {reason}")
        lines.extend(self.warnings)
        return lines


def collect(corpus: str, runs: str | Path | None = None) -> Collection:
    """Find the latest complete run of every system under ``<runs>/<corpus>/``.

    ``runs`` defaults to :func:`serbench.settings.runs_root`. A missing corpus folder gives an
    empty :class:`Collection` (callers decide how to report that), not an error.
    """
    root = runs_root(runs) / corpus
    out = Collection(corpus=corpus, root=root)
    if not root.is_dir():
        return out
    for system_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if system_dir.name in RESERVED_DIRS or system_dir.name.startswith("."):
            continue
        candidates: list[RunResult] = []
        for run_dir in sorted(p for p in system_dir.iterdir() if p.is_dir()):
            if run_dir.name.endswith(".partial"):
                out.partial.append(run_dir)
                continue
            if run_dir.name.startswith("."):
                continue
            try:
                candidates.append(load_run(run_dir, corpus=corpus, system=system_dir.name, warnings=out.warnings))
            except ReportError as exc:
                out.skipped.append((run_dir, str(exc)))
        if not candidates:
            continue
        candidates.sort(key=_recency)
        latest = candidates[-1]
        out.runs[system_dir.name] = latest
        if len(candidates) > 1:
            out.older[system_dir.name] = [c.run_id for c in candidates[:-1]]
    out.warnings.extend(_label_set_warnings(out.runs))
    return out


def _label_set_warnings(runs: dict[str, "RunResult"]) -> list[str]:
    # Systems run on different emotion subsets are not comparable row by row: say so.
    sets: dict[tuple[str, ...], list[str]] = {}
    for name, run in sorted(runs.items()):
        sets.setdefault(tuple(sorted(set(run.predictions["true"]))), []).append(name)
    if len(sets) <= 1:
        return []
    parts = "; ".join(f"{list(k)}: {', '.join(v)}" for k, v in sets.items())
    return [f"systems were evaluated on different label sets, so their rows are not comparable: {parts}"]


def _recency(run: RunResult) -> tuple[str, str, str]:
    # ISO timestamps sort as strings; the run id breaks ties (and orders runs lacking timestamps).
    return (str(run.record.get("finished") or ""), str(run.record.get("started") or ""), run.run_id)


def load_run(run_dir: str | Path, *, corpus: str | None = None, system: str | None = None,
             warnings: list[str] | None = None) -> RunResult:
    """Read one run folder and recompute its metrics from ``predictions.parquet``.

    Raises :class:`ReportError` naming the file when the folder breaks the store's contract.
    Appends to ``warnings`` when run.json's stored metrics disagree with the recomputed ones.
    """
    run_dir = Path(run_dir)
    system = system or run_dir.parent.name
    record_path = run_dir / "run.json"
    pred_path = run_dir / "predictions.parquet"
    if not record_path.is_file():
        raise ReportError(f"{record_path}: missing; the run folder is incomplete (re-run the system)")
    if not pred_path.is_file():
        raise ReportError(f"{pred_path}: missing; the run folder is incomplete (re-run the system)")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{record_path}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ReportError(f"{record_path}: expected a JSON object")
    status = record.get("status", "complete")
    if status != "complete":
        raise ReportError(f"{record_path}: status is {status!r}, not 'complete'")
    try:
        predictions = pd.read_parquet(pred_path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ReportError(f"{pred_path}: cannot be read as Parquet ({exc})") from exc
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ReportError(f"{pred_path}: missing column(s) {missing}; expected {list(PREDICTION_COLUMNS)}")
    if predictions.empty:
        raise ReportError(f"{pred_path}: no predictions")
    predictions = predictions.copy()
    # Folds are names (str) by contract; normalizing guards against int folds written by hand.
    predictions["fold"] = predictions["fold"].astype(str)
    for col in ("true", "predicted", "utterance_id"):
        predictions[col] = predictions[col].astype(str)
    if predictions["utterance_id"].duplicated().any():
        dup = predictions.loc[predictions["utterance_id"].duplicated(), "utterance_id"].iloc[0]
        raise ReportError(f"{pred_path}: utterance {dup!r} predicted more than once")
    metrics = summarize(predictions)
    run_id = str(record.get("run_id") or run_dir.name)
    spec = parse_system(system, record)
    if warnings is not None:
        warnings.extend(_compare_stored(record, metrics, f"{system}/{run_id}"))
        if corpus and record.get("corpus") not in (None, corpus):
            warnings.append(f"{system}/{run_id}: run.json says corpus {record.get('corpus')!r} "
                            f"but it lies under {corpus!r}")
        if record.get("system") not in (None, system):
            warnings.append(f"{system}/{run_id}: run.json says system {record.get('system')!r} "
                            f"but it lies under {system!r}")
        collapsed = [str(f.get("fold")) for f in record.get("folds") or []
                     if isinstance(f, dict) and (f.get("timings") or {}).get("cnn_collapsed")]
        if collapsed:
            warnings.append(f"{system}/{run_id}: the CNN stayed at chance loss (collapsed to one class) in "
                            f"fold(s) {', '.join(collapsed)}; those folds measure a failed training, not the model")
        if spec.kind == "baseline" and spec.speaker_norm != system.endswith("-spknorm"):
            warnings.append(f"{system}/{run_id}: run.json says speaker_norm={spec.speaker_norm} but the system "
                            "name says otherwise; the tables follow run.json")
    labels = [str(x) for x in record.get("labels") or []]
    seen = sorted(set(predictions["true"]) | set(predictions["predicted"]))
    labels = labels + [x for x in seen if x not in labels]
    return RunResult(spec=spec, run_id=run_id, path=run_dir, record=record,
                     predictions=predictions, metrics=metrics, labels=labels)


def _compare_stored(record: dict, metrics: dict, where: str) -> list[str]:
    stored = record.get("metrics") or {}
    out = []
    for key in ("wa", "ua"):
        value = stored.get(key)
        if isinstance(value, (int, float)) and not math.isclose(value, metrics[key], abs_tol=_METRIC_TOLERANCE):
            out.append(f"{where}: run.json {key}={value:.4f} disagrees with the predictions "
                       f"({metrics[key]:.4f}); the tables use the recomputed value")
    return out
