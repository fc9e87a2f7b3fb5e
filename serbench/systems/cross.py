"""Cross-corpus evaluation, planning and running: every ordered pair of corpora as one-fold runs of the harness.

>>> from serbench.features import CorpusHandle
>>> corpora = [CorpusHandle.of("emodb", "data/emodb"), CorpusHandle.of("casia", "data/casia")]  # doctest: +SKIP
>>> plan = plan_cross(corpora, systems=[("svm-linear", {"feature": "IS10"})], adapt=["none", "corpus"])  # doctest: +SKIP
>>> outcomes = run_cross(plan, runs="runs", workers=2)                                             # doctest: +SKIP

:func:`plan_cross` decides the shared emotions (the intersection of the corpora's canonical
emotions, or ``emotions``, refused in one line if a corpus lacks one), each corpus's mapping of
its own labels to them, and the cells: one cross-corpus run per ordered pair (train, test),
system and ``adapt``, and one in-corpus run per corpus and system for the diagonal (the corpus's
default protocol, LOSO, on the same emotions; ``-spknorm`` for ``adapt=speaker``). Each cell has
its run identity (:mod:`serbench.systems.identity`); a cross-corpus cell's adds ``adapt`` and its
protocol is ``cross:A->B``. :func:`run_cross` runs the cells the store lacks (by identity, as
experiment files do) on an executor, all folds at once.

Store layout: a cross-corpus run trained on A and tested on B lives under the TEST corpus,
``<runs>/B/<name>-from-A[-adapt-corpus|-adapt-speaker]/<run_id>/``, e.g.
``runs/casia/IS10-svm-linear-from-emodb/``; its one fold is ``emodb->casia``. The in-corpus
reports skip these folders (:func:`serbench.experiments.cross.is_cross_name`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from serbench.experiments.cross import (
    CrossError, check_adapt, combine, describe_mapping, label_mapping, protocol_name, restrict_table, shared_emotions,
    stored_name,
)
from serbench.features.handle import CorpusHandle
from serbench.systems import registry
from serbench.systems.identity import Identity, extend_identity, settings_identity
from serbench.systems.runner import Job, Outcome, run_jobs, statuses

Log = Callable[[str], None]


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: ``train`` -> ``test`` (equal for the diagonal's in-corpus run).

    ``system``: the registered system; ``overrides``/``profile``: its settings; ``base``: the
    system's own stored name (``IS10-svm-linear``); ``name``: where the run is stored (the diagonal's
    is the in-corpus name, ``IS10-svm-linear`` or ``IS10-svm-linear-spknorm``).
    """

    train: str
    test: str
    system: str
    overrides: dict
    profile: str | None
    adapt: str
    base: str
    name: str
    identity: Identity
    seed: int = 0

    @property
    def diagonal(self) -> bool:
        return self.train == self.test

    @property
    def hash(self) -> str:
        return self.identity.hash

    @property
    def key(self) -> tuple[str, str]:
        """(store corpus, identity hash): identities do not name the corpus, the store's folder does."""
        return self.test, self.identity.hash

    @property
    def label(self) -> str:
        where = f"{self.train} (in-corpus)" if self.diagonal else f"{self.train}->{self.test}"
        return f"{self.name} {where}"


@dataclass
class CrossPlan:
    """The corpora, their shared ``emotions`` and label ``mappings``, and every :class:`Cell` to have."""

    corpora: dict[str, CorpusHandle]
    emotions: list[str]
    mappings: dict[str, dict]
    cells: list[Cell]
    load_features: Callable | None = field(default=None, repr=False)

    def describe(self) -> list[str]:
        """Lines for the output: the shared emotions and each corpus's mapping."""
        lines = [f"shared emotions: {', '.join(self.emotions)}"]
        lines += [f"  {describe_mapping(c, m)}" for c, m in self.mappings.items()]
        return lines


def _parse_corpus_arg(value: str | tuple[str, str] | CorpusHandle, *, cache: Any, jobs: int, option: str
                      ) -> CorpusHandle:
    if isinstance(value, CorpusHandle):
        return value
    if isinstance(value, tuple):
        name, root = value
    else:
        if "=" not in str(value):
            raise CrossError(f"{option} {value!r}: give NAME=DIR, e.g. {option} emodb=data/emodb")
        name, root = str(value).split("=", 1)
    if not root:
        raise CrossError(f"{option} {value!r}: give the corpus folder after '='")
    return CorpusHandle.of(name.strip(), root.strip(), cache=cache, jobs=jobs)


