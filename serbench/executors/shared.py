"""Shared temporary folders: named after their owner, removed at close, at exit and when stale;
:class:`SharedFolder` is how a task names the data in one."""
from __future__ import annotations

import atexit
import hashlib
import importlib
import os
import platform
import re
import shutil
import stat
import tempfile
import weakref
from dataclasses import dataclass
from typing import Any

# multiprocessing registers its exit handler on import; ours (below) must be registered after it, so that
# it runs first (atexit is last-in, first-out).
import multiprocessing.util  # noqa: F401,E402



SHARED_PREFIX = "serbench-shared-"
# Folders are named after their owner (pid, host tag) so that the next client can tell a stale one
# (its owner is gone) from one in use; a folder of another host (a shared /tmp) is never touched.
_HOST_TAG = hashlib.sha1(platform.node().encode("utf-8", "replace")).hexdigest()[:8]
_SHARED_NAME = re.compile(rf"{SHARED_PREFIX}(\d+)-([0-9a-f]{{8}})-[A-Za-z0-9_]+")
#: Shared folders of this process (removed at exit if not before) and of its client (in a worker).
_OWN_FOLDERS: set[str] = set()
_CLIENT_FOLDERS: set[str] = set()
_LIVE_EXECUTORS: "weakref.WeakSet[Any]" = weakref.WeakSet()   # the open executors, closed at exit


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


@dataclass(frozen=True)
class SharedFolder:
    """Shared data written to ``path`` by its ``save_shared``; ``loader`` ('module:Class') reads it back."""

    path: str
    loader: str

    def load(self) -> Any:
        module, _, qualname = self.loader.partition(":")
        cls = getattr(importlib.import_module(module), qualname)
        return cls.load_shared(self.path)


