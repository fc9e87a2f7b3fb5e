"""Download a freely downloadable corpus and unpack it, verified: ``serbench fetch emodb --to DIR``.

>>> from serbench.corpora.fetch import fetch
>>> fetch("emodb", "data/emodb").n_utterances  # doctest: +SKIP
535

Only EMO-DB may be downloaded; for every other corpus :func:`fetch` says how to obtain
it. What ``DIR`` holds while and after fetching:

- ``.serbench-download/<archive>.part``: the download in progress. A re-run resumes it
  with an HTTP Range request when the server supports one, else starts it afresh.
- ``.serbench-download/<archive>``: the archive, renamed from ``.part`` only once its
  size (HTTP Content-Length), sha256 (when one is given) and content (zip CRCs, tar
  framing) were verified. It is kept, so a re-extraction needs no download;
  ``<archive>.url`` beside it names its address, so that neither the archive nor a
  ``.part`` from another address is ever reused.
- the corpus files, extracted safely (:mod:`serbench.corpora.archive`).
- ``.serbench-fetch.json``: the stamp, written last (url, sha256, files, time). While
  it matches and its files are present, a re-run does nothing and says so.

Hidden names keep all of this out of the corpus scan.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Callable

from serbench import __version__
from serbench.audio import file_hash
from serbench.corpora import expected_count, get_loader, scan
from serbench.corpora.archive import (
    CorruptArchiveError,
    UnsafeArchiveError,
    check_archive,
    extract,
    plan_extraction,
)
from serbench.corpora.base import check_expected_count
from serbench.errors import AudioError, CorpusError, FetchError
from serbench.io import atomic_write_text

__all__ = ["EMODB_URL", "DOWNLOADS", "STAMP", "DOWNLOAD_DIR", "FetchResult", "fetch", "download"]

#: The public address of the EMO-DB release (no official checksum is published).
EMODB_URL = "http://emodb.bilderbar.info/download/download.zip"
#: Corpora that may be downloaded, and from where.
DOWNLOADS: dict[str, str] = {"emodb": EMODB_URL}

DOWNLOAD_DIR = ".serbench-download"
STAMP = ".serbench-fetch.json"
PART_SUFFIX = ".part"
SOURCE_SUFFIX = ".url"  # beside the archive: the address its bytes came from
USER_AGENT = f"serbench/{__version__} (Python urllib)"

_CHUNK = 1 << 16
_SCHEMES = ("http", "https", "file")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: ``progress(bytes_done, bytes_total or None)``, called as the download advances.
Progress = Callable[[int, int | None], None]


@dataclass
class FetchResult:
    """What :func:`fetch` did and where the corpus is.

    ``root`` is the folder to scan (``DIR`` itself, or the single folder the archive
    wraps its files in); ``archive`` the kept download; ``sha256`` the archive's digest
    as computed; ``n_files`` the files extracted; ``n_utterances`` what the corpus scan
    found; ``warnings`` what is off but not fatal (an utterance count other than the
    official release's, files that do not fit the layout).
    """

    corpus: str
    root: Path
    archive: Path
    url: str
    sha256: str
    downloaded: bool
    extracted: bool
    skipped: bool
    n_files: int
    n_utterances: int
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One line for the user saying what was done."""
        if self.skipped:
            return (f"{self.corpus} is already in {self.root} ({self.n_utterances} utterances, stamp "
                    f"{STAMP}); nothing to do")
        how = "downloaded" if self.downloaded else "reused the verified archive"
        return (f"{self.corpus}: {how} {self.archive.name} (sha256 {self.sha256}), extracted {self.n_files} "
                f"files; {self.n_utterances} utterances in {self.root}")

    def summary(self) -> dict:
        """A JSON-friendly dict of the result, with :attr:`message`."""
        out = asdict(self)
        out["root"], out["archive"], out["message"] = str(self.root), str(self.archive), self.message
        return out


def fetch(
    corpus: str,
    to: str | Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60,
) -> FetchResult:
    """Download ``corpus`` into the folder ``to``, verify it, extract it safely and scan it.

    ``url`` replaces the corpus' public address (a mirror, or the path of an archive
    downloaded by hand); ``sha256`` (64 hex digits) is checked against the archive when
    given; ``progress(done, total)`` follows the download in bytes; ``timeout`` bounds
    the connection and each read, in seconds.

    Raises :class:`~serbench.errors.CorpusError` for an unknown corpus and
    :class:`~serbench.errors.FetchError` for a corpus that cannot be downloaded (saying
    how to obtain it), a failed or interrupted download (run again to resume), a size
    or checksum mismatch, a corrupt archive, an archive member that is unsafe to
    extract, or an extracted folder that does not scan as ``corpus``.
    """
    loader = get_loader(corpus)
    name = loader.INFO.name
    source = _source_url(loader, url)
    expected_sha = _check_sha256(sha256)
    dest = Path(to).expanduser()
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"{dest}: not a folder; pass --to a folder (it is created if missing)")
    dest.mkdir(parents=True, exist_ok=True)

    stamp = _read_stamp(dest)
    if _stamp_matches(stamp, name, source, expected_sha, dest):
        root = dest.joinpath(*PurePosixPath(str(stamp.get("root", "."))).parts)
        try:
            n_utterances, warnings = _check_corpus(name, root, source)
        except CorpusError as exc:
            raise FetchError(f"{exc}; delete {dest / STAMP} to fetch {name} again") from exc
        return FetchResult(
            corpus=name, root=root, archive=dest / DOWNLOAD_DIR / str(stamp.get("archive", "")), url=source,
            sha256=stamp["sha256"], downloaded=False, extracted=False, skipped=True,
            n_files=len(stamp["files"]), n_utterances=n_utterances, warnings=warnings,
        )

    archive = dest / DOWNLOAD_DIR / _archive_name(source, name)
    digest = _reuse_archive(archive, source, expected_sha)
    downloaded = digest is None
    if digest is None:
        digest = download(source, archive, sha256=expected_sha, progress=progress, timeout=timeout)

    try:
        plan = plan_extraction(archive, dest)
    except (UnsafeArchiveError, CorruptArchiveError) as exc:
        # An archive we will never extract is of no use; removing it lets a fixed source be fetched.
        _discard(archive)
        raise FetchError(f"{exc} (downloaded from {source}; the archive was removed)") from None
    files = extract(plan)
    root, n_utterances, warnings = _find_root(name, dest, files, source)
    atomic_write_text(dest / STAMP, json.dumps({
        "corpus": name,
        "url": source,
        "archive": archive.name,
        "sha256": digest,
        "size": archive.stat().st_size,
        "root": root.relative_to(dest).as_posix(),
        "n_utterances": n_utterances,
        "files": files,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "serbench": __version__,
    }, indent=1) + "\n")
    return FetchResult(
        corpus=name, root=root, archive=archive, url=source, sha256=digest, downloaded=downloaded,
        extracted=True, skipped=False, n_files=len(files), n_utterances=n_utterances, warnings=warnings,
    )