def corpus_handles(values: Sequence[str | tuple[str, str] | CorpusHandle], *, cache: Any = None, jobs: int = 1,
                   option: str = "--corpus") -> list[CorpusHandle]:
    """``NAME=DIR`` arguments as handles; a corpus named twice is refused."""
    out = [_parse_corpus_arg(v, cache=cache, jobs=jobs, option=option) for v in values]
    names = [h.name for h in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CrossError(f"{option}: corpus {', '.join(dupes)} named more than once; give each corpus once")
    return out


def _manifest(handle: CorpusHandle, feature: str, load_features: Callable | None) -> Any:
    """The corpus's manifest with every emotion (the scan; a test's loader's manifest when given)."""
    if load_features is None:
        return handle.manifest
    from serbench.experiments.inputs import load_feature_table

    full = CorpusHandle(handle.name, handle.root, handle.cache, handle.jobs, None, handle.executor)
    return load_feature_table(full, feature, load_features=load_features)[1]


def _settings(system: Any, profile: str | None, overrides: Mapping[str, Any]) -> Any:
    return system.settings(profile if system.kind == "deep" else None, dict(overrides))


def plan_cross(corpora: Sequence[CorpusHandle], *, systems: Sequence[tuple[str, Mapping[str, Any]]],
               pairs: Sequence[tuple[str, str]] | None = None, adapt: Sequence[str] = ("none",),
               emotions: Sequence[str] | None = None, seed: int = 0, profile: str | None = None,
               diagonal: bool = True, load_features: Callable | None = None) -> CrossPlan:
    """The cells of a cross-corpus evaluation (see the module docstring).

    ``systems``: (registered system, its overrides, e.g. ``{"feature": "IS10"}``); ``pairs``: the
    ordered (train, test) pairs (default: every ordered pair of ``corpora``); ``diagonal``: add each
    involved corpus's in-corpus run. ``load_features`` replaces the feature loader (tests).
    """
    handles = {h.name: h for h in corpora}
    if len(handles) < 2:
        raise CrossError("a cross-corpus evaluation needs at least 2 corpora: give --train and --test, or "
                         "--corpus twice or more")
    adapt = [check_adapt(a) for a in dict.fromkeys(adapt)]
    if pairs is None:
        pairs = [(a, b) for a in handles for b in handles if a != b]
    for a, b in pairs:
        if a == b:
            raise CrossError(f"--train {a} --test {b}: train and test corpora must differ (the in-corpus run is "
                             "the matrix's diagonal)")
    if not systems:
        raise CrossError("give at least one system (--system svm-linear --feature IS10)")
    resolved = []
    for name, overrides in systems:
        system = registry.get(name)
        s = _settings(system, profile, overrides)
        if bool(getattr(s, "speaker_norm", False)):
            raise CrossError(f"{name}: speaker_norm is the in-corpus variant; across corpora say --adapt speaker "
                             "(each corpus's speakers z-scored with their own statistics)")
        resolved.append((system, dict(overrides), s))
    feature = resolved[0][0].feature_set(resolved[0][2])
    manifests = {n: _manifest(h, feature, load_features) for n, h in handles.items()}
    shared = shared_emotions(manifests, emotions)
    mappings = {n: label_mapping(m, shared) for n, m in manifests.items()}
    involved = list(dict.fromkeys(c for p in pairs for c in p))
    cells: list[Cell] = []
    seen: set[tuple[str, str]] = set()

    def add(cell: Cell) -> None:
        if cell.key not in seen:
            seen.add(cell.key)
            cells.append(cell)

    from serbench.experiments.protocol import resolve_protocol

    for system, overrides, s in resolved:
        base = system.stored_name(s)
        if diagonal:
            for a in adapt:
                diag_over = {**overrides, "speaker_norm": a == "speaker"}
                sd = _settings(system, profile, diag_over)
                for c in involved:
                    ident = settings_identity(system.name, sd, protocol=resolve_protocol(c).name, emotions=shared,
                                              seed=seed)
                    add(Cell(c, c, system.name, diag_over, profile, a, base, system.stored_name(sd), ident, seed))
        for a in adapt:
            for tr, te in pairs:
                ident = extend_identity(settings_identity(system.name, s, protocol=protocol_name(tr, te),
                                                          emotions=shared, seed=seed), adapt=a)
                add(Cell(tr, te, system.name, overrides, profile, a, base, stored_name(base, tr, a), ident, seed))
    return CrossPlan(handles, shared, mappings, cells, load_features)


def in_corpus_identity(cell: Cell, corpus: str, emotions: Sequence[str]) -> str:
    """The identity hash of the in-corpus run (``corpus``'s diagonal) that a cross-corpus cell is compared to."""
    from serbench.experiments.protocol import resolve_protocol

    system = registry.get(cell.system)
    sd = _settings(system, cell.profile, {**cell.overrides, "speaker_norm": cell.adapt == "speaker"})
    return settings_identity(system.name, sd, protocol=resolve_protocol(corpus).name, emotions=list(emotions),
                             seed=cell.seed).hash


def jobs(plan: CrossPlan, *, device: str = "auto", threads: int | None = None, command: str | None = None,
         log: Log | None = None) -> list[Job]:
    """The plan's cells as the runner's jobs (``planned`` is the :class:`Cell`), sharing one data cache."""
    data = _Data(plan)
    return [Job(cell, cell.test, cell.hash, cell.system, cell.label,
                partial(prepare_cell, cell, plan, data, device=device, threads=threads, command=command, log=log))
            for cell in plan.cells]


def status(plan: CrossPlan, runs: str | Path | None = None) -> dict[tuple[str, str], str]:
    """Cell key -> 'done' | 'partial' | 'missing' (a complete run with the cell's identity is stored)."""
    planned = jobs(plan)
    return {j.planned.key: state for j, state in zip(planned, statuses(planned, runs))}


class _Data:
    """Per-corpus caches of feature tables and datasets, shared by the diagonal and the cross cells."""

    def __init__(self, plan: CrossPlan) -> None:
        from serbench.systems.run import DataCache

        self.plan = plan
        self.caches: dict[str, Any] = {c: DataCache() for c in plan.corpora}
        self.cross: dict[tuple, Any] = {}

    def handle(self, corpus: str) -> CorpusHandle:
        h = self.plan.corpora[corpus]
        return CorpusHandle(h.name, h.root, h.cache, h.jobs, tuple(self.plan.emotions), h.executor)

    def dataset(self, corpus: str, system: Any, s: Any) -> tuple[Any, Any]:
        """``(dataset, excluded)`` of one corpus on the shared emotions, unnormalized."""
        from serbench.experiments.inputs import feature_dataset, load_feature_table, melseg_dataset

        handle = self.handle(corpus)
        cache = self.caches[corpus]
        subset = tuple(self.plan.emotions)
        if system.inputs == "features":
            feature = system.feature_set(s)
            table = cache.get(("table", feature, subset), lambda: load_feature_table(
                handle, feature, load_features=self.plan.load_features))
            return cache.get(("cross", feature, subset), lambda: feature_dataset(
                handle, feature, table=restrict_table(table, subset)))
        table = cache.get(("table", "melseg", subset), lambda: handle.arrays("melseg"))
        return cache.get(("cross", "melseg", subset), lambda: melseg_dataset(
            handle, table=restrict_table(table, subset)))


def _train_view(data: Any, rows: Any) -> Any:
    """The training rows of a cross-corpus dataset as a dataset of their own (for a system's data checks)."""
    import numpy as np

    from serbench.experiments.dataset import Dataset

    rows = np.asarray(rows)
    inputs = data.inputs[rows] if isinstance(data.inputs, np.ndarray) else [data.inputs[i] for i in rows]
    return Dataset(corpus=data.meta.get("train", data.corpus), labels=data.labels, y=data.y[rows],
                   speakers=data.speakers[rows], utterance_ids=data.utterance_ids[rows], inputs=inputs,
                   fingerprint=data.fingerprint, groups=None, meta=data.meta)


def prepare_cell(cell: Cell, plan: CrossPlan, data: _Data, *, device: str = "auto", threads: int | None = None,
                 command: str | None = None, log: Log | None = None) -> Any:
    """The :class:`~serbench.experiments.harness.RunPlan` of one cell (the diagonal's through ``prepare``)."""
    from serbench.experiments.inputs import excluded_record
    from serbench.systems.run import data_warnings, default_command, prepare

    say = log or (lambda _m: None)
    if cell.diagonal:
        run = prepare(cell.system, data.handle(cell.train), profile=cell.profile, overrides=cell.overrides,
                      seed=cell.seed, device=device, threads=threads, command=command, log=log,
                      data_cache=data.caches[cell.train], load_features=plan.load_features)
        return run
    from serbench.experiments.harness import RunPlan

    system = registry.get(cell.system)
    s = _settings(system, cell.profile, cell.overrides)
    tr, excl_tr = data.dataset(cell.train, system, s)
    te, excl_te = data.dataset(cell.test, system, s)
    key = (cell.train, cell.test, system.feature_set(s), system.inputs, cell.adapt)
    if key not in data.cross:
        data.cross[key] = combine(cell.train, tr, cell.test, te, emotions=plan.emotions, adapt=cell.adapt)
    cross = data.cross[key]
    system.check_data(_train_view(cross.data, cross.fold.train), s)
    mapping = {}
    for corpus, ds in ((cell.train, tr), (cell.test, te)):
        m = dict(plan.mappings[corpus])
        counts = {e: 0 for e in plan.emotions}
        for e in ds.true_labels(range(len(ds))):
            counts[str(e)] += 1
        m["n"] = counts   # the rows this run used, per emotion
        mapping[corpus] = m
    warnings = data_warnings(cross.data, [cross.fold])
    for w in warnings:
        say(f"WARNING: {w}")
    description = system.describe(s)
    config = {
        "system_type": system.name, "kind": system.kind, "settings": s.as_dict(), "profile": s.profile,
        "corpus": cell.test, "root": str(plan.corpora[cell.test].root), "protocol": protocol_name(cell.train, cell.test),
        "emotions": list(plan.emotions), "seed": int(cell.seed), "speaker_norm": False,
        "device": str(device) if system.kind == "deep" else None,
        "inputs": {**{k: v for k, v in cross.data.meta.items() if k != "load_s"},
                   "feature_key": cell.identity.fields.get("feature_key")},
        "cross": {"train": cell.train, "test": cell.test, "adapt": cell.adapt, "base": cell.base,
                  "train_root": str(plan.corpora[cell.train].root), "test_root": str(plan.corpora[cell.test].root),
                  "emotions": list(plan.emotions), "mapping": mapping,
                  "in_corpus": {c: in_corpus_identity(cell, c, plan.emotions) for c in (cell.train, cell.test)},
                  "speakers": "stored as <corpus>:<speaker>",
                  "adapt_means": {"none": "nothing is fitted on the test corpus",
                                  "corpus": "each corpus z-scored with its own mean and sd (label-free)",
                                  "speaker": "each speaker z-scored with its own mean and sd (label-free)"}[cell.adapt]},
        "identity": {"hash": cell.hash, "fields": cell.identity.fields}, **description,
    }
    return RunPlan(corpus=cell.test, system=cell.name, kind=system.kind, config=config,
                   command=command or default_command(), seed=int(cell.seed), data=cross.data, folds=[cross.fold],
                   task=system, payload=s, resources=system.resources(s, str(device)),
                   extra={"excluded": {cell.train: excluded_record(excl_tr, len(tr) + len(excl_tr)),
                                       cell.test: excluded_record(excl_te, len(te) + len(excl_te))},
                          "warnings": warnings},
                   device=str(device), threads=threads, summarize=system.summarize,
                   load_s=float(cross.data.meta.get("load_s") or 0.0))


def run_cross(plan: CrossPlan, *, runs: str | Path | None = None, executor: Any = None, workers: int | None = None,
              scheduler: str | None = None, threads: int | None = None, device: str = "auto", force: bool = False,
              keep_going: bool = False, command: str | None = None, log: Log = print) -> list[Outcome]:
    """Run the cells of ``plan`` the store lacks (all with ``force``); one outcome per cell (its ``planned``), in
    plan order."""
    def attach(ex: Any) -> None:
        for h in plan.corpora.values():
            CorpusHandle.of(h, executor=ex)

    return run_jobs(jobs(plan, device=device, threads=threads, command=command, log=log), runs=runs,
                    executor=executor, workers=workers, scheduler=scheduler, threads=threads, force=force,
                    keep_going=keep_going, on_executor=attach, log=log)


__all__ = ["Cell", "CrossPlan", "corpus_handles", "in_corpus_identity", "jobs", "plan_cross", "prepare_cell",
           "run_cross", "status"]
