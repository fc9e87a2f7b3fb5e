"""Safe extraction of zip and tar archives: every member is checked before anything is written.

A member is refused when its name is absolute, carries a drive letter or a ``..``
component, when it is a link (symbolic or hard), a device, a FIFO or a socket, when
it is encrypted, when its destination resolves outside the target folder (a
symbolic link already in the target counts), or when it would overwrite serbench's
own bookkeeping (top-level names starting with ``.serbench-``). Archives with more than
:data:`MAX_MEMBERS` members or :data:`MAX_TOTAL_BYTES` uncompressed bytes are refused
as likely zip bombs.

Members are written into a hidden temp folder inside the target and moved into place
only when all of them were written, so a refused or corrupt archive leaves neither
files outside the target nor a half-written tree inside it.

>>> from serbench.corpora.archive import safe_extract
>>> safe_extract("download.zip", "data/emodb")[:1]  # doctest: +SKIP
['erklaerung.txt']
"""
from __future__ import annotations

import contextlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator, Literal

from serbench.errors import FetchError

__all__ = [
    "MAX_TOTAL_BYTES", "MAX_MEMBERS", "UnsafeArchiveError", "CorruptArchiveError", "Member", "ExtractionPlan",
    "archive_format", "check_archive", "plan_extraction", "extract", "safe_extract",
]

#: Refuse archives that unpack to more than this (EMO-DB unpacks to about 60 MB).
MAX_TOTAL_BYTES = 20 * 1024**3
#: Refuse archives with more members than this (EMO-DB has a few thousand).
MAX_MEMBERS = 200_000
#: Names starting with this belong to serbench's own bookkeeping (temp folders, downloads, stamps).
RESERVED_PREFIX = ".serbench-"
#: Prefix of the temp folder that members are written to before they are moved into place.
TEMP_PREFIX = RESERVED_PREFIX + "extract-"

_COPY_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors that the zip, tar and decompression modules raise for damaged or truncated data;
# OSError covers gzip.BadGzipFile and bz2's "Invalid data stream".
_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
                NotImplementedError, RuntimeError, OSError)

ArchiveFormat = Literal["zip", "tar"]
_Opener = Callable[[], IO[bytes]]


class UnsafeArchiveError(FetchError):
    """The archive holds a member that must not be extracted, or is too large to be plausible."""


class CorruptArchiveError(FetchError):
    """The archive is not a zip or tar file, or its data is damaged or truncated."""


@dataclass(frozen=True)
class Member:
    """One archive member, validated: ``parts`` is its path relative to the target folder."""

    name: str
    parts: tuple[str, ...]
    is_dir: bool
    size: int

    @property
    def path(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True)
class ExtractionPlan:
    """What :func:`extract` will write: validated members of ``archive`` under ``dest``."""

    archive: Path
    dest: Path
    format: ArchiveFormat
    members: tuple[Member, ...]
    total_bytes: int
    max_members: int = MAX_MEMBERS

    @property
    def files(self) -> list[str]:
        """Relative POSIX paths of the regular files, in archive order."""
        return [m.path for m in self.members if not m.is_dir]


