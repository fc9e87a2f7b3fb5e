"""Dask (``--scheduler ADDRESS`` or ``local:N``): shared data scattered once to every worker, lost
workers of a LocalCluster reported."""
from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from serbench.executors._common import CONNECT_TIMEOUT_S, ExecutorError, INITIAL_DASK_WORKERS, SCHEDULER_ENV, _more_than_cores
from serbench.executors.addresses import check_scheduler
from serbench.executors.shared import _LIVE_EXECUTORS
from serbench.executors.worker import _call_dask
from serbench.executors.base import Executor


class DaskExecutor(Executor):
    """Tasks on a :mod:`dask.distributed` cluster (an address, or a LocalCluster for ``local:N``)."""

    rerun_by = "Dask reruns the task on another worker"

    name = "dask"

    def __init__(self, scheduler: str, *, threads: int | None = None, timeout: float = CONNECT_TIMEOUT_S,
                 retries: int = 2, preload: tuple[str, ...] = (), source: str = "--scheduler",
                 log: Callable[[str], None] | None = None) -> None:
        scheduler = check_scheduler(scheduler, source)   # before dask is even imported
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is an install requirement
            raise ExecutorError(f"{source} needs dask[distributed] ({exc}); pip install 'dask[distributed]'") \
                from None
        self.address = scheduler
        self.source = source
        self.retries = retries
        self.log = log
        self._cluster = None
        self._live: set = set()     # submitted futures not known to be done (they size a LocalCluster)
        self._by_key: dict[str, Any] = {}   # our futures not yet collected, by task key (lost-worker news)
        self._lost: deque[tuple[Any, str]] = deque()
        self._shared: "weakref.WeakSet[Any]" = weakref.WeakSet()   # scattered data still referenced
        if scheduler.startswith("local:"):
            n = int(scheduler.partition(":")[2])
            cores = os.cpu_count() or 1
            self.threads = threads or max(1, cores // n)
            self.workers = n
            _more_than_cores(f"{source} {scheduler}", n, log)
            # One single-threaded worker process per task (they use `threads` intra-op threads), up to n:
            # the cluster starts in the background with two (the client loads its data meanwhile; shared
            # data scattered to both survives the loss of one) and grows as tasks are submitted, so
            # local:1000 with 4 folds starts 4 processes.
            self._scaled = min(n, INITIAL_DASK_WORKERS)
            resources = {"GPU": 1} if _cuda_available() else None
            self._started: dict[str, Any] = {}

            def start() -> None:
                try:
                    cluster = LocalCluster(n_workers=self._scaled, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", resources=resources, silence_logs=40,
                                           preload=list(preload))
                    self._started["cluster"] = cluster
                    self._started["client"] = Client(cluster)
                except BaseException as exc:  # re-raised where the cluster is first needed
                    self._started["error"] = exc

            self._thread: threading.Thread | None = threading.Thread(target=start, daemon=True)
            self._thread.start()
        else:
            try:
                self.client = Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ExecutorError(f"{source} {scheduler}: cannot reach the Dask scheduler within {timeout:g} s "
                                    f"({type(exc).__name__}); start it (`dask scheduler`) and its workers, or check "
                                    f"the address / ${SCHEDULER_ENV}") from None
            self._thread = None
            info = self.client.scheduler_info()
            self.workers = max(1, len(info.get("workers", {})))
            self.threads = threads or 1
        _LIVE_EXECUTORS.add(self)

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
        self._watch_workers()

    def _watch_workers(self) -> None:
        """Hear from a LocalCluster's scheduler (it runs in this process) when a worker is lost with our tasks.

        A remote scheduler (tcp://...) reruns such tasks without telling this client. (Subscribing a
        client to the scheduler's "all" events breaks its connection: some are not serializable.)
        """
        scheduler = getattr(self._cluster, "scheduler", None)
        if scheduler is None or not hasattr(scheduler, "add_plugin"):
            return
        from distributed.diagnostics.plugin import SchedulerPlugin

        on_event = self._on_event

        class LostWorkers(SchedulerPlugin):
            name = "serbench-lost-workers"

            def log_event(self, topic: str, msg: Any) -> None:
                if topic == "all":
                    on_event(msg)

        try:
            scheduler.add_plugin(LostWorkers(), name=LostWorkers.name)
        except Exception:  # an older scheduler: Dask still reruns the tasks, silently
            pass

    def _on_event(self, msg: Any) -> None:
        # Called in the scheduler's event-loop thread: only queue the news (as_completed reports it).
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker" or msg.get("expected"):
            return
        for key in msg.get("processing-tasks") or ():
            fut = self._by_key.get(key)
            if fut is not None and not fut.done():
                self._lost.append((fut, f"Dask worker {msg.get('worker', '?')} was lost"))

    def describe(self) -> str:
        where = f"LocalCluster {self.address}" if self.address.startswith("local:") else self.address
        return f"dask ({where}, {self.workers} workers)"

    def share(self, obj: Any) -> Any:
        # Scattered once to every worker; every task that names it reads the worker's copy.
        self._ready()
        if self._cluster is not None and self._scaled > 1:
            self._wait_for_workers(self._scaled)   # a LocalCluster growing: broadcast to all it will have
        token = self.client.scatter(obj, broadcast=True, hash=False)
        from dask.distributed import futures_of

        for fut in futures_of(token):   # a dict or list scatters item by item
            self._shared.add(fut)
        return token

    def _wait_for_workers(self, n: int) -> None:
        try:
            self.client.wait_for_workers(n, timeout=120)
        except Exception:  # TimeoutError, or closing: the data goes to the workers there are
            pass

    def _replicate(self, n: int) -> None:
        """Copy the shared data to the workers a LocalCluster just grew by, once they are up.

        Until then a task on a new worker fetches it from another worker; the copies keep the data
        when a worker holding it is lost.
        """
        self._wait_for_workers(n)
        try:
            shared = [f for f in list(self._shared) if not f.cancelled()]
            if shared and not getattr(self, "_closed", False):
                self.client.replicate(shared)
        except Exception:  # closing meanwhile, or a worker lost: Dask still fetches data where needed
            pass

    def submit(self, fn: Callable, token: Any, *args: Any, resources: dict | None = None) -> Any:
        self._ready()
        if resources and "GPU" in resources:
            have = [w for w in self.client.scheduler_info().get("workers", {}).values()
                    if (w.get("resources") or {}).get("GPU")]
            if not have:
                raise ExecutorError(f"{self.describe()}: these tasks need a GPU worker, and no worker declares one; "
                                    "start workers with `dask worker ADDRESS --resources GPU=1` or use --device cpu")
        fut = self.client.submit(_call_dask, fn, token, self.threads, args, resources=resources,
                                 retries=self.retries, pure=False)
        self._by_key = {k: f for k, f in self._by_key.items() if not f.done()}
        self._by_key[fut.key] = fut
        self._grow(fut)
        return fut

    def _grow(self, fut: Any) -> None:
        """A LocalCluster gets one worker per task waiting or running, up to local:N."""
        if self._cluster is None:
            return
        self._live = {f for f in self._live if not f.done()}
        self._live.add(fut)
        want = min(self.workers, len(self._live))
        if want > self._scaled:
            self._scaled = want
            self._cluster.scale(want)
            threading.Thread(target=self._replicate, args=(want,), name="serbench-dask-replicate", daemon=True).start()

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from dask.distributed import as_completed

        done = as_completed(list(futures))
        while not done.is_empty():
            # In batches with a short wait, so that a lost worker is reported while the other tasks run.
            batch = done.next_batch(block=False)
            self._report_lost()
            if not batch:
                time.sleep(0.05)
            yield from batch
        self._report_lost()

    def close(self) -> None:
        _LIVE_EXECUTORS.discard(self)
        try:
            self._ready()
        except ExecutorError:
            return
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.client.close()
        if self._cluster is not None:
            # Closing the cluster stops its worker processes; their queues' semaphores are unlinked when
            # the queues are collected (or by the resource tracker when this process exits).
            self._cluster.close()
            self._cluster = None


def _cuda_available() -> bool:
    if "torch" not in sys.modules:
        return False  # nothing asked for torch yet: no GPU task will come from this process
    import torch

    return bool(torch.cuda.is_available())