def download(
    url: str,
    archive: str | Path,
    *,
    sha256: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60,
) -> str:
    """Download ``url`` to ``archive`` through ``<archive>.part``; return the file's sha256.

    An existing ``.part`` is resumed with a Range request; a server that answers 200
    instead of 206 (or 416) gets a clean restart. ``archive`` appears only after the
    size, the checksum (``sha256``, when given) and the archive's content were verified.
    An interrupted download keeps its ``.part`` (run again to resume); a complete but
    wrong one is removed.
    """
    archive = Path(archive)
    part = archive.with_name(archive.name + PART_SUFFIX)
    part.parent.mkdir(parents=True, exist_ok=True)
    if _source_of(archive) != url:
        # Bytes from another address must not be resumed; say where the new ones come from first.
        part.unlink(missing_ok=True)
        atomic_write_text(archive.with_name(archive.name + SOURCE_SUFFIX), url + "\n")
    offset = part.stat().st_size if part.is_file() else 0
    response, offset, total = _open(url, offset, timeout)
    done = offset
    # read1 returns what has arrived instead of waiting for a full chunk, so a stalled
    # connection that times out keeps every byte already received for the resume.
    read = getattr(response, "read1", response.read)
    with response, open(part, "ab" if offset else "wb") as out:
        if progress is not None:
            progress(done, total)
        while True:
            try:
                block = read(_CHUNK)
            except (http.client.HTTPException, OSError) as exc:
                out.flush()
                raise FetchError(f"{url}: download interrupted after {done:,} bytes "
                                 f"({exc or type(exc).__name__}); {part} is kept, run the same command "
                                 "again to resume") from exc
            if not block:
                break
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
        out.flush()
        os.fsync(out.fileno())

    if total is not None and done < total:
        raise FetchError(f"{url}: download interrupted at {done:,} of {total:,} bytes; {part} is kept, "
                         "run the same command again to resume")
    if total is not None and done > total:
        _discard(archive)
        raise FetchError(f"{url}: the server sent {done:,} bytes but announced {total:,}; the download "
                         "was removed, run again")
    digest = file_hash(part)
    if sha256 is not None and digest != sha256:
        _discard(archive)
        raise FetchError(f"{url}: sha256 mismatch, the download has {digest} but {sha256} was expected; "
                         "the download was removed. Check the sha256 and the address")
    try:
        check_archive(part)
    except CorruptArchiveError as exc:
        if total is None:
            # Without a size from the server a dropped connection looks like a finished
            # download; keeping the .part lets a re-run resume it.
            raise FetchError(f"{exc} (from {url}, size not announced); {part} is kept, run again to resume "
                             "or delete it to start afresh") from None
        _discard(archive)
        raise FetchError(f"{exc} (from {url}); the download was removed, run again to download it "
                         "afresh") from None
    os.replace(part, archive)
    return digest


# -- helpers -------------------------------------------------------------------------------------

