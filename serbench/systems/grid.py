"""The paper's grid of systems for one corpus, run where the store lacks them.

``make tables`` calls :func:`run_grid` and then renders the tables, so a re-run only trains
what is missing (or what an interrupted run left unfinished: each run resumes). All
missing systems go to the harness at once: on ``--workers N`` or a Dask cluster their
folds run concurrently; the store is finished run by run in the grid's order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from serbench.errors import SerbenchError
from serbench.executors import Executor, make_executor
from serbench.audio import reuse_file_facts
from serbench.experiments.harness import RunPlan, run_plans
from serbench.experiments.store import RunStore
from serbench.systems import registry
from serbench.systems.builtin.cnn_sru import PAPER_SEGMENTS
from serbench.systems.run import DataCache, prepare
from serbench.features.registry import PAPER_SETS as PAPER_FEATURES



def paper_systems() -> tuple[str, ...]:
    """CNN+SRU and its Table III ablations: the registered systems of the paper's deep tables."""
    return tuple(registry.names(table="cnn-sru"))


def other_systems() -> tuple[str, ...]:
    """The other seed papers' systems (the systems table)."""
    return tuple(registry.names(table="systems"))


@dataclass(frozen=True)
class GridItem:
    """One run of the grid: its store name, the registered system and its options."""

    system: str
    name: str
    options: dict = field(default_factory=dict, hash=False)


@dataclass
class GridOutcome:
    system: str
    action: str  # 'present' | 'ran' | 'failed'
    detail: str = ""


def item(name: str, options: dict, profile: str | None = None) -> GridItem:
    """The grid item of system ``name`` with ``options`` (its store name computed by the system itself)."""
    system = registry.get(name)
    opts = {k: v for k, v in options.items() if k in system.settings_class.fields()}
    s = system.settings(profile if system.kind == "deep" else None, opts)
    return GridItem(system.stored_name(s), name, options)


def paper_grid(*, baselines: bool = True, features: Sequence[str] = PAPER_FEATURES,
               classifiers: Sequence[str] = ("svm-linear",), speaker_norm: Sequence[bool] = (False, True),
               deep: bool = True, segments: Sequence[int] = PAPER_SEGMENTS, deep_models: Sequence[str] | None = None,
               systems: Sequence[str] = (), deep_speaker_norm: Sequence[bool] = (False,),
               profile: str | None = None) -> list[GridItem]:
    """The systems behind the paper's tables: SVM baselines (both normalization variants), CNN+SRU and
    its ablations at every N in ``segments``, then any of :func:`other_systems` named in ``systems``.

    ``deep_speaker_norm`` picks the normalization variants of every deep item: the paper's
    (``False``, the default) and/or per-speaker z-scored log-mel (``True``, stored with ``-spknorm``).
    """
    items: list[GridItem] = []
    if baselines:
        for classifier in classifiers:
            registry.get(classifier, kind="baseline")
        for feature in features:
            for classifier in classifiers:
                for norm in speaker_norm:
                    items.append(item(classifier, {"feature": feature, "speaker_norm": norm}))
    if deep:
        bad = [n for n in segments if not 1 <= int(n) <= 5]
        if bad:
            raise SerbenchError(f"--segments {bad}: the paper's N runs from 1 to 5")
        for model in (paper_systems() if deep_models is None else deep_models):
            if model not in paper_systems():
                raise SerbenchError(f"--models {model!r}: choose from {', '.join(paper_systems())}")
            for n in segments:
                for norm in deep_speaker_norm:
                    items.append(item(model, {"segments": int(n), "speaker_norm": norm}, profile))
    for model in systems:
        if model not in other_systems():
            raise SerbenchError(f"--systems {model!r}: choose from {', '.join(other_systems())} or all")
        for norm in deep_speaker_norm:
            items.append(item(model, {"speaker_norm": norm}, profile))
    return items


def present_systems(corpus: str, runs: str | Path | None = None) -> set[str]:
    """Systems with at least one complete run of ``corpus`` in the store."""
    df = RunStore(runs).list_runs(corpus)
    if df.empty:
        return set()
    return set(df.loc[df["status"] == "complete", "system"].astype(str))


def run_grid(corpus: str, root: str | Path, items: Iterable[GridItem], *, cache: str | Path | None = None,
             runs: str | Path | None = None, jobs: int = 1, seed: int = 0, emotions: Sequence[str] | None = None,
             profile: str = "fast", device: str = "auto", pretrained: str | Path | None = None,
             threads: int | None = None, force: bool = False, keep_going: bool = True,
             executor: Executor | None = None, workers: int | None = None, scheduler: str | None = None,
             log: Callable[[str], None] = print) -> list[GridOutcome]:
    """Run every item whose system has no complete run of ``corpus`` yet (all of them with ``force``).

    A system counts as present whatever settings its run used; use ``force`` (or a fresh
    ``runs`` folder) after changing settings. With ``keep_going`` one failing system is
    reported and the rest still run.
    """
    items = list(items)
    have = set() if force else present_systems(corpus, runs)
    outcomes: dict[str, GridOutcome] = {}
    todo = [it for it in items if it.system not in have]
    own = executor is None
    if own and todo:
        executor = make_executor(workers, scheduler, threads=threads,
                                 preload=tuple({m for it in todo for m in registry.get(it.name).preload}))
    try:
        with reuse_file_facts():
            plans = _plans(items, have, outcomes, DataCache(), executor, corpus=corpus, root=root,
                           pretrained=pretrained, profile=profile, seed=seed, cache=cache, jobs=jobs,
                           emotions=emotions, device=device, threads=threads, keep_going=keep_going, log=log)
            for out in run_plans(plans, store=RunStore(runs), executor=executor, keep_going=keep_going, log=log):
                name = out.plan.system
                if out.result is None:
                    outcomes[name] = GridOutcome(name, "failed", str(out.error))
                else:
                    outcomes[name] = GridOutcome(name, "ran", f"WA {100 * out.result.wa:.1f} UA "
                                                              f"{100 * out.result.ua:.1f}")
    finally:
        if own and executor is not None:
            executor.close()
    return [outcomes[it.system] for it in items if it.system in outcomes]


def _plans(items: list[GridItem], have: set[str], outcomes: dict, data: DataCache, executor: Executor | None, *,
           corpus: str, root, pretrained, profile: str, seed: int, cache, jobs: int, emotions, device: str,
           threads: int | None, keep_going: bool, log: Callable[[str], None]) -> Iterator[RunPlan]:
    """The plans of the items the store lacks, one at a time (the harness submits each as it comes)."""
    for i, it in enumerate(items, 1):
        if it.system in have:
            outcomes[it.system] = GridOutcome(it.system, "present")
            log(f"[{i}/{len(items)}] {it.system}: already in the store")
            continue
        options: dict[str, Any] = dict(it.options)
        if pretrained is not None:
            options["pretrained"] = str(pretrained)
        try:
            plan = prepare(it.name, corpus, root, profile=profile, overrides=options, seed=seed, cache=cache, jobs=jobs,
                           emotions=emotions, device=device, threads=threads, log=log, data_cache=data,
                           executor=executor)
        except SerbenchError as exc:
            if not keep_going:
                raise
            outcomes[it.system] = GridOutcome(it.system, "failed", str(exc))
            log(f"[{i}/{len(items)}] {it.system}: failed ({exc})")
            continue
        log(f"[{i}/{len(items)}] {it.system}: submitted")
        yield plan


__all__ = ["paper_grid", "run_grid", "present_systems", "GridItem", "GridOutcome", "paper_systems",
           "other_systems", "PAPER_SEGMENTS", "item"]
