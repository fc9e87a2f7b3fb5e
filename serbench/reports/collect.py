"""Read the results store for one corpus: for every stored name, the run its row shows, and its variants.

The store's on-disk format is CONTRIBUTING's contract::

    <runs>/<corpus>/<system>/<run_id>/predictions.parquet + run.json
    <runs>/<corpus>/<system>/<run_id>.partial/   (a run still being written, or killed)

A stored name (``cnn-sru-N3``) encodes only a few settings, so the complete runs under one
name are grouped by run identity (:mod:`serbench.systems.identity`: the system, its resolved
settings, feature key, protocol, emotions, seed), latest run per identity. The row of a name
shows the run whose identity is the experiment file's declaration for that name (for a name
the file does not declare: the file's profile with the settings the name encodes); every other
identity is a *variant* with a row of its own, ``cnn-sru-N3 [profile=tiny, ...]``, which never
passes as the paper's system (its :class:`SystemSpec` has ``kind="variant"``). When no run
matches the declaration, the name's row is missing and :attr:`Collection.absent` says which
variants the store holds. Records that name no settings at all (written before serbench
recorded them) cannot be checked: they fill their name's row, and the tables say so.

Metrics are recomputed from ``predictions.parquet`` with
:func:`serbench.experiments.metrics.summarize`; the numbers stored in ``run.json``
are only compared against them (a disagreement becomes a warning), never shown.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from serbench.errors import SerbenchError
from serbench.experiments.cross import is_cross_name
from serbench.experiments.store import RunResult, StoreError
from serbench.experiments.store import load_run as read_run
from serbench.settings import runs_root
from serbench.systems.experiment import Experiment, PlannedRun, load_experiment
from serbench.systems.identity import Identity, differences, identity_of, reference_identity, show_value

#: The experiment whose declarations and reported figures the tables follow unless told otherwise.
DEFAULT_EXPERIMENT = "jiang2019"
#: Identity fields a record written before identities existed may lack (None there: not recorded, not different).
UNRECORDED_OK = ("protocol",)
#: How many differing settings a variant's row name lists before "+k more" (the notes list them all).
TAG_ITEMS = 3

# Folder names under <runs>/<corpus>/ that are not systems: the default output of `serbench tables`.
RESERVED_DIRS = frozenset({"tables", "report"})


class ReportError(SerbenchError):
    """The results store cannot be turned into tables (bad run folder, nothing to compare)."""


class EmptyStoreError(ReportError):
    """No complete run exists for the corpus; the message says which commands produce them."""


@dataclass(frozen=True)
class SystemSpec:
    """What a system name means, e.g. ``IS10-svm-linear-spknorm`` or ``cnn-sru-N5``.

    ``kind`` is ``"baseline"``, ``"deep"``, ``"other"`` (a name no registered system
    claims) or ``"variant"`` (a run stored under a name whose settings differ from what the
    experiment declares for that name: its ``name`` is the row name, ``cnn-sru-N3 [profile=tiny]``,
    ``stored`` the folder name, ``of_kind`` what it would otherwise be); ``system`` the registered
    system; ``model`` a deep system's variant without its N and normalization (``cnn-sru``,
    ``cnn-sru-fuse75``, ``crnn-mk-nomk``); ``table`` where the reports show it (the registered
    system's ``table``). ``check`` says how the run relates to the experiment file: ``declared``
    (its identity is the file's declaration for the name), ``profile`` (a name the file does not
    declare; it follows the file's profile), ``unrecorded`` (the record names no settings),
    ``variant``, or ``""`` (not checked: an unknown system). ``differs``: (setting, value,
    declared value) for each identity field that differs from the declaration.
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
    stored: str = ""
    of_kind: str = ""
    variant: str = ""
    check: str = ""
    differs: tuple[tuple[str, Any, Any], ...] = ()
    identity: Identity | None = field(default=None, compare=False)
    planned: bool = False

    @property
    def is_variant(self) -> bool:
        return self.kind == "variant"

    def setting(self, key: str, default: Any = None) -> Any:
        """One resolved setting of the run (from its identity), or ``default``."""
        return self.identity.settings.get(key, default) if self.identity is not None else default

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

    ``runs``: row name -> run: for each stored name the run whose identity the experiment
    declares (``cnn-sru-N3``), and one row per other identity (``cnn-sru-N3 [profile=tiny]``),
    the latest complete run of each; ``older``: run ids passed over per row; ``variants``:
    stored name -> its variant rows; ``absent``: stored name -> why its row is missing although
    runs lie under it; ``partial``: ``*.partial`` folders ignored; ``skipped``: (folder, reason)
    of folders that could not be read; ``warnings``: e.g. run.json metrics disagreeing with the
    predictions, rows of different label sets or protocols. ``experiment``: the experiment file
    the rows are checked against (its declarations and reported figures).
    """

    corpus: str
    root: Path
    runs: dict[str, RunResult] = field(default_factory=dict)
    older: dict[str, list[str]] = field(default_factory=dict)
    partial: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    experiment: Experiment | None = None
    variants: dict[str, list[str]] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)
    planned: list[PlannedRun] = field(default_factory=list)

    def get(self, system: str) -> RunResult | None:
        return self.runs.get(system)

    def specs(self) -> list[SystemSpec]:
        return [r.spec for r in self.runs.values()]

    @property
    def declared(self) -> dict[str, PlannedRun]:
        """Store name -> the run the experiment declares under it on this corpus (the first, seed 0 first)."""
        out: dict[str, PlannedRun] = {}
        for p in sorted(self.planned, key=lambda p: p.seed != 0):
            out.setdefault(p.name, p)
        return out

    @property
    def experiment_label(self) -> str:
        """How the notes name the experiment file: ``jiang2019.toml``, or its name."""
        exp = self.experiment
        if exp is None:
            return "the experiment"
        return exp.path.name if exp.path is not None else exp.name

    def find(self, identity: Identity) -> RunResult | None:
        """The shown run (a row or a variant) with this identity, or None."""
        for run in self.runs.values():
            mine = getattr(run.spec, "identity", None)
            if mine is not None and same_identity(mine, identity):
                return run
        return None

    def notes(self) -> list[str]:
        """Human-readable lines about what was ignored or passed over; empty when nothing was."""
        lines: list[str] = []
        if self.partial:
            names = ", ".join(f"{p.parent.name}/{p.name}" for p in self.partial)
            lines.append(f"{len(self.partial)} partial run folder(s) ignored (incomplete): {names}")
        for system, ids in sorted(self.older.items()):
            lines.append(f"{system}: using latest run {self.runs[system].run_id}; "
                         f"{len(ids)} older complete run(s) with the same settings not shown: {', '.join(ids)}")
        for name, why in sorted(self.absent.items()):
            lines.append(why)
        for path, reason in self.skipped:
            lines.append(f"skipped {path}: {reason}")
        lines.extend(self.warnings)
        return lines


def resolve_experiment(experiment: "Experiment | str | Path | None" = None) -> Experiment:
    """The experiment the tables follow: an :class:`Experiment`, a file, a shipped name, or :data:`DEFAULT_EXPERIMENT`."""
    if isinstance(experiment, Experiment):
        return experiment
    return load_experiment(experiment if experiment is not None else DEFAULT_EXPERIMENT)


def collect(corpus: str, runs: str | Path | None = None, experiment: "Experiment | str | Path | None" = None
            ) -> Collection:
    """Find the run of every stored name's row, and every variant, under ``<runs>/<corpus>/`` (module docstring).

    ``runs`` defaults to :func:`serbench.settings.runs_root`; ``experiment`` (a file, a shipped
    name or an :class:`Experiment`; default :data:`DEFAULT_EXPERIMENT`) declares what each name's
    row is and holds the figures the tables print as the paper's. A missing corpus folder gives
    an empty :class:`Collection` (callers decide how to report that), not an error.
    """
    from serbench.corpora import check_corpus_name

    try:
        corpus = check_corpus_name(corpus)
    except SerbenchError as exc:
        raise ReportError(f"--corpus: {exc}") from None
    exp = resolve_experiment(experiment)
    root = runs_root(runs) / corpus
    out = Collection(corpus=corpus, root=root, experiment=exp, planned=exp.plan(corpus))
    if not root.is_dir():
        return out
    declared = out.declared
    for system_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if system_dir.name in RESERVED_DIRS or system_dir.name.startswith(".") or is_cross_name(system_dir.name):
            continue   # cross-corpus runs (trained on another corpus) have their own tables: serbench cross-tables
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
        if candidates:
            _place(out, system_dir.name, candidates, declared.get(system_dir.name))
    out.warnings.extend(_label_set_warnings(out.runs))
    out.warnings.extend(_protocol_warnings(out.runs))
    return out


class Shown(RunResult):
    """A stored run as the tables show it: ``system`` is its row name (a variant's ``cnn-sru-N3 [profile=tiny]``)."""

    row: str = ""

    @property
    def system(self) -> str:  # type: ignore[override]
        return self.row or super().system


def _shown(run: RunResult, row: str) -> RunResult:
    shown = Shown(path=run.path, record=run.record, predictions=run.predictions, metrics=run.metrics, spec=run.spec)
    shown.row = row
    return shown


def settings_recorded(config: dict) -> bool:
    """Whether a run record says which settings ran: an identity, or every setting (with its profile)."""
    settings = config.get("settings")
    return isinstance(config.get("identity"), dict) or (isinstance(settings, dict) and "profile" in settings)


def same_identity(ident: Identity, reference: Identity) -> bool:
    """Equal hashes; a record written before identities existed also matches when it differs only in a
    field it did not record (:data:`UNRECORDED_OK`)."""
    return ident.hash == reference.hash or (ident.legacy and not identity_diff(ident, reference))


def identity_diff(ident: Identity, reference: Identity) -> dict[str, tuple[Any, Any]]:
    """:func:`~serbench.systems.identity.differences`, less the fields an older record did not record."""
    diff = differences(ident.fields, reference.fields)
    if ident.legacy:
        diff = {k: v for k, v in diff.items() if not (k in UNRECORDED_OK and v[0] is None)}
    return diff


def _recorded_profile(run: RunResult) -> str | None:
    config = run.record.get("config") or {}
    value = (config.get("settings") or {}).get("profile") or config.get("profile")
    return str(value) if value else None


def _reference(name: str, ident: Identity, planned: PlannedRun | None, exp: Experiment) -> Identity | None:
    if planned is not None:
        return planned.identity
    return reference_identity(name, ident, profile=exp.profile)


def _tag_items(name: str, run: RunResult, ident: Identity, ref: Identity, planned: PlannedRun | None,
               exp: Experiment) -> list[str]:
    """``profile=tiny`` when the run's profile explains its settings, then each other differing field as ``key=value``."""
    diff = identity_diff(ident, ref)
    settings_keys = set(ident.settings) | set(ref.settings)
    items: list[str] = []
    profile = _recorded_profile(run)
    declared_profile = planned.profile if planned is not None else exp.profile
    if profile and profile != declared_profile:
        alt = reference_identity(name, ident, profile=profile, overrides=planned.overrides if planned else None)
        if alt is not None and alt.fields.get("settings") != ref.fields.get("settings"):
            items.append(f"profile={profile}")
            rest = differences(ident.fields, alt.fields)
            diff = {k: v for k, v in diff.items() if k not in settings_keys or k in rest}
    items += [f"{k}={show_value(v)}" for k, (v, _r) in diff.items()]
    return items


def _tag(items: list[str]) -> str:
    if len(items) > TAG_ITEMS:
        return ", ".join(items[:TAG_ITEMS]) + f" +{len(items) - TAG_ITEMS} more"
    return ", ".join(items) or "settings differ"


def _place(out: Collection, name: str, candidates: list[RunResult], planned: PlannedRun | None) -> None:
    """Group the complete runs under stored ``name`` by identity and give each group its row (module docstring)."""
    exp = out.experiment
    assert exp is not None
    groups: dict[str, list[tuple[RunResult, Identity | None]]] = {}
    for run in candidates:
        config = run.record.get("config") or {}
        try:
            ident = identity_of(config, name=name)
        except (SerbenchError, TypeError, ValueError, AttributeError):
            ident = None   # a record this version cannot read settings from: shown by name, unchecked
        key = ident.hash if ident is not None and settings_recorded(config) else "?"
        groups.setdefault(key, []).append((run, ident))
    latest: dict[str, tuple[RunResult, Identity | None]] = {}
    for key, members in groups.items():
        members.sort(key=lambda m: _recency(m[0]))
        latest[key] = members[-1]
    known = [(k, r, i) for k, (r, i) in latest.items() if k != "?" and i is not None]
    ref = _reference(name, known[0][2], planned, exp) if known else None
    row_key: str | None = None
    check = ""
    if ref is not None:
        matching = [k for k, _r, i in known if same_identity(i, ref)]
        if matching:
            row_key = max(matching, key=lambda k: _recency(latest[k][0]))
            check = "declared" if planned is not None else "profile"
    if row_key is None and "?" in latest:
        row_key, check = "?", ("unrecorded" if latest["?"][1] is not None else "")
    if row_key is None and ref is None and known:    # nothing to check against (unknown system or settings)
        row_key = max((k for k, _r, _i in known), key=lambda k: _recency(latest[k][0]))
    taken: set[str] = set()
    for key, (run, ident) in sorted(latest.items(), key=lambda kv: _recency(kv[1][0]), reverse=True):
        older = [r.run_id for r, _i in groups[key][:-1]]
        spec = run.spec
        if key == row_key:
            run.spec = _with(spec, stored=name, check=check, identity=ident,
                             planned=planned is not None and check == "declared")
            row = name
        else:
            if key == "?":
                items = ["settings not recorded"]
                diff: dict[str, tuple[Any, Any]] = {}
            else:
                assert ident is not None
                diff = identity_diff(ident, ref) if ref is not None else {}
                items = _tag_items(name, run, ident, ref, planned, exp) if ref is not None else [f"identity {key}"]
            row = f"{name} [{_tag(items)}]"
            if row in taken or row in out.runs:
                row = f"{name} [{_tag(items)}; {key}]"
            declared_too = ident is not None and any(same_identity(ident, p.identity) for p in out.planned)
            run.spec = _with(spec, name=row, kind="variant", of_kind=spec.kind, stored=name, variant=_tag(items),
                             check="variant", identity=ident, planned=declared_too,
                             differs=tuple((k, v, r) for k, (v, r) in diff.items()))
            run = _shown(run, row)
            out.variants.setdefault(name, []).append(row)
        taken.add(row)
        out.runs[row] = run
        if older:
            out.older[row] = older
    if row_key is None and ref is not None:
        declared_as = (f"the declaration in {out.experiment_label} (identity {ref.hash})" if planned is not None
                       else f"the {exp.profile} profile ({out.experiment_label} does not declare it; identity "
                       f"{ref.hash})")
        out.absent[name] = (f"{name}: no stored run matches {declared_as}, so its row is missing; stored under that "
                            f"name instead (variant rows): {', '.join(out.variants.get(name, []))}")


def _with(spec: SystemSpec, **changes: Any) -> SystemSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


def _protocol_of(run: RunResult) -> str | None:
    ident = getattr(run.spec, "identity", None)
    value = (ident.fields.get("protocol") if ident is not None else None) or (run.record.get("config") or {}).get(
        "protocol")
    return str(value) if value else None


def mixing_warnings(runs: "dict[str, RunResult] | Iterable[RunResult]") -> list[str]:
    """Warnings when ``runs`` were evaluated on different label sets or under different protocols."""
    items = sorted((runs.values() if isinstance(runs, dict) else runs), key=lambda r: r.system)
    return _label_set_warnings({r.system: r for r in items}) + _protocol_warnings({r.system: r for r in items})


def _label_set_warnings(runs: dict[str, "RunResult"]) -> list[str]:
    # Systems run on different emotion subsets are not comparable row by row: say so.
    sets: dict[tuple[str, ...], list[str]] = {}
    for name, run in sorted(runs.items()):
        sets.setdefault(tuple(sorted(set(run.predictions["true"]))), []).append(name)
    if len(sets) <= 1:
        return []
    parts = "; ".join(f"{list(k)}: {', '.join(v)}" for k, v in sets.items())
    return [f"systems were evaluated on different label sets, so their rows are not comparable: {parts}"]


def _protocol_warnings(runs: dict[str, "RunResult"]) -> list[str]:
    # Folds by speaker and folds by session are different protocols: their figures are not comparable.
    protocols: dict[str, list[str]] = {}
    for name, run in sorted(runs.items()):
        proto = _protocol_of(run)
        if proto is not None:
            protocols.setdefault(proto, []).append(name)
    if len(protocols) <= 1:
        return []
    parts = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(protocols.items()))
    return [f"systems were evaluated under different protocols, so their rows are not comparable: {parts}"]


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
