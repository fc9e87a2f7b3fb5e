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
* :class:`LocalProcesses` (``--workers N``): up to N fresh processes (``forkserver``/``spawn``,
  never ``fork`` after torch has started threads), started as tasks come (never more processes
  than tasks waiting or running; each imports the tasks' libraries, ``preload``, as it starts).
  Each worker runs one task at a time. Shared data that can
  write itself to a folder (a :class:`~serbench.experiments.dataset.Dataset`: ``.npy`` arrays, no
  pickle) is written once to a private temporary folder and memory-mapped by each worker the first
  time a task needs it; anything else travels with each task. A worker killed mid-task (OOM killer,
  ``kill -9``) costs only its own task: the task is rerun on a fresh worker (up to ``max_restarts``
  times) and :attr:`Executor.on_lost` hears of it; the other workers go on.
* :class:`DaskExecutor` (``--scheduler tcp://HOST:PORT``, ``$SERBENCH_SCHEDULER``, or
  ``local:N`` for a :class:`dask.distributed.LocalCluster` of up to N single-threaded worker
  processes, started in the background with two and grown to one per task as tasks come): shared
  data is scattered once to every worker; tasks may request worker resources (``{"GPU": 1}``); a
  lost worker's task is rescheduled by Dask.

Nothing outlives the client: a local worker exits as soon as its client is gone, however it went
(``kill -9`` included: each worker watches a pipe only the client holds), and removes the client's
shared temporary folder on its way out; a LocalCluster's workers do the same (Dask's own watch),
and the semaphores of their queues are unlinked by multiprocessing's resource tracker once they
are gone. Shared folders (``serbench-shared-<pid>-<host>-*`` in the temp folder) are removed at
close and at exit, and the next executor removes any whose client is no longer running. Asking
for more workers than cores is warned about.

BLAS and torch threads inside a worker are limited to ``threads`` (default: the machine's
cores divided by the workers), so N workers do not oversubscribe the cores.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib
import itertools
import multiprocessing
import multiprocessing.connection
import os
import platform
import re
import shutil
import signal
import stat
import struct
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from serbench.errors import SerbenchError

SCHEDULER_ENV = "SERBENCH_SCHEDULER"
#: Seconds to wait for a Dask scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 3.0
#: Workers a ``local:N`` cluster starts with (at most N); it grows to one per task waiting or running.
INITIAL_DASK_WORKERS = 2


class ExecutorError(SerbenchError):
    """An executor cannot be created or has lost its workers."""


class WorkerLostError(ExecutorError):
    """Workers died more often than the executor is allowed to restart them."""


def _say(log: Callable[[str], None] | None, msg: str) -> None:
    """One line for the user: through ``log`` when the caller gave one, else on stderr."""
    if log is not None:
        log(msg)
    else:
        print(f"serbench: {msg}", file=sys.stderr, flush=True)


def _more_than_cores(option: str, n: int, log: Callable[[str], None] | None) -> None:
    cores = os.cpu_count() or 1
    if n > cores:
        _say(log, f"warning: {option} asks for {n} workers, more than the {cores} CPU core(s) here; they will "
                  "compete for the cores (at most one worker per task waiting or running is started)")


# ---------------------------------------------------------------- scheduler addresses

SCHEDULER_FORMS = "tcp://HOST:PORT (or tls://, ws://, wss://, ucx://; PORT defaults to 8786) or local:N (N >= 1)"
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
_ADDRESS = re.compile(rf"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>{_HOST})(?::(?P<port>\d{{1,5}}))?")


def check_scheduler(address: str, source: str = "--scheduler") -> str:
    """``address`` checked before any work (``tcp://HOST[:PORT]``, ``tls://...``, ``local:N``); returns it stripped.

    ``source`` names where the address came from in the message (``--scheduler``,
    ``$SERBENCH_SCHEDULER``). A bare ``HOST:PORT`` is a tcp address, as Dask reads it.
    """
    text = str(address).strip()
    where = f"{source} {text!r}" if text else f"{source} (empty)"
    if text.lower().startswith("local:") or text.lower() == "local":
        n = text.partition(":")[2].strip()
        if not re.fullmatch(r"[+-]?\d+", n or "x"):
            raise ExecutorError(f"{where}: local:N needs a whole number of workers N >= 1, e.g. local:2; "
                                f"accepted: {SCHEDULER_FORMS}")
        if int(n) < 1:
            raise ExecutorError(f"{where}: local:N needs N >= 1 workers, e.g. local:2; accepted: {SCHEDULER_FORMS}")
        return f"local:{int(n)}"
    m = _ADDRESS.fullmatch(text)
    scheme = (m.group("scheme") or "").lower() if m else text.partition("://")[0].lower() if "://" in text else ""
    if "://" in text and scheme not in _SCHEMES:
        raise ExecutorError(f"{where}: unknown protocol {scheme + '://'!r}; accepted: {SCHEDULER_FORMS}")
    if m is None:
        what = "no host" if "://" in text and not text.partition("://")[2].strip() else "not an address"
        raise ExecutorError(f"{where}: {what}; accepted: {SCHEDULER_FORMS}")
    if not m.group("scheme") and not m.group("port"):
        raise ExecutorError(f"{where}: not an address (a bare name needs a protocol or a port, e.g. "
                            f"tcp://{text}:8786); accepted: {SCHEDULER_FORMS}")
    if m.group("port") is not None and not 0 < int(m.group("port")) < 65536:
        raise ExecutorError(f"{where}: port {m.group('port')} is not in 1-65535; accepted: {SCHEDULER_FORMS}")
    return text