def archive_format(path: str | Path) -> ArchiveFormat:
    """``"zip"`` or ``"tar"`` (plain, gzip, bzip2 or xz), from the content, not the name.

    Raises :class:`CorruptArchiveError` when the file is neither (a truncated zip is
    neither: its central directory sits at the end).
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return "zip"
        with tarfile.open(path, "r:*"):
            return "tar"
    except FileNotFoundError:
        raise CorruptArchiveError(f"{path}: archive does not exist") from None
    except _READ_ERRORS:
        pass
    raise CorruptArchiveError(f"{path}: not a zip or tar archive, or truncated")


def check_archive(path: str | Path) -> None:
    """Read every member of the archive through, verifying zip CRCs and tar/compression framing.

    Raises :class:`CorruptArchiveError` naming the archive (and the member, for a CRC error).
    """
    path = Path(path)
    fmt = archive_format(path)
    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise CorruptArchiveError(f"{path}: member {bad!r} fails its CRC check; corrupt archive")
            return
        with tarfile.open(path, "r:*") as tf:
            for info in tf:
                if info.isreg():
                    stream = tf.extractfile(info)
                    assert stream is not None  # a regular member always has data
                    while stream.read(_COPY_CHUNK):
                        pass
    except CorruptArchiveError:
        raise
    except _READ_ERRORS as exc:
        raise CorruptArchiveError(f"{path}: corrupt or truncated {fmt} archive ({_short(exc)})") from exc


def plan_extraction(
    archive: str | Path,
    dest: str | Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> ExtractionPlan:
    """Validate every member of ``archive`` for extraction into ``dest``; write nothing.

    Raises :class:`UnsafeArchiveError` naming the first refused member and the reason,
    :class:`CorruptArchiveError` when the archive cannot be read, and
    :class:`~serbench.errors.FetchError` when ``dest`` itself is in the way (a file where
    the archive has a folder, or too little free space).
    """
    archive, dest = Path(archive), Path(dest)
    fmt = archive_format(archive)
    with _members(archive, fmt, max_members) as items:
        members = [m for m, _ in items]
    _check_tree(archive, members)
    total = sum(m.size for m in members)
    if total > max_total_bytes:
        raise UnsafeArchiveError(
            f"{archive}: refused, it would unpack to {total:,} bytes, above the limit of "
            f"{max_total_bytes:,}; this looks like a zip bomb")
    dest.mkdir(parents=True, exist_ok=True)
    _check_destination(archive, dest, members)
    free = shutil.disk_usage(dest).free
    if total > free:
        raise FetchError(f"{dest}: {archive.name} needs {total:,} bytes but only {free:,} are free; "
                         "free some space")
    return ExtractionPlan(archive=archive, dest=dest, format=fmt, members=tuple(members),
                          total_bytes=total, max_members=max_members)


def extract(plan: ExtractionPlan) -> list[str]:
    """Write the members of a checked plan into ``plan.dest``; return the files' relative paths.

    Members are re-validated as they are read (the archive could have changed since it
    was planned), written into a temp folder inside ``dest`` and then moved into place.
    Existing files of the same name are replaced.
    """
    dest = plan.dest
    _remove_stale_temps(dest)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=dest))
    tmp_root = tmp.resolve()
    try:
        planned = {m.path: m for m in plan.members}
        written = 0
        with _members(plan.archive, plan.format, plan.max_members) as items:
            for member, open_data in items:
                if planned.get(member.path) != member:
                    raise UnsafeArchiveError(
                        f"{plan.archive}: member {member.name!r} was not in the checked listing; "
                        "the archive changed while it was being extracted")
                target = tmp.joinpath(*member.parts)
                if not target.resolve().is_relative_to(tmp_root):  # defence in depth; names were checked
                    _refuse(plan.archive, member.name, "it would be written outside the target folder")
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open_data() as src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
                written += target.stat().st_size
                if written > plan.total_bytes:
                    raise UnsafeArchiveError(
                        f"{plan.archive}: members hold more data than their headers declare")
        _move_into(tmp, dest)
    except FileExistsError as exc:
        raise UnsafeArchiveError(f"{plan.archive}: a member appears twice ({exc.filename})") from exc
    except FetchError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise CorruptArchiveError(f"{plan.archive}: corrupt or truncated archive ({_short(exc)})") from exc
    except OSError as exc:
        raise FetchError(f"{dest}: extracting {plan.archive.name} failed ({_short(exc)}); the temp folder "
                         "was removed, check free space and permissions, then run again") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return plan.files


def safe_extract(
    archive: str | Path,
    dest: str | Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> list[str]:
    """Check every member of ``archive``, then extract it into ``dest``; return the files written.

    Returns relative POSIX paths of the regular files, in archive order. See
    :func:`plan_extraction` for what is refused and :func:`extract` for how it is written.
    """
    return extract(plan_extraction(archive, dest, max_total_bytes=max_total_bytes, max_members=max_members))


# -- member listing and validation -------------------------------------------------------------

@contextlib.contextmanager
def _members(
    archive: Path, fmt: ArchiveFormat, max_members: int,
) -> Iterator[Iterator[tuple[Member, _Opener]]]:
    """Yield an iterator of (validated member, callable opening its data), in archive order."""
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                yield _zip_members(archive, zf, max_members)
        else:
            with tarfile.open(archive, "r:*") as tf:
                yield _tar_members(archive, tf, max_members)
    except FetchError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise CorruptArchiveError(f"{archive}: corrupt or truncated {fmt} archive ({_short(exc)})") from exc


def _zip_members(archive: Path, zf: zipfile.ZipFile, max_members: int) -> Iterator[tuple[Member, _Opener]]:
    infos = zf.infolist()
    _check_count(archive, len(infos), max_members)
    for info in infos:
        name = info.filename
        # Unix zips keep st_mode in the high 16 bits; other systems leave them 0.
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            _refuse(archive, name, "it is a symbolic link")
        if kind in (stat.S_IFCHR, stat.S_IFBLK):
            _refuse(archive, name, "it is a device file")
        if kind == stat.S_IFIFO:
            _refuse(archive, name, "it is a FIFO")
        if kind == stat.S_IFSOCK:
            _refuse(archive, name, "it is a socket")
        if info.flag_bits & 0x1:
            _refuse(archive, name, "it is encrypted (password-protected)")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        parts = _safe_parts(archive, name, is_dir)
        if parts is None:
            continue
        yield Member(name, parts, is_dir, 0 if is_dir else info.file_size), (lambda i=info: zf.open(i))


def _tar_members(archive: Path, tf: tarfile.TarFile, max_members: int) -> Iterator[tuple[Member, _Opener]]:
    count = 0
    for info in tf:
        count += 1
        _check_count(archive, count, max_members)
        name = info.name
        if info.issym():
            _refuse(archive, name, f"it is a symbolic link (to {info.linkname!r})")
        if info.islnk():
            _refuse(archive, name, f"it is a hard link (to {info.linkname!r})")
        if info.ischr() or info.isblk():
            _refuse(archive, name, "it is a device file")
        if info.isfifo():
            _refuse(archive, name, "it is a FIFO")
        if not (info.isreg() or info.isdir()):
            _refuse(archive, name, f"unsupported member type {info.type!r}")
        parts = _safe_parts(archive, name, info.isdir())
        if parts is None:
            continue

        def open_data(i: tarfile.TarInfo = info) -> IO[bytes]:
            stream = tf.extractfile(i)
            assert stream is not None  # regular members always have a data stream
            return stream

        yield Member(name, parts, info.isdir(), 0 if info.isdir() else info.size), open_data


def _safe_parts(archive: Path, name: str, is_dir: bool) -> tuple[str, ...] | None:
    """The member's relative path components; ``None`` for the archive's root folder ("./")."""
    if not name:
        _refuse(archive, name, "its name is empty")
    if "\x00" in name:
        _refuse(archive, name, "its name holds a NUL byte")
    if name.startswith(("/", "\\")):
        _refuse(archive, name, "its path is absolute")
    if _DRIVE.match(name):
        _refuse(archive, name, "its path starts with a drive letter")
    # Backslashes count as separators: Windows tools write them, and a name like
    # "..\\x" must not slip through as one harmless-looking component.
    parts = tuple(p for p in re.split(r"[\\/]+", name) if p not in ("", "."))
    if ".." in parts:
        _refuse(archive, name, "its path has a '..' component")
    if not parts:
        if is_dir:
            return None
        _refuse(archive, name, "its path names no file")
    if parts[0].startswith(RESERVED_PREFIX):
        _refuse(archive, name, f"names starting with {RESERVED_PREFIX!r} are reserved for serbench")
    return parts


def _check_count(archive: Path, count: int, max_members: int) -> None:
    if count > max_members:
        raise UnsafeArchiveError(
            f"{archive}: refused, it has more than {max_members:,} members; this looks like a zip bomb")


def _check_tree(archive: Path, members: list[Member]) -> None:
    """Refuse duplicate files and paths that are a file in one member and a folder in another."""
    files: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    for m in members:
        for i in range(1, len(m.parts)):
            if m.parts[:i] in files:
                _refuse(archive, m.name, f"'{'/'.join(m.parts[:i])}' is also a file in the archive")
            dirs.add(m.parts[:i])
        if m.is_dir:
            if m.parts in files:
                _refuse(archive, m.name, "the same path is also a file in the archive")
            dirs.add(m.parts)
        else:
            if m.parts in files:
                _refuse(archive, m.name, "the archive holds it twice")
            if m.parts in dirs:
                _refuse(archive, m.name, "the same path is also a folder in the archive")
            files.add(m.parts)


def _check_destination(archive: Path, dest: Path, members: list[Member]) -> None:
    """Every member must land inside ``dest`` once existing links are resolved, and fit what is there."""
    root = dest.resolve()
    for m in members:
        target = dest.joinpath(*m.parts)
        resolved = target.resolve()
        if not resolved.is_relative_to(root):
            _refuse(archive, m.name, f"it would be written to {resolved}, outside {dest} "
                                     "(a symbolic link in the target folder points out of it)")
        folders = [dest.joinpath(*m.parts[:i]) for i in range(1, len(m.parts) + m.is_dir)]
        for folder in folders:
            if folder.exists() and not folder.is_dir():
                raise FetchError(f"{folder} is a file but {archive.name} needs a folder there; "
                                 "move it away and run again")
        if not m.is_dir and target.is_dir():
            raise FetchError(f"{target} is a folder but {archive.name} has a file there; "
                             "move it away and run again")


def _refuse(archive: Path, name: str, reason: str) -> None:
    raise UnsafeArchiveError(f"{archive}: refused member {name!r}: {reason}; nothing was extracted")


# -- writing ------------------------------------------------------------------------------------

def _move_into(src: Path, dst: Path) -> None:
    """Merge the tree ``src`` into ``dst``: whole new folders in one rename, files one by one."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir():
            if target.is_dir():
                _move_into(entry, target)
                continue
            if target.exists() or target.is_symlink():
                raise FetchError(f"{target} is in the way of a folder from the archive; "
                                 "move it away and run again")
        os.replace(entry, target)


def _remove_stale_temps(dest: Path) -> None:
    # Left by a run that was killed mid-extraction; only our own prefix, never a link.
    for entry in dest.glob(TEMP_PREFIX + "*"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
