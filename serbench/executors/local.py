"""Local worker processes (``--workers N``): one task per process, a lost worker costs only its task."""
from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import struct
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Iterable, Iterator

from serbench.executors._common import ExecutorError, WorkerLostError, _more_than_cores
from serbench.executors.shared import SharedFolder, _LIVE_EXECUTORS, _OWN_FOLDERS, _make_shared_folder, _remove_shared_folder, remove_stale_shared
from serbench.executors.worker import _RemoteTraceback, _dumps, _loads, _worker_main
from serbench.executors.base import Executor


class _Task(Future):
    """A task of :class:`LocalProcesses`: a future that is rerun on a fresh worker when its worker dies."""

    def __init__(self, tid: int, blob: bytes) -> None:
        super().__init__()
        self.tid, self.blob = tid, blob
        self.lost: list[str] = []   # one line per worker that died running it


class _Worker:
    """One worker process and the client's ends of its pipes."""

    def __init__(self, process: Any, conn: Any, alive: Any) -> None:
        self.process, self.conn, self.alive = process, conn, alive
        self.task: _Task | None = None


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver where there is one (Linux, macOS): workers start from a clean server process, so
    # no thread state of this process (torch's pools, BLAS) is forked into them.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _how_it_died(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory, or killed by hand?)" if -exitcode == getattr(signal, "SIGKILL", 9) else ""
        return f"killed by {name}{hint}"
    return f"exit status {exitcode}"