# ---------------------------------------------------------------- shared temporary folders

SHARED_PREFIX = "serbench-shared-"
# Folders are named after their owner (pid, host tag) so that the next client can tell a stale one
# (its owner is gone) from one in use; a folder of another host (a shared /tmp) is never touched.
_HOST_TAG = hashlib.sha1(platform.node().encode("utf-8", "replace")).hexdigest()[:8]
_SHARED_NAME = re.compile(rf"{SHARED_PREFIX}(\d+)-([0-9a-f]{{8}})-[A-Za-z0-9_]+")
#: Shared folders of this process (removed at exit if not before) and of its client (in a worker).
_OWN_FOLDERS: set[str] = set()
_CLIENT_FOLDERS: set[str] = set()
_LIVE_EXECUTORS: "weakref.WeakSet[Executor]" = weakref.WeakSet()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process, alive
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read()
        return fields[fields.rindex(b")") + 2:][:1] not in (b"Z", b"X")
    except (OSError, ValueError):  # no /proc (macOS): kill(pid, 0) said it exists
        return True


def _remove_shared_folder(path: str) -> None:
    """Remove one ``serbench-shared-*`` folder (never through a link, never anything else)."""
    if not _SHARED_NAME.fullmatch(os.path.basename(path)) or os.path.islink(path):
        return
    shutil.rmtree(path, ignore_errors=True)


def remove_stale_shared(tmpdir: str | None = None) -> list[str]:
    """Remove the shared folders left in ``tmpdir`` (the temp folder) by clients no longer running.

    Only folders of this host and this user whose owner process is gone are removed; returns their paths.
    """
    root = tmpdir or tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return []
    removed = []
    for name in names:
        m = _SHARED_NAME.fullmatch(name)
        if m is None or m.group(2) != _HOST_TAG:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            continue
        _remove_shared_folder(path)
        if not os.path.lexists(path):
            removed.append(path)
    return removed


def _make_shared_folder() -> str:
    path = tempfile.mkdtemp(prefix=f"{SHARED_PREFIX}{os.getpid()}-{_HOST_TAG}-")
    _OWN_FOLDERS.add(path)
    return path


@atexit.register
def _at_exit() -> None:
    # Runs before multiprocessing's own exit handler (registered earlier, atexit is LIFO): workers
    # are told to stop here, so that handler does not wait on them.
    for ex in list(_LIVE_EXECUTORS):
        try:
            ex.close()
        except Exception:  # exiting anyway; the workers watch this process and leave on their own
            pass
    for path in list(_OWN_FOLDERS):
        _remove_shared_folder(path)


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


#: Exit status of a worker that left because its client is gone.
CLIENT_GONE_EXIT = 75


def _watch_client(alive: Any) -> None:
    """Exit this worker as soon as its client is gone, removing the client's shared folders.

    ``alive`` is the read end of a pipe whose write end only the client holds and never writes to:
    reading it returns when the client closes it or dies, however it dies (``kill -9`` included),
    whatever the task running meanwhile is doing. (The worker's parent is the fork server, which
    outlives the client while workers hold its socket, so watching the parent pid would not do.)
    """
    def watch() -> None:
        try:
            while True:
                alive.recv_bytes()
        except (EOFError, OSError):
            pass
        for path in list(_CLIENT_FOLDERS):
            _remove_shared_folder(path)
        os._exit(CLIENT_GONE_EXIT)

    threading.Thread(target=watch, name="serbench-client-watch", daemon=True).start()


