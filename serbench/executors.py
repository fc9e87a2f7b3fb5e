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
  (``forkserver``/``spawn``, never ``fork`` after torch has started threads), started at once
  so that they import their libraries while the client loads data. Shared data that can
  write itself to a folder (a :class:`~serbench.experiments.dataset.Dataset`: ``.npy`` arrays,
  no pickle) is written once to a private temporary folder and memory-mapped by each worker
  the first time a task needs it; anything else travels with each task. A worker killed
  mid-task (OOM killer, ``kill -9``) breaks the pool; the executor starts a new pool and
  resubmits the unfinished tasks, up to ``max_restarts`` times.
* :class:`DaskExecutor` (``--scheduler tcp://HOST:PORT``, ``$SERBENCH_SCHEDULER``, or
  ``local:N`` for a :class:`dask.distributed.LocalCluster` of N single-threaded worker
  processes, started in the background): shared data is scattered once per worker; tasks
  may request worker resources (``{"GPU": 1}``); a lost worker's task is rescheduled by Dask.

BLAS and torch threads inside a worker are limited to ``threads`` (default: the machine's
cores divided by the workers), so N workers do not oversubscribe the cores.
"""
from __future__ import annotations

import importlib
import itertools
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
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

@dataclass(frozen=True)
class SharedFolder:
    """Shared data written to ``path`` by its ``save_shared``; ``loader`` ('module:Class') reads it back."""

    path: str
    loader: str

    def load(self) -> Any:
        module, _, qualname = self.loader.partition(":")
        cls = getattr(importlib.import_module(module), qualname)
        return cls.load_shared(self.path)


# The shared data this worker process has read, by folder (a few at a time: memory-mapped, cheap).
_SHARED: "OrderedDict[str, Any]" = OrderedDict()
_SHARED_SIZE = 8


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


def _init_worker(threads: int | None, preload: tuple[str, ...]) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or 1))
    for name in preload:  # import what the tasks will need while the client is still loading data
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    limit_threads(threads)


def _warm() -> None:
    """A no-op task: makes the pool start its processes now."""


def _resolve(shared: Any) -> Any:
    if not isinstance(shared, SharedFolder):
        return shared
    if shared.path not in _SHARED:
        _SHARED[shared.path] = shared.load()
        while len(_SHARED) > _SHARED_SIZE:
            _SHARED.popitem(last=False)
    _SHARED.move_to_end(shared.path)
    return _SHARED[shared.path]


def _call_shared(fn: Callable, shared: Any, threads: int | None, args: tuple) -> Any:
    limit_threads(threads)
    return fn(_resolve(shared), *args)


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

    def __init__(self, fn: Callable, shared: Any, args: tuple) -> None:
        self.fn, self.shared, self.args = fn, shared, args
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
    """``workers`` local processes, started at once; shared datasets travel as memory-mapped files."""

    name = "local processes"

    def __init__(self, workers: int, *, threads: int | None = None, max_restarts: int = 2,
                 preload: tuple[str, ...] = ()) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.max_restarts = max_restarts
        self.restarts = 0
        self.preload = ("serbench.experiments.harness", *preload)
        self._tmp: str | None = None
        self._ids = itertools.count()
        self._pool: ProcessPoolExecutor | None = None
        self._start_pool()

    def describe(self) -> str:
        return f"local processes ({self.workers} workers, {self.threads} thread(s) each)"

    def _start_pool(self) -> None:
        self._pool = ProcessPoolExecutor(self.workers, mp_context=_mp_context(), initializer=_init_worker,
                                         initargs=(self.threads, self.preload))
        for _ in range(self.workers):
            self._pool.submit(_warm)

    def share(self, obj: Any) -> Any:
        if not hasattr(type(obj), "load_shared") or not hasattr(obj, "save_shared"):
            return obj      # small or opaque: travels with each task
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="serbench-shared-")
        folder = os.path.join(self._tmp, f"shared-{next(self._ids)}")
        obj.save_shared(folder)
        cls = type(obj)
        return SharedFolder(folder, f"{cls.__module__}:{cls.__qualname__}")

    def _start(self, fut: _PoolFuture) -> None:
        if self._pool is None:
            self._start_pool()
        assert self._pool is not None
        fut.inner = self._pool.submit(_call_shared, fut.fn, fut.shared, self.threads, fut.args)

    def submit(self, fn: Callable, token: Any, *args: Any, resources: dict | None = None) -> _PoolFuture:
        fut = _PoolFuture(fn, token, args)
        self._start(fut)
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
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class DaskExecutor(Executor):
    """Tasks on a :mod:`dask.distributed` cluster (an address, or a LocalCluster for ``local:N``)."""

    name = "dask"

    def __init__(self, scheduler: str, *, threads: int | None = None, timeout: float = CONNECT_TIMEOUT_S,
                 retries: int = 2, preload: tuple[str, ...] = ()) -> None:
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
            self.workers = n
            # One single-threaded worker process per slot (tasks use `threads` intra-op threads),
            # started in the background: the client loads its data meanwhile.
            resources = {"GPU": 1} if _cuda_available() else None
            self._started: dict[str, Any] = {}

            def start() -> None:
                try:
                    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", resources=resources, silence_logs=40,
                                           preload=list(preload))
                    self._started["cluster"] = cluster
                    self._started["client"] = Client(cluster)
                except BaseException as exc:  # re-raised where the cluster is first needed
                    self._started["error"] = exc

            self._thread: threading.Thread | None = threading.Thread(target=start, daemon=True)
            self._thread.start()
        else:
            if not re.match(r"^[a-z]+://", scheduler):
                raise ExecutorError(f"--scheduler {scheduler!r}: give an address like tcp://HOST:8786, or local:N")
            try:
                self.client = Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"--scheduler {scheduler}: cannot reach the Dask scheduler within {timeout:g} s "
                                    f"({type(exc).__name__}); start it (`dask scheduler`) and its workers, or check "
                                    f"the address / ${SCHEDULER_ENV}") from None
            self._thread = None
            info = self.client.scheduler_info()
            self.workers = max(1, len(info.get("workers", {})))
            self.threads = threads or 1

    def _ready(self) -> None:
        """Wait for a LocalCluster started in the background (raising what stopped it)."""
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        if "error" in self._started:
            raise ExecutorError(f"--scheduler {self.address}: the local Dask cluster did not start "
                                f"({type(self._started['error']).__name__}: {self._started['error']})")
        self._cluster = self._started["cluster"]
        self.client = self._started["client"]

    def describe(self) -> str:
        where = f"LocalCluster {self.address}" if self.address.startswith("local:") else self.address
        return f"dask ({where}, {self.workers} workers)"

    def share(self, obj: Any) -> Any:
        # Scattered once; every task that names it reads the worker's copy.
        self._ready()
        return self.client.scatter(obj, broadcast=True, hash=False)

    def submit(self, fn: Callable, token: Any, *args: Any, resources: dict | None = None) -> Any:
        self._ready()
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
        try:
            self._ready()
        except ExecutorError:
            return
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _cuda_available() -> bool:
    if "torch" not in sys.modules:
        return False  # nothing asked for torch yet: no GPU task will come from this process
    import torch

    return bool(torch.cuda.is_available())


def make_executor(workers: int | None = None, scheduler: str | None = None, *,
                  threads: int | None = None, preload: tuple[str, ...] = ()) -> Executor:
    """The executor for ``--workers`` / ``--scheduler`` (``$SERBENCH_SCHEDULER`` when neither is given).

    ``workers`` None and no scheduler: :class:`InProcess`. Giving both is an error. ``preload``:
    modules local worker processes import as they start (the libraries the tasks will need).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ExecutorError(f"--threads {threads!r}: give a positive number of threads")
    scheduler = scheduler or (os.environ.get(SCHEDULER_ENV) or None if workers is None else None)
    if workers is not None and scheduler:
        raise ExecutorError("give either --workers N (local processes) or --scheduler ADDRESS (Dask), not both")
    if scheduler:
        return DaskExecutor(scheduler, threads=threads, preload=preload)
    if workers:
        return LocalProcesses(workers, threads=threads, preload=preload)
    return InProcess()


__all__ = ["Executor", "InProcess", "LocalProcesses", "DaskExecutor", "ExecutorError", "WorkerLostError", "SharedFolder",
           "make_executor", "limit_threads", "SCHEDULER_ENV"]