class LocalProcesses(Executor):
    """Up to ``workers`` local processes, one task at a time each, started as tasks come.

    Shared datasets travel as memory-mapped files. ``restarts`` counts the workers lost while
    running a task; a task is rerun up to ``max_restarts`` times before it fails with
    :class:`WorkerLostError`. ``started`` counts the processes started so far. ``log``: where
    warnings go (default: stderr).
    """

    rerun_by = "the task is rerun on a fresh worker"

    name = "local processes"

    def __init__(self, workers: int, *, threads: int | None = None, max_restarts: int = 2,
                 preload: tuple[str, ...] = (), log: Callable[[str], None] | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.max_restarts = max_restarts
        self.restarts = 0
        self.started = 0
        self.log = log
        self.preload = ("serbench.experiments.harness", *preload)
        self._ctx = _mp_context()
        self._tmp: str | None = None
        self._ids = itertools.count()
        self._tids = itertools.count()
        self._queue: deque[_Task] = deque()       # submitted, waiting for a worker
        self._pool: list[_Worker] = []            # only the dispatcher thread touches it (and close())
        self._lost: deque[tuple[_Task, str]] = deque()
        self._wake_r, self._wake_w = multiprocessing.connection.Pipe(duplex=False)
        self._wake_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        remove_stale_shared()
        _more_than_cores(f"--workers {workers}", workers, log)
        self._warm_forkserver()
        self._thread = threading.Thread(target=self._dispatch, name="serbench-local-processes", daemon=True)
        self._thread.start()
        _LIVE_EXECUTORS.add(self)

    def describe(self) -> str:
        return f"local processes ({self.workers} workers, {self.threads} thread(s) each)"

    def _warm_forkserver(self) -> None:
        """Start the fork server (and the resource tracker) in the background: the first worker starts sooner.

        It imports nothing of the tasks' (torch, BLAS): workers import their libraries themselves, in a
        clean process, so no library state is ever forked.
        """
        if self._ctx.get_start_method() != "forkserver":
            return
        from multiprocessing import forkserver

        threading.Thread(target=forkserver.ensure_running, name="serbench-forkserver", daemon=True).start()

    # -- client API

    def share(self, obj: Any) -> Any:
        if not hasattr(type(obj), "load_shared") or not hasattr(obj, "save_shared"):
            return obj      # small or opaque: travels with each task
        if self._tmp is None:
            self._tmp = _make_shared_folder()
        folder = os.path.join(self._tmp, f"shared-{next(self._ids)}")
        obj.save_shared(folder)
        cls = type(obj)
        return SharedFolder(folder, f"{cls.__module__}:{cls.__qualname__}")

    def submit(self, fn: Callable, token: Any, *args: Any, resources: dict | None = None) -> _Task:
        if self._closing:
            raise ExecutorError(f"{self.describe()}: the executor is closed; create a new one")
        # Pickled here, so that a task that cannot travel fails where it is submitted.
        fut = _Task(next(self._tids), _dumps((fn, token, args)))
        self._queue.append(fut)
        self._wake()
        return fut

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        import concurrent.futures as cf

        pending = set(futures)
        while pending:
            # A timeout, so that lost workers are reported while the other tasks still run.
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            self._report_lost()
            for fut in sorted(done, key=lambda f: getattr(f, "tid", 0)):
                yield fut
        self._report_lost()

    def pids(self) -> list[int]:
        """Process ids of the live worker processes."""
        return [w.process.pid for w in list(self._pool) if w.process.pid is not None]

    def close(self) -> None:
        """Stop the workers (a task still running is abandoned: its worker is terminated) and remove shared data."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake()
        self._thread.join()
        for fut in list(self._queue):
            if not fut.cancel() and not fut.done():
                fut.set_exception(ExecutorError(f"{self.describe()}: closed before this task ran"))
        self._queue.clear()
        idle = [w for w in self._pool if w.task is None]
        for w in idle:
            try:
                w.conn.send_bytes(b"")
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for w in idle:
            w.process.join(max(0.0, deadline - time.monotonic()))
        for w in self._pool:
            if w.process.is_alive():
                w.process.terminate()
        for w in self._pool:
            w.process.join(1.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(1.0)
            if w.task is not None and not w.task.done():
                w.task.set_exception(ExecutorError(f"{self.describe()}: closed while this task was running"))
            self._release(w)
        self._pool = []
        with self._wake_lock:
            for c in (self._wake_r, self._wake_w):
                c.close()
        if self._tmp is not None:
            _remove_shared_folder(self._tmp)
            _OWN_FOLDERS.discard(self._tmp)
            self._tmp = None
        _LIVE_EXECUTORS.discard(self)

    # -- the dispatcher thread: starts workers, hands out tasks, collects results, buries the dead

    def _wake(self) -> None:
        with self._wake_lock:
            try:
                self._wake_w.send_bytes(b"!")
            except OSError:  # closed
                pass

    def _dispatch(self) -> None:
        try:
            while not self._closing:
                self._assign()
                conns = {w.conn: w for w in self._pool}
                sentinels = {w.process.sentinel: w for w in self._pool}
                ready = multiprocessing.connection.wait([self._wake_r, *conns, *sentinels])
                if self._wake_r in ready:
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                for c in ready:
                    if c in conns:
                        self._receive(conns[c])
                for s in ready:
                    if s in sentinels and sentinels[s] in self._pool:
                        self._bury(sentinels[s])
        except BaseException as exc:  # a bug here must not leave futures waiting forever
            self._error = exc
            err = ExecutorError(f"{self.describe()}: the dispatcher failed ({type(exc).__name__}: {exc})")
            for fut in [*self._queue, *(w.task for w in self._pool if w.task is not None)]:
                if not fut.done():
                    fut.set_exception(err)

    def _assign(self) -> None:
        idle = [w for w in self._pool if w.task is None]
        while self._queue:
            fut = self._queue[0]
            if fut.cancelled():
                self._queue.popleft()
                continue
            if not idle:
                if len(self._pool) >= self.workers:
                    return
                idle.append(self._spawn())
            w = idle.pop()
            self._queue.popleft()
            # A rerun task is running already; a new one may have been cancelled meanwhile.
            if not fut.running() and not fut.set_running_or_notify_cancel():
                idle.append(w)
                continue
            w.task = fut
            try:
                w.conn.send_bytes(struct.pack("<Q", fut.tid) + fut.blob)
            except OSError:  # the worker just died: its sentinel reports it and the task is rerun
                pass

    def _spawn(self) -> _Worker:
        conn, child_conn = self._ctx.Pipe(duplex=True)
        alive_r, alive_w = self._ctx.Pipe(duplex=False)
        folders = (self._tmp,) if self._tmp else ()
        process = self._ctx.Process(target=_worker_main, name=f"serbench-worker-{self.started}",
                                    args=(child_conn, alive_r, self.threads, self.preload, folders))
        process.start()
        self.started += 1
        child_conn.close()
        alive_r.close()
        w = _Worker(process, conn, alive_w)
        self._pool.append(w)
        return w

    def _receive(self, w: _Worker) -> None:
        try:
            blob = w.conn.recv_bytes()
        except (EOFError, OSError):
            self._bury(w)
            return
        fut, w.task = w.task, None
        if fut is None:
            return
        fut.blob = b""   # kept only for a rerun
        try:
            tid, ok, value, tb = _loads(blob)
        except BaseException as exc:
            fut.set_exception(ExecutorError(f"a task's reply could not be read ({type(exc).__name__}: {exc})"))
            return
        if ok:
            fut.set_result(value)
        else:
            if tb and isinstance(value, BaseException):
                value.__cause__ = _RemoteTraceback(tb)
            fut.set_exception(value)

    def _bury(self, w: _Worker) -> None:
        """A worker process ended: forget it; the task it was running goes back to the queue."""
        self._pool.remove(w)
        w.process.join(1.0)
        what = f"worker process {w.process.pid} {_how_it_died(w.process.exitcode)}"
        fut, w.task = w.task, None
        self._release(w)
        if fut is None or fut.done():
            return  # an idle worker died: the next task starts a fresh one
        self.restarts += 1
        if len(fut.lost) >= self.max_restarts:
            fut.set_exception(WorkerLostError(
                f"{what}; the worker running this task died {len(fut.lost) + 1} times: giving up. Finished folds are "
                "stored: re-run the command to resume, with fewer --workers if memory is short"))
            return
        fut.lost.append(what)
        self._lost.append((fut, what))
        self._queue.appendleft(fut)

    @staticmethod
    def _release(w: _Worker) -> None:
        for c in (w.conn, w.alive):
            try:
                c.close()
            except OSError:
                pass
        try:
            w.process.close()
        except ValueError:  # still running: closed when it is collected
            pass


