"""The one experiment harness: start or resume runs, run their missing folds as tasks, store each fold.

Every system, SVM or deep, runs through :func:`run_plans`:

1. open each run in the results store (``resume``: the latest partial run with the same
   system, configuration, labels and data continues, keeping its finished folds);
2. share each run's :class:`~serbench.experiments.dataset.Dataset` with the executor once,
   and submit one task per fold still missing (several runs' folds run concurrently);
3. as each task completes, build its predictions table
   (:func:`~serbench.experiments.dataset.predictions_frame`) and write the fold atomically,
   so a killed client loses nothing already returned;
4. finish the runs in the order given (metrics recomputed from the stored predictions),
   whatever order their folds completed in, and return one :class:`RunResult` per run.

A fold task is ``plan.task(data, plan.payload, fold, ctx)`` returning a
:class:`~serbench.experiments.dataset.FoldOutput`; it trains on ``fold.train`` rows only
and scores ``fold.test`` rows. It runs in this process, in a worker process or on a Dask
worker (:mod:`serbench.executors`), so it must be a module-level function or a bound
method of a module-level object, and everything it needs must travel in ``payload``.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from serbench.errors import SerbenchError
from serbench.executors import Executor, InProcess
from serbench.experiments.dataset import Dataset, FoldOutput, predictions_frame
from serbench.experiments.metrics import unweighted_accuracy
from serbench.experiments.protocol import Fold
from serbench.experiments.store import RunResult, RunStore, RunWriter, jsonable, load_run

Log = Callable[[str], None]


class HarnessError(SerbenchError):
    """A run could not be completed (a fold task failed)."""


@dataclass
class FoldContext:
    """What a fold task gets besides its data: where it is, how to log, where to checkpoint.

    ``checkpoint_dir`` is None where the task runs on another machine (Dask): it then trains
    without per-epoch checkpoints (a lost worker's fold restarts). ``log``/``on_epoch`` are
    callbacks of the client when the task runs in-process; elsewhere ``log`` is None and
    :meth:`say` writes to the worker's stderr.
    """

    run_id: str
    system: str
    fold: str
    seed: int
    checkpoint_dir: Path | None = None
    device: str = "cpu"
    threads: int | None = None
    log: Log | None = None
    on_epoch: Callable[[dict], None] | None = None

    def say(self, msg: str) -> None:
        if self.log is not None:
            self.log(msg)
        else:
            print(f"[{self.system} {self.fold}] {msg}", file=sys.stderr, flush=True)


@dataclass
class RunPlan:
    """Everything the harness needs to run one system on one corpus.

    ``system``: the store name (``IS10-svm-linear``, ``cnn-sru-N3``); ``config``: the run
    record's configuration (every setting); ``payload``: what ``task`` needs besides the data
    (picklable); ``resources``: worker resources each fold task needs (``{"GPU": 1}``);
    ``summarize``: turns the folds' ``info["timings"]`` into run-level timings (optional);
    ``load_s``: seconds the client spent loading the data.
    """

    corpus: str
    system: str
    kind: str
    config: dict
    command: str
    seed: int
    data: Dataset
    folds: list[Fold]
    task: Callable[[Dataset, Any, Fold, FoldContext], FoldOutput]
    payload: Any = None
    resources: dict | None = None
    extra: dict = field(default_factory=dict)
    device: str = "cpu"
    threads: int | None = None
    summarize: Callable[[dict[str, dict]], dict] | None = None
    load_s: float = 0.0


@dataclass
class RunOutcome:
    """How one plan ended: its result, or the error that stopped it (``keep_going``)."""

    plan: RunPlan
    result: RunResult | None = None
    error: str | None = None
    resumed_folds: list[str] = field(default_factory=list)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "fold"


def _run_task(data: Dataset, task: Callable, payload: Any, fold: Fold, ctx: FoldContext) -> tuple[FoldOutput, float]:
    """Worker side of a fold: the system's task, timed."""
    t0 = time.perf_counter()
    out = task(data, payload, fold, ctx)
    if not isinstance(out, FoldOutput):
        raise HarnessError(f"{ctx.system} fold {ctx.fold}: the fold task returned {type(out).__name__}, "
                           "not a FoldOutput")
    return out, time.perf_counter() - t0


class _Run:
    """Client-side state of one plan while its folds are out."""

    def __init__(self, plan: RunPlan, writer: RunWriter) -> None:
        self.plan = plan
        self.writer = writer
        self.done_before = set(writer.finished_folds())
        self.todo = [f for f in plan.folds if f.name not in self.done_before]
        self.pending = {f.name for f in self.todo}
        self.error: str | None = None
        self.outcome: RunOutcome | None = None


def run_plans(plans: Iterable[RunPlan], *, store: RunStore, executor: Executor | None = None,
              resume: bool = True, keep_going: bool = False, log: Log | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> list[RunOutcome]:
    """Run every plan's missing folds on ``executor`` (default: in this process) and finish the runs.

    Returns one :class:`RunOutcome` per plan, in the order given. Without ``keep_going`` the
    first failing fold stops everything and raises :class:`HarnessError` (or the task's own
    :class:`SerbenchError`); folds already stored stay, so the same call resumes. With
    ``keep_going`` a failing run is reported in its outcome and the others go on. A run that
    fails before storing any fold leaves no partial folder behind (unless it was resumed).
    ``on_epoch`` (in-process only) gets ``{"system", "fold", ...epoch record}``.
    """
    say = log or (lambda _m: None)
    executor = executor or InProcess()
    local = isinstance(executor, InProcess)
    remote = type(executor).__name__ == "DaskExecutor"
    t_start = time.perf_counter()

    runs: list[_Run] = []
    tokens: dict[int, Any] = {}
    futures: dict[Any, tuple[_Run, Fold]] = {}

    def submit(run: _Run) -> None:
        plan = run.plan
        if not run.todo:
            return
        if id(plan.data) not in tokens:
            tokens[id(plan.data)] = executor.share(plan.data)
        for fold in run.todo:
            ctx = FoldContext(run_id=run.writer.run_id, system=plan.system, fold=fold.name, seed=plan.seed,
                              checkpoint_dir=None if remote else run.writer.path / "checkpoints" / _safe(fold.name),
                              device=plan.device, threads=plan.threads,
                              log=(lambda m, _s=plan.system, _f=fold.name: say(f"  {_s} {_f}: {m}")) if local else None,
                              on_epoch=((lambda ev, _s=plan.system, _f=fold.name:
                                         on_epoch({"system": _s, "fold": _f, **ev}))
                                        if (on_epoch is not None and local) else None))
            fut = executor.submit(_run_task, tokens[id(plan.data)], plan.task, plan.payload, fold, ctx,
                                  resources=plan.resources)
            futures[fut] = (run, fold)

    try:
        # Plans may come from a generator that loads each one's data: a plan's folds are submitted as
        # soon as it is ready, so worker processes compute while the next plan loads.
        for plan in plans:
            writer = store.start_run(plan.corpus, plan.system, plan.config, plan.data.labels, plan.command,
                                     kind=plan.kind, seed=plan.seed, fingerprint=plan.data.fingerprint,
                                     resume=resume, extra=plan.extra)
            run = _Run(plan, writer)
            runs.append(run)
            if run.done_before:
                say(f"{plan.system}: resuming {writer.path.name} ({len(run.done_before)}/{len(plan.folds)} "
                    "folds finished)")
            submit(run)
    except BaseException:
        for other in futures:
            try:
                other.cancel()
            except Exception:  # best effort: a running task finishes on its own
                pass
        for run in runs:  # nothing was stored yet: leave no empty partial runs behind
            _discard_if_empty(run)
        raise
    n_tasks = len(futures)
    if n_tasks:
        say(f"{n_tasks} fold task(s) of {sum(bool(r.todo) for r in runs)} run(s) on {executor.describe()}")

    next_finish = 0

    def finish_ready() -> None:
        nonlocal next_finish
        while next_finish < len(runs) and (runs[next_finish].error is not None or not runs[next_finish].pending):
            _conclude(runs[next_finish], executor.describe(), t_start, say)
            next_finish += 1

    finish_ready()  # runs that were complete except for finishing
    lost: dict[Any, list[str]] = {}

    def on_lost(fut: Any, what: str) -> None:
        """A worker died running this fold: say so now, note it in the fold's record."""
        if fut not in futures:
            return
        run, fold = futures[fut]
        lost.setdefault(fut, []).append(what)
        again = " from its last epoch checkpoint, if it wrote one," if run.plan.kind == "deep" and not remote else ""
        say(f"  {run.plan.system} {fold.name}: {what} while running this fold; the fold is rerun{again} on "
            "another worker (the other folds go on)")

    executor.on_lost = on_lost
    try:
        for fut in executor.as_completed(list(futures)):
            run, fold = futures.pop(fut)
            if run.error is not None:
                continue
            try:
                out, wall = fut.result()
                _store_fold(run, fold, out, wall, say, lost=lost.pop(fut, []))
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt) or not keep_going:
                    raise
                run.error = f"fold {fold.name}: {exc}"
                say(f"{run.plan.system}: failed ({run.error})")
            finish_ready()
    except BaseException as exc:
        for other in futures:
            try:
                other.cancel()
            except Exception:  # best effort: a running task finishes on its own
                pass
        for run in runs:
            _discard_if_empty(run)
        if isinstance(exc, SerbenchError) or not isinstance(exc, Exception):
            raise
        raise HarnessError(f"a fold task failed: {type(exc).__name__}: {exc}") from exc
    finish_ready()
    return [r.outcome for r in runs]  # type: ignore[misc]


def run_plan(plan: RunPlan, **kwargs: Any) -> RunResult:
    """:func:`run_plans` for one plan; raises on failure and returns its :class:`RunResult`."""
    outcome = run_plans([plan], **kwargs)[0]
    if outcome.result is None:
        raise HarnessError(f"{plan.system}: {outcome.error}")
    return outcome.result


def _store_fold(run: _Run, fold: Fold, out: FoldOutput, wall: float, say: Log, lost: list[str] | None = None) -> None:
    plan = run.plan
    frame = predictions_frame(plan.data, fold.name, fold.test, out)
    info = dict(out.info)
    if lost:   # the record says the fold ran more than once (its wall time is the last run's)
        info["warnings"] = [*(info.get("warnings") or []),
                            f"the worker process running this fold was lost {len(lost)} time(s) ({'; '.join(lost)}); "
                            "the fold was rerun on another worker"]
    timings = dict(info.get("timings") or {})
    timings.setdefault("wall_s", wall)
    info["timings"] = timings
    run.writer.write_fold(fold.name, frame, jsonable(info))
    shutil.rmtree(run.writer.path / "checkpoints" / _safe(fold.name), ignore_errors=True)
    run.pending.discard(fold.name)
    ua = unweighted_accuracy(frame["true"], frame["predicted"])
    k = [f.name for f in plan.folds].index(fold.name) + 1
    say(f"{plan.system} fold {k}/{len(plan.folds)} {fold.name}: n_test={len(fold.test)} UA={ua:.3f} "
        f"({timings['wall_s']:.1f} s)")
    for w in info.get("warnings") or []:   # collected by the fold task, one line per kind
        say(f"  WARNING ({fold.name}): {w}")


def _conclude(run: _Run, executor: str, t_start: float, say: Log) -> None:
    plan = run.plan
    if run.error is not None:
        _discard_if_empty(run)
        run.outcome = RunOutcome(plan, None, run.error, sorted(run.done_before))
        return
    fold_timings = {name: (run.writer.fold_info(name).get("timings") or {}) for name in run.writer.finished_folds()}
    walls = [float(t.get("wall_s") or 0.0) for t in fold_timings.values()]
    timings = {
        "load_features_s": plan.load_s,
        "folds_s": float(sum(walls)),
        "fold_wall_s_mean": float(np.mean(walls)) if walls else None,
        "total_s": plan.load_s + float(sum(walls)),
        "wall_s_this_invocation": time.perf_counter() - t_start,
        "folds_resumed": sorted(run.done_before),
        "executor": executor,
    }
    if plan.summarize is not None:
        timings.update(plan.summarize(fold_timings))
    timings["folds"] = fold_timings
    shutil.rmtree(run.writer.path / "checkpoints", ignore_errors=True)
    final = run.writer.finish(timings=jsonable(timings))
    result = load_run(final)
    say(f"{plan.system}: WA {100 * result.wa:.1f} UA {100 * result.ua:.1f} -> {final}")
    run.outcome = RunOutcome(plan, result, None, sorted(run.done_before))


def _discard_if_empty(run: _Run) -> None:
    """Remove a new run's partial folder when no fold was stored (a failure before any result)."""
    writer = run.writer
    if writer.resumed or not writer.path.name.endswith(".partial") or not writer.path.exists():
        return
    if writer.finished_folds():
        return
    writer.discard()


__all__ = ["RunPlan", "RunOutcome", "FoldContext", "HarnessError", "run_plans", "run_plan"]