class _RemoteTraceback(Exception):
    """The worker's traceback of a task's exception, attached as its ``__cause__``."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _loads(blob: bytes) -> Any:
    from multiprocessing.reduction import ForkingPickler

    return ForkingPickler.loads(blob)


def _dumps(obj: Any) -> bytes:
    from multiprocessing.reduction import ForkingPickler

    return bytes(ForkingPickler.dumps(obj))


def _worker_main(conn: Any, alive: Any, threads: int | None, preload: tuple[str, ...],
                 folders: tuple[str, ...]) -> None:
    """A local worker: run the tasks the client sends on ``conn``, one at a time, until told to stop.

    A task is ``8-byte id + pickle(fn, shared, args)``; the reply ``pickle(id, ok, value or
    exception, traceback text)``. An empty message (or the client closing ``conn``) stops it.
    """
    _watch_client(alive)
    _CLIENT_FOLDERS.update(folders)
    # Ctrl-C reaches the whole process group: the client decides what happens to the tasks (close()).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(threads, preload)
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not msg:
            return
        tid = struct.unpack("<Q", msg[:8])[0]
        try:
            fn, shared, args = _loads(msg[8:])
            if isinstance(shared, SharedFolder):
                _CLIENT_FOLDERS.add(os.path.dirname(shared.path))
            reply: tuple = (tid, True, _call_shared(fn, shared, threads, args), None)
        except BaseException as exc:  # sent back to the client, like a future's exception
            reply = (tid, False, exc, traceback.format_exc())
        try:
            blob = _dumps(reply)
        except BaseException as exc:
            what = "result" if reply[1] else f"exception ({type(reply[2]).__name__}: {reply[2]})"
            blob = _dumps((tid, False, ExecutorError(f"the task's {what} cannot be sent back to the client: "
                                                     f"{type(exc).__name__}: {exc}"), reply[3]))
        del reply
        conn.send_bytes(blob)


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
    #: Called as ``on_lost(future, what)`` (in the thread collecting results) when the worker running a
    #: task died and the task is rerun; ``what`` says which process and how it died. None: a line on stderr.
    on_lost: Callable[[Any, str], None] | None = None

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

    def _report_lost(self) -> None:
        while self._lost:
            fut, what = self._lost.popleft()
            if self.on_lost is not None:
                self.on_lost(fut, what)
            else:
                _say(self.log, f"{what} while running a task; the task is rerun on a fresh worker")


class DaskExecutor(Executor):
    """Tasks on a :mod:`dask.distributed` cluster (an address, or a LocalCluster for ``local:N``)."""

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

    def _report_lost(self) -> None:
        while self._lost:
            fut, what = self._lost.popleft()
            if self.on_lost is not None:
                self.on_lost(fut, what)
            else:
                _say(self.log, f"{what} while running a task; Dask reruns the task on another worker")

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


def make_executor(workers: int | None = None, scheduler: str | None = None, *,
                  threads: int | None = None, preload: tuple[str, ...] = (),
                  log: Callable[[str], None] | None = None) -> Executor:
    """The executor for ``--workers`` / ``--scheduler`` (``$SERBENCH_SCHEDULER`` when neither is given).

    ``workers`` None and no scheduler: :class:`InProcess`. Giving both is an error. A scheduler
    address is checked before anything starts (:func:`check_scheduler`; a bad one names
    ``--scheduler`` or ``$SERBENCH_SCHEDULER``, whichever gave it). ``preload``: modules local
    worker processes import as they start (the libraries the tasks will need). ``log``: where the
    executor's warnings go (more workers than cores, a lost worker; default: stderr).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ExecutorError(f"--threads {threads!r}: give a positive number of threads")
    scheduler = scheduler or None
    env = os.environ.get(SCHEDULER_ENV) or None
    if scheduler is None and workers is None and env is not None:
        scheduler, source = env, f"${SCHEDULER_ENV}"
    else:
        source = "--scheduler"
        if scheduler and env is not None and scheduler == env:
            source = f"--scheduler (or ${SCHEDULER_ENV})"   # a caller may have read it from the environment
    if workers is not None and scheduler:
        raise ExecutorError("give either --workers N (local processes) or --scheduler ADDRESS (Dask), not both")
    if scheduler:
        return DaskExecutor(scheduler, threads=threads, preload=preload, source=source, log=log)
    if workers:
        return LocalProcesses(workers, threads=threads, preload=preload, log=log)
    return InProcess()


__all__ = ["Executor", "InProcess", "LocalProcesses", "DaskExecutor", "ExecutorError", "WorkerLostError", "SharedFolder",
           "make_executor", "limit_threads", "check_scheduler", "remove_stale_shared", "SCHEDULER_ENV",
           "SCHEDULER_FORMS"]
