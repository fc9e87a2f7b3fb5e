"""Where tasks run: in this process, in local worker processes, or on a Dask cluster.

One small interface serves the experiment harness (fold tasks) and feature extraction
(chunks of files): the client *shares* the data a group of tasks reads once, *submits*
tasks that name it, and collects results *as they complete*. Only the client touches the
corpus, the cache and the results store; tasks receive arrays and return arrays.

>>> ex = make_executor(workers=2)                      # doctest: +SKIP
>>> token = ex.share(dataset)                          # sent once to each worker
>>> futures = [ex.submit(fold_task, token, fold) for fold in folds]
>>> for fut in ex.as_completed(futures): fut.result()  # noqa

``fn(shared_object, *args)`` is called in the worker with the shared object itself.

* :class:`InProcess` (the default): tasks run one after another in this process when
  their result is asked for, so a failure surfaces where it happens.
* :class:`LocalProcesses` (``--workers N``): a pool of N fresh processes
  (``forkserver``/``spawn``, never ``fork`` after torch has started threads). Shared data
  goes to each worker once, at start-up. A worker killed mid-task (OOM killer, ``kill -9``)
  breaks the pool; the executor starts a new pool and resubmits the unfinished tasks, up to
  ``max_restarts`` times.
* :class:`DaskExecutor` (``--scheduler tcp://HOST:PORT``, ``$SERBENCH_SCHEDULER``, or
  ``local:N`` for a :class:`dask.distributed.LocalCluster` of N single-threaded worker
  processes): shared data is scattered once per worker; tasks may request worker resources
  (``{"GPU": 1}``); a lost worker's task is rescheduled by Dask itself.

BLAS and torch threads inside a worker are limited to ``threads`` (default: the machine's
cores divided by the workers), so N workers do not oversubscribe the cores.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from serbench.errors import SerbenchError

SCHEDULER_ENV = "SERBENCH_SCHEDULER"
#: Seconds to wait for a Dask scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 3.0


class ExecutorError(SerbenchError):
    """An executor cannot be created or has lost its workers."""


class WorkerLostError(ExecutorError):
    """Workers died more often than the executor is allowed to restart them."""


# ---------------------------------------------------------------- worker side

# The shared objects this worker process holds, by token (filled once per worker).
_SHARED: dict[str, Any] = {}


def limit_threads(threads: int | None) -> None:
    """Cap BLAS/OpenMP and torch intra-op threads of this process at ``threads`` (None: leave them)."""
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads))
    except ImportError:  # threadpoolctl comes with scikit-learn; without it BLAS keeps its default
        pass
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != int(threads):
            torch.set_num_threads(int(threads))


def _init_worker(shared: dict[str, Any], threads: int | None) -> None:
    _SHARED.clear()
    _SHARED.update(shared)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or 1))
    limit_threads(threads)


def _call_shared(fn: Callable, token: str, threads: int | None, args: tuple) -> Any:
    limit_threads(threads)
    return fn(_SHARED[token], *args)


def _call_dask(fn: Callable, shared: Any, threads: int | None, args: tuple) -> Any:
    limit_threads(threads)
    return fn(shared, *args)


# ---------------------------------------------------------------- the executors

class Executor:
    """Share data, submit tasks naming it, collect results as they complete."""

    name = "executor"
    workers = 1

    def share(self, obj: Any) -> str:
        """Make ``obj`` available to tasks; returns the token to pass to :meth:`submit`."""
        raise NotImplementedError

    def submit(self, fn: Callable, token: str, *args: Any, resources: dict | None = None) -> Any:
        """Run ``fn(shared_object, *args)``; returns a future (``.result()``, ``.done()``)."""
        raise NotImplementedError

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """Yield the futures as their tasks finish (results or exceptions)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; the executor cannot be used afterwards."""

    def describe(self) -> str:
        """One line for logs and run records, e.g. 'local processes (2 workers)'."""
        return self.name

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Deferred:
    """An in-process future: the task runs when its result is first asked for."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self._fn, self._args = fn, args
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        if self._done:
            return
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # stored and re-raised by result(), like a real future
            self._error = exc
        self._done = True
        self._fn = self._args = None  # type: ignore[assignment]  # free the task's memory

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        self._run()
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self) -> BaseException | None:
        self._run()
        return self._error

    def cancel(self) -> bool:
        if self._done:
            return False
        self._done, self._error = True, ExecutorError("cancelled")
        return True


