"""The worker side: thread limits, the client watch, the worker loop and the task wrappers."""
from __future__ import annotations

import importlib
import os
import signal
import struct
import sys
import threading
import traceback
from collections import OrderedDict
from typing import Any, Callable

from serbench.executors._common import ExecutorError
from serbench.executors.shared import SharedFolder, _CLIENT_FOLDERS, _remove_shared_folder


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


