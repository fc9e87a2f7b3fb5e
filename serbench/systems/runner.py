"""One runner for planned runs, in-corpus or cross-corpus.

A planned run is known by the corpus whose store will hold it and its identity hash
(:mod:`serbench.systems.identity`). The runner skips what the store already holds complete
under that identity, builds one executor for the rest (preloading what their systems need),
prepares each run as late as possible (so a failing preparation is reported and the others
go on) and hands the prepared plans to the one harness, :func:`serbench.experiments.harness.run_plans`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from serbench.errors import SerbenchError
from serbench.systems import registry
from serbench.systems.identity import identity_of

Log = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """One planned run: ``planned`` is what the caller planned (an experiment file's run, a cross-corpus cell)."""

    planned: Any
    corpus: str
    hash: str
    system: str
    label: str
    prepare: Callable[[], Any]


@dataclass
class Outcome:
    """What happened to one planned run: 'done' (already stored), 'ran' or 'failed'."""

    planned: Any
    action: str
    detail: str = ""
    path: Path | None = None


def stored_identities(corpus: str, runs: str | Path | None = None) -> dict[str, list[tuple[str, Path, str]]]:
    """Identity hash -> [(stored name, run folder, status)] of every run of ``corpus`` in the store."""
    from serbench.experiments.store import RUN_JSON, RunStore

    out: dict[str, list[tuple[str, Path, str]]] = {}
    for path in RunStore(runs).run_dirs(corpus):
        try:
            rec = json.loads((path / RUN_JSON).read_text(encoding="utf-8"))
            ident = identity_of(rec.get("config") or {}, name=str(rec.get("system") or path.parent.name))
        except (OSError, ValueError, SerbenchError, AttributeError):
            continue   # an unreadable record is shown by `serbench runs`; it is not a finished run
        if ident is None:
            continue
        out.setdefault(ident.hash, []).append((path.parent.name, path, str(rec.get("status"))))
    return out


def stored_status(hash: str, stored: Mapping[str, list]) -> str:
    """'done' (a complete run with this identity is stored), 'partial' (only an interrupted one) or 'missing'."""
    found = stored.get(hash) or []
    if any(status == "complete" for _n, _p, status in found):
        return "done"
    return "partial" if found else "missing"


def statuses(jobs: Sequence[Job], runs: str | Path | None = None) -> list[str]:
    """The stored status of each job (each corpus's store read once)."""
    stored = {c: stored_identities(c, runs) for c in {j.corpus for j in jobs}}
    return [stored_status(j.hash, stored[j.corpus]) for j in jobs]


def run_jobs(jobs: Sequence[Job], *, runs: str | Path | None = None, executor: Any = None,
             workers: int | None = None, scheduler: str | None = None, threads: int | None = None,
             force: bool = False, keep_going: bool = True, on_executor: Callable[[Any], None] | None = None,
             log: Log = print) -> list[Outcome]:
    """Run the jobs the store lacks (all of them with ``force``); one outcome per job, in the order given.

    ``on_executor`` receives the executor (the caller's, or the one made here) before any job is
    prepared, so that corpus handles can extract on it. Missing runs' folds go to the executor at
    once; with ``keep_going`` a failing run is reported and the rest go on.
    """
    from serbench.audio import reuse_file_facts
    from serbench.executors import make_executor
    from serbench.experiments.harness import run_plans
    from serbench.experiments.store import RunStore

    states = ["missing"] * len(jobs) if force else statuses(jobs, runs)
    outcomes: dict[int, Outcome] = {}
    todo = []
    for i, (job, state) in enumerate(zip(jobs, states)):
        if state == "done":
            outcomes[i] = Outcome(job.planned, "done")
            log(f"{job.label} ({job.hash}): already in the store")
        else:
            todo.append(i)
    own = executor is None
    if own and todo:
        executor = make_executor(workers, scheduler, threads=threads,
                                 preload=tuple({m for i in todo for m in registry.get(jobs[i].system).preload}))
    if on_executor is not None:
        on_executor(executor)
    by_identity = {(jobs[i].corpus, jobs[i].hash): i for i in todo}

    def plans() -> Iterator[Any]:
        for i in todo:
            job = jobs[i]
            try:
                plan = job.prepare()
            except SerbenchError as exc:
                if not keep_going:
                    raise
                outcomes[i] = Outcome(job.planned, "failed", str(exc))
                log(f"{job.label}: failed ({exc})")
                continue
            if plan.config["identity"]["hash"] != job.hash:
                raise SerbenchError(f"{job.label}: the prepared run's identity {plan.config['identity']['hash']} "
                                    f"is not the planned {job.hash}; report this as a bug")
            log(f"{job.label} ({job.hash}): submitted")
            yield plan

    try:
        with reuse_file_facts():
            for out in run_plans(plans(), store=RunStore(runs), executor=executor, keep_going=keep_going, log=log):
                i = by_identity[(out.plan.corpus, out.plan.config["identity"]["hash"])]
                if out.result is None:
                    outcomes[i] = Outcome(jobs[i].planned, "failed", str(out.error))
                else:
                    outcomes[i] = Outcome(jobs[i].planned, "ran", f"WA {100 * out.result.wa:.1f} "
                                          f"UA {100 * out.result.ua:.1f}", out.result.path)
    finally:
        if own and executor is not None:
            executor.close()
    return [outcomes[i] for i in range(len(jobs)) if i in outcomes]


__all__ = ["Job", "Outcome", "run_jobs", "stored_identities", "stored_status", "statuses"]