class InProcess(Executor):
    """Tasks run in this process, in submission order, as results are collected."""

    name = "in-process"

    def __init__(self) -> None:
        self._shared: dict[str, Any] = {}
        self._ids = itertools.count()

    def share(self, obj: Any) -> str:
        token = f"shared-{next(self._ids)}"
        self._shared[token] = obj
        return token

    def submit(self, fn: Callable, token: str, *args: Any, resources: dict | None = None) -> _Deferred:
        return _Deferred(fn, (self._shared[token], *args))

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        for fut in list(futures):
            fut._run()
            yield fut


class _PoolFuture:
    """A task of :class:`LocalProcesses`: survives pool restarts (it is resubmitted)."""

    def __init__(self, fn: Callable, token: str, args: tuple) -> None:
        self.fn, self.token, self.args = fn, token, args
        self.inner: Future | None = None

    def done(self) -> bool:
        return self.inner is not None and self.inner.done()

    def result(self) -> Any:
        assert self.inner is not None
        return self.inner.result()

    def exception(self) -> BaseException | None:
        assert self.inner is not None
        return self.inner.exception()

    def cancel(self) -> bool:
        return self.inner.cancel() if self.inner is not None else False


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver where there is one (Linux, macOS): workers start from a clean server process, so
    # no thread state of this process (torch's pools, BLAS) is forked into them.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class LocalProcesses(Executor):
    """``workers`` local processes; shared data reaches each worker once, when the pool starts.

    Shares made after the first submit start a new pool (the old one finishes its tasks first),
    so share everything a batch of tasks needs before submitting them.
    """

    name = "local processes"

    def __init__(self, workers: int, *, threads: int | None = None, max_restarts: int = 2) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.max_restarts = max_restarts
        self.restarts = 0
        self._shared: dict[str, Any] = {}
        self._ids = itertools.count()
        self._pool: ProcessPoolExecutor | None = None
        self._pool_tokens: set[str] = set()
        self._pending: list[_PoolFuture] = []

    def describe(self) -> str:
        return f"local processes ({self.workers} workers, {self.threads} thread(s) each)"

    def share(self, obj: Any) -> str:
        token = f"shared-{next(self._ids)}"
        self._shared[token] = obj
        return token

    def _ensure_pool(self, token: str) -> ProcessPoolExecutor:
        if self._pool is None or token not in self._pool_tokens:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=_mp_context(), initializer=_init_worker,
                                             initargs=(dict(self._shared), self.threads))
            self._pool_tokens = set(self._shared)
        return self._pool

    def _start(self, fut: _PoolFuture) -> None:
        pool = self._ensure_pool(fut.token)
        fut.inner = pool.submit(_call_shared, fut.fn, fut.token, self.threads, fut.args)

    def submit(self, fn: Callable, token: str, *args: Any, resources: dict | None = None) -> _PoolFuture:
        if token not in self._shared:
            raise ExecutorError(f"unknown shared token {token!r}")
        fut = _PoolFuture(fn, token, args)
        self._start(fut)
        self._pending.append(fut)
        return fut

    def _restart(self, futures: list[_PoolFuture]) -> None:
        """A worker died: a fresh pool, and every unfinished (or broken) task resubmitted."""
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise WorkerLostError(f"worker processes died {self.restarts} times (killed, or out of memory?); "
                                  "giving up. Folds already finished are stored: re-run the command to resume, "
                                  "with fewer --workers if memory is short")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        for fut in futures:
            broken = fut.inner is None or not fut.inner.done() or isinstance(fut.inner.exception(), BrokenProcessPool)
            if broken:
                self._start(fut)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        import concurrent.futures as cf

        todo = list(futures)
        while todo:
            waiting = {f.inner: f for f in todo}
            finished, _ = cf.wait(list(waiting), return_when=cf.FIRST_COMPLETED)
            broken = [waiting[f] for f in finished if isinstance(f.exception(), BrokenProcessPool)]
            if broken:
                self._restart(todo)
                continue
            for inner in finished:
                fut = waiting[inner]
                todo.remove(fut)
                yield fut

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on a :mod:`dask.distributed` cluster (an address, or a LocalCluster for ``local:N``)."""

    name = "dask"

    def __init__(self, scheduler: str, *, threads: int | None = None, timeout: float = CONNECT_TIMEOUT_S,
                 retries: int = 2) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is an install requirement
            raise ExecutorError(f"--scheduler needs dask[distributed] ({exc}); pip install 'dask[distributed]'") \
                from None
        self.address = scheduler
        self.retries = retries
        self._cluster = None
        m = re.fullmatch(r"local:(\d+)", scheduler.strip())
        if m:
            n = int(m.group(1))
            if n < 1:
                raise ExecutorError(f"--scheduler {scheduler}: give local:N with N >= 1 workers")
            cores = os.cpu_count() or 1
            self.threads = threads or max(1, cores // n)
            # One single-threaded worker process per slot (tasks use `threads` intra-op threads).
            resources = {"GPU": 1} if _cuda_available() else None
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=":0", resources=resources, silence_logs=40)
            self.client = Client(self._cluster)
            self.workers = n
        else:
            if not re.match(r"^[a-z]+://", scheduler):
                raise ExecutorError(f"--scheduler {scheduler!r}: give an address like tcp://HOST:8786, or local:N")
            try:
                self.client = Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"--scheduler {scheduler}: cannot reach the Dask scheduler within {timeout:g} s "
                                    f"({type(exc).__name__}); start it (`dask scheduler`) and its workers, or check "
                                    f"the address / ${SCHEDULER_ENV}") from None
            info = self.client.scheduler_info()
            self.workers = max(1, len(info.get("workers", {})))
            self.threads = threads or 1

    def describe(self) -> str:
        where = f"LocalCluster {self.address}" if self._cluster is not None else self.address
        return f"dask ({where}, {self.workers} workers)"

    def share(self, obj: Any) -> Any:
        # Scattered once; every task that names it reads the worker's copy.
        return self.client.scatter(obj, broadcast=True, hash=False)

    def submit(self, fn: Callable, token: Any, *args: Any, resources: dict | None = None) -> Any:
        if resources and "GPU" in resources:
            have = [w for w in self.client.scheduler_info().get("workers", {}).values()
                    if (w.get("resources") or {}).get("GPU")]
            if not have:
                raise ExecutorError(f"{self.describe()}: these tasks need a GPU worker, and no worker declares one; "
                                    "start workers with `dask worker ADDRESS --resources GPU=1` or use --device cpu")
        return self.client.submit(_call_dask, fn, token, self.threads, args, resources=resources,
                                  retries=self.retries, pure=False)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from dask.distributed import as_completed

        yield from as_completed(list(futures))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _cuda_available() -> bool:
    if "torch" not in sys.modules:
        return False  # nothing asked for torch yet: no GPU task will come from this process
    import torch

    return bool(torch.cuda.is_available())


def make_executor(workers: int | None = None, scheduler: str | None = None, *,
                  threads: int | None = None) -> Executor:
    """The executor for ``--workers`` / ``--scheduler`` (``$SERBENCH_SCHEDULER`` when neither is given).

    ``workers`` None and no scheduler: :class:`InProcess`. Giving both is an error.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ExecutorError(f"--threads {threads!r}: give a positive number of threads")
    scheduler = scheduler or (os.environ.get(SCHEDULER_ENV) or None if workers is None else None)
    if workers is not None and scheduler:
        raise ExecutorError("give either --workers N (local processes) or --scheduler ADDRESS (Dask), not both")
    if scheduler:
        return DaskExecutor(scheduler, threads=threads)
    if workers:
        return LocalProcesses(workers, threads=threads)
    return InProcess()


__all__ = ["Executor", "InProcess", "LocalProcesses", "DaskExecutor", "ExecutorError", "WorkerLostError",
           "make_executor", "limit_threads", "SCHEDULER_ENV"]
