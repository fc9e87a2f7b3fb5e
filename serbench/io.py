"""Safe file writes: atomic (a reader sees the old file or the new one, never half of one) and
confined (a path written or deleted must lie inside the folder serbench owns, links followed).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from serbench.errors import SerbenchError

_UMASK = os.umask(0)
os.umask(_UMASK)


class OutsideError(SerbenchError):
    """A path to write or delete leads (through a link) outside the folder serbench owns."""


def ensure_inside(path: str | Path, root: str | Path, action: str = "write") -> Path:
    """``path`` with every link resolved; raise :class:`OutsideError` unless it lies inside ``root``.

    ``root`` is resolved too (a root that is itself a link is the user's choice), and ``root``
    itself counts as inside. Components that do not exist yet are taken literally, so a path
    to create is checked through the links that already exist on its way. ``action`` names
    what was refused in the message ("write", "delete").
    """
    real_root = Path(root).expanduser().resolve()
    real = Path(path).expanduser().resolve()
    if real != real_root and real_root not in real.parents:
        raise OutsideError(
            f"{path}: refusing to {action} it, it leads to {real} (through a link), outside {root}; "
            "serbench only writes and deletes inside the folder it was given: remove the link or choose "
            "another folder")
    return real


def unlink_inside(path: str | Path, root: str | Path, missing_ok: bool = True) -> None:
    """Delete the file ``path`` after :func:`ensure_inside` (a link to outside ``root`` is refused)."""
    ensure_inside(path, root, "delete")
    Path(path).unlink(missing_ok=missing_ok)


def rmtree_inside(path: str | Path, root: str | Path) -> None:
    """Delete the folder tree ``path``, which must lie inside ``root`` and must not be a link.

    Links found inside the tree are removed themselves, never followed (``shutil.rmtree``).
    """
    path = Path(path)
    if path.is_symlink():
        raise OutsideError(f"{path}: refusing to delete it, it is a link (to {path.resolve()}), not a folder "
                           f"of {root}; remove the link yourself if it is no longer needed")
    ensure_inside(path, root, "delete")
    shutil.rmtree(path)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, inside: str | Path | None = None) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and ``os.replace`` it into place.

    On any exception (a full disk included) the temp file is removed and ``path`` is untouched.
    With ``inside``, ``path`` must resolve to a place inside that folder (:func:`ensure_inside`),
    checked before any folder is created.
    """
    path = Path(path)
    if inside is not None:
        ensure_inside(path, inside)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600 files; results and caches are meant to be shared like any other file.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, inside: str | Path | None = None) -> None:
    with atomic_write(path, "wb", inside=inside) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, *, inside: str | Path | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), inside=inside)


class OutputError(SerbenchError):
    """An output path that would destroy something the user owns (an input, an existing file) or names no format."""


def check_output_file(path: str | Path, *, option: str = "--out", inputs: Iterable[str | Path] = (),
                      inside_inputs: Iterable[str | Path] = (), overwrite: bool = False,
                      suffixes: Sequence[str] | None = None) -> Path:
    """Check a single output file before any work is done; return it (user's ``~`` expanded).

    Refused, each in one line naming ``option`` and what to do: a suffix not in ``suffixes``
    (compared lower-case, e.g. ``(".csv", ".parquet")``; None: any), a folder, a path that is
    (links resolved) one of the ``inputs`` files or lies inside one of the ``inside_inputs``
    folders (a model bundle or feature cache being read), and an existing file unless
    ``overwrite``. The inputs are refused even with ``overwrite``: writing over what the
    command reads destroys it.
    """
    out = Path(path).expanduser()
    if suffixes is not None and out.suffix.lower() not in {s.lower() for s in suffixes}:
        got = f"suffix {out.suffix!r}" if out.suffix else "no suffix"
        raise OutputError(f"{option} {path}: {got}; the format follows the suffix, use one of "
                          f"{', '.join(suffixes)}")
    if out.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name inside it")
    real = out.resolve()
    for item in inputs:
        if Path(item).expanduser().resolve() == real:
            raise OutputError(f"{option} {path}: is one of this command's inputs ({item}); writing there would "
                              "destroy it, choose another file")
    for folder in inside_inputs:
        real_folder = Path(folder).expanduser().resolve()
        if real == real_folder or real_folder in real.parents:
            raise OutputError(f"{option} {path}: lies inside {folder}, which this command reads; writing there "
                              "could destroy it, choose a file outside it")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputError(f"{option} {path}: already exists; give --overwrite to replace it, or another name")
    return out



def check_output_folder(path: str | Path, *, option: str = "--out", inside_inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse an output folder that is, or lies inside, or contains one of the ``inside_inputs`` folders
    (a feature cache, a results store or a corpus the command reads), links resolved; return it.

    Whether the folder may be replaced is the writer's own rule (e.g. a bundle needs ``--overwrite``).
    """
    out = Path(path).expanduser()
    real = out.resolve()
    for folder in inside_inputs:
        real_folder = Path(folder).expanduser().resolve()
        if real == real_folder or real_folder in real.parents or real in real_folder.parents:
            raise OutputError(f"{option} {path}: overlaps {folder}, which this command reads; choose a folder "
                              "outside it")
    return out
