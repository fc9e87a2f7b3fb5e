"""Read the results store for one corpus: the latest complete run of every system.

The store's on-disk format is CONTRIBUTING's contract::

    <runs>/<corpus>/<system>/<run_id>/predictions.parquet + run.json
    <runs>/<corpus>/<system>/<run_id>.partial/   (a run still being written, or killed)

Metrics are recomputed from ``predictions.parquet`` with
:func:`serbench.experiments.metrics.summarize`; the numbers stored in ``run.json``
are only compared against them (a disagreement becomes a warning), never shown.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from pathlib import Path

from serbench.errors import SerbenchError
from serbench.experiments.store import RunResult, StoreError
from serbench.experiments.store import load_run as read_run
from serbench.settings import runs_root

# Folder names under <runs>/<corpus>/ that are not systems: the default output of `serbench tables`.
RESERVED_DIRS = frozenset({"tables", "report"})


class ReportError(SerbenchError):
    """The results store cannot be turned into tables (bad run folder, nothing to compare)."""


class EmptyStoreError(ReportError):
    """No complete run exists for the corpus; the message says which commands produce them."""


@dataclass(frozen=True)
class SystemSpec:
    """What a system name means, e.g. ``IS10-svm-linear-spknorm`` or ``cnn-sru-N5``.

    ``kind`` is ``"baseline"``, ``"deep"`` or ``"other"`` (a name no registered system
    claims); ``system`` the registered system; ``model`` a deep system's variant without its
    N and normalization (``cnn-sru``, ``cnn-sru-xfit3``, ``crnn-mk-nomk``); ``table`` where the
    reports show it (the registered system's ``table``).
    """

    name: str
    kind: str
    feature: str | None = None
    classifier: str | None = None
    speaker_norm: bool = False
    model: str | None = None
    segments: int | None = None
    system: str | None = None
    table: str = ""

    @property
    def base(self) -> str:
        """The name without the speaker-normalization suffix: the row key of the feature table."""
        return self.name[: -len("-spknorm")] if self.name.endswith("-spknorm") else self.name


def parse_system(name: str, run: dict | None = None) -> SystemSpec:
    """Interpret a stored system name with the registry, preferring what ``run.json`` says.

    >>> parse_system("IS10-svm-linear-spknorm").speaker_norm
    True
    >>> parse_system("cnn-sru-N5").segments
    5
    """
    from serbench.systems import registry

    found = registry.identify(name, run)
    s = found.settings
    system = found.system
    if system is None:
        return SystemSpec(name=name, kind="other", speaker_norm=found.speaker_norm)
    if system.kind == "baseline":
        return SystemSpec(name=name, kind="baseline", feature=s.get("feature"), classifier=system.name,
                          speaker_norm=found.speaker_norm, system=system.name, table=system.table)
    plain = {**{p.key: s.get(p.key) for p in system.naming.prefix + system.naming.suffix},
             "segments": None, "speaker_norm": False}
    segments = s.get("segments")
    return SystemSpec(name=name, kind="deep", model=system.naming.format(system.name, types.SimpleNamespace(**plain)),
                      segments=int(segments) if segments is not None else None, speaker_norm=found.speaker_norm,
                      system=system.name, table=system.table)


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
    from serbench.corpora import check_corpus_name

    try:
        corpus = check_corpus_name(corpus)
    except SerbenchError as exc:
        raise ReportError(f"--corpus: {exc}") from None
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
    """Read one complete run folder (:func:`serbench.experiments.store.load_run`) and say what its name means.

    Raises :class:`ReportError` naming the file when the folder breaks the store's contract or
    the run is not complete. Appends to ``warnings`` what a reader of the tables should know:
    stored metrics that disagree with the predictions, a record that names another corpus or
    system, a CNN that collapsed to one class, the data warnings of the run.
    """
    run_dir = Path(run_dir)
    system = system or run_dir.parent.name
    notes: list[str] = []
    try:
        run = read_run(run_dir, warnings=notes)
    except StoreError as exc:
        raise ReportError(str(exc)) from exc
    if run.status != "complete":
        raise ReportError(f"{run_dir / 'run.json'}: status is {run.status!r}, not 'complete'")
    record = run.record
    spec = parse_system(system, record)
    run.spec = spec
    if warnings is not None:
        where = f"{system}/{run.run_id}"
        warnings.extend(f"{where}: {n.split(': ', 1)[-1]}" for n in notes)
        if corpus and record.get("corpus") not in (None, corpus):
            warnings.append(f"{where}: run.json says corpus {record.get('corpus')!r} but it lies under {corpus!r}")
        if record.get("system") not in (None, system):
            warnings.append(f"{where}: run.json says system {record.get('system')!r} but it lies under {system!r}")
        collapsed = [str(f.get("fold")) for f in record.get("folds") or []
                     if isinstance(f, dict) and (f.get("timings") or {}).get("cnn_collapsed")]
        if collapsed:
            warnings.append(f"{where}: the CNN stayed at chance loss (collapsed to one class) in fold(s) "
                            f"{', '.join(collapsed)}; those folds measure a failed training, not the model")
        for w in record.get("warnings") or []:
            warnings.append(f"{where}: {w}")
        fold_warnings: dict[str, list[str]] = {}
        for f in record.get("folds") or []:
            for w in (f.get("warnings") or []) if isinstance(f, dict) else []:
                fold_warnings.setdefault(w, []).append(str(f.get("fold")))
        for w, folds in fold_warnings.items():
            warnings.append(f"{where}: {w} (fold(s) {', '.join(folds)})")
        if spec.kind == "baseline" and spec.speaker_norm != system.endswith("-spknorm"):
            warnings.append(f"{where}: run.json says speaker_norm={spec.speaker_norm} but the system name says "
                            "otherwise; the tables follow run.json")
    return run