def _source_url(loader: ModuleType, url: str | None) -> str:
    info = loader.INFO
    if not info.fetchable:
        raise FetchError(
            f"{info.name} ({info.title}) cannot be downloaded with serbench fetch. How to obtain it: "
            f"{info.obtain}. Then pass its folder as --root (expected layout: {info.layout})")
    if url is None:
        if info.name not in DOWNLOADS:
            raise FetchError(f"{info.name}: no download address is known; pass the archive's address with --url")
        return DOWNLOADS[info.name]
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in _SCHEMES:
        return url
    local = Path(url).expanduser()
    if local.is_file():
        # An archive downloaded by hand goes through the same verification as a download.
        return local.resolve().as_uri()
    raise FetchError(f"url {url!r}: neither an {'/'.join(_SCHEMES)} address nor an existing file")


def _check_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower()
    if not _SHA256.match(digest):
        raise FetchError(f"sha256 {value!r}: not a SHA-256 digest (64 hexadecimal digits)")
    return digest


def _archive_name(url: str, corpus: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if not name or name.startswith(".") or "\\" in name:
        return f"{corpus}-download"
    return name


def _reuse_archive(archive: Path, url: str, sha256: str | None) -> str | None:
    """The digest of an archive kept from an earlier run of ``url`` if it still verifies, else ``None``."""
    if not archive.is_file():
        return None
    try:
        if _source_of(archive) != url:
            raise CorruptArchiveError(f"{archive}: downloaded from another address")
        digest = file_hash(archive)
        if sha256 is not None and digest != sha256:
            raise CorruptArchiveError(f"{archive}: sha256 {digest} is not the expected {sha256}")
        check_archive(archive)
    except CorruptArchiveError:
        archive.unlink(missing_ok=True)
        return None
    return digest


def _discard(archive: Path) -> None:
    """Remove the archive, its ``.part`` and its ``.url``: the next run downloads afresh."""
    for suffix in ("", PART_SUFFIX, SOURCE_SUFFIX):
        archive.with_name(archive.name + suffix).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # only when empty: other downloads may live there
        archive.parent.rmdir()


def _source_of(archive: Path) -> str | None:
    try:
        return archive.with_name(archive.name + SOURCE_SUFFIX).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _open(url: str, offset: int, timeout: float) -> tuple[http.client.HTTPResponse, int, int | None]:
    """Open ``url`` from byte ``offset`` where the server allows it: (response, first byte, total size)."""
    if offset:
        response = _request(url, offset, timeout)
        if response is not None:
            status = getattr(response, "status", None) or 200  # file: URLs carry no status
            if status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start == offset:
                    length = _content_length(response)
                    if total is None and length is not None:
                        total = offset + length
                    return response, offset, total
            elif 200 <= status < 300:
                # The server ignored the Range header: its body is the whole file.
                return response, 0, _content_length(response)
            response.close()
    response = _request(url, 0, timeout)
    assert response is not None  # only a Range request can answer 416
    return response, 0, _content_length(response)


def _request(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | None:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}; check the address or try again "
                         "later") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(
            f"{url}: cannot download ({reason}); check the network connection, or download the file "
            "another way and pass its path with --url") from None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/N`` header; ``None`` where absent."""
    m = re.match(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value or "")
    if m is None:
        return None, None
    return int(m[1]), (int(m[3]) if m[3] != "*" else None)


def _read_stamp(dest: Path) -> dict:
    try:
        stamp = json.loads((dest / STAMP).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _stamp_matches(stamp: dict, corpus: str, url: str, sha256: str | None, dest: Path) -> bool:
    files = stamp.get("files")
    if stamp.get("corpus") != corpus or stamp.get("url") != url or not isinstance(stamp.get("sha256"), str):
        return False
    if sha256 is not None and stamp["sha256"] != sha256:
        return False
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        return False
    return all((dest / f).is_file() for f in files)


def _find_root(corpus: str, dest: Path, files: list[str], url: str) -> tuple[Path, int, list[str]]:
    """The folder that scans as ``corpus``: ``dest``, or the one folder the archive wraps everything in."""
    candidates = [dest]
    tops = {PurePosixPath(f).parts[0] for f in files}
    if len(tops) == 1 and all(len(PurePosixPath(f).parts) > 1 for f in files):
        candidates.append(dest / tops.pop())
    error: CorpusError | None = None
    for root in candidates:
        try:
            n_utterances, warnings = _check_corpus(corpus, root, url)
        except CorpusError as exc:
            error = exc
            continue
        return root, n_utterances, warnings
    raise FetchError(f"{dest}: the files extracted from {url} do not scan as {corpus} ({error}); "
                     "check that the address points at the corpus' archive")


def _check_corpus(corpus: str, root: Path, url: str) -> tuple[int, list[str]]:
    """Scan ``root``: the utterance count and warnings (count off the official release, files left out).

    Raises :class:`CorpusError` when ``root`` does not scan as ``corpus``.
    """
    try:
        result = scan(corpus, root)
    except AudioError as exc:
        raise FetchError(f"{exc}; the archive from {url} holds audio that cannot be read") from exc
    warnings = []
    note = check_expected_count(result, expected_count(corpus))
    if note:
        warnings.append(note)
    if result.skipped:
        first = result.skipped[0]
        warnings.append(f"{len(result.skipped)} file(s) in {root} do not fit the {corpus} layout, "
                        f"e.g. {first.path} ({first.reason})")
    return len(result.manifest), warnings
