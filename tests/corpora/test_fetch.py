"""serbench.corpora.fetch and .archive against a local HTTP server on 127.0.0.1.

The archives are tiny EMO-DB-like zips (and tars) built in memory from numpy sines;
nothing here reads the shared real corpora or leaves the machine.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import tarfile
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import soundfile as sf

from serbench.corpora import scan
from serbench.corpora import fetch as fetch_module
from serbench.corpora.archive import UnsafeArchiveError, safe_extract
from serbench.corpora.fetch import DOWNLOAD_DIR, STAMP, fetch
from serbench.errors import CorpusError, FetchError

NAMES = ("03a01Fa", "08a02Wb", "10b01Nc", "16b03Ta")
EMOTIONS = {"03a01Fa": "happy", "08a02Wb": "angry", "10b01Nc": "neutral", "16b03Ta": "sad"}


# -- archives -----------------------------------------------------------------------------------

def wav_bytes(freq: float) -> bytes:
    t = np.arange(800) / 16000  # 50 ms
    buf = io.BytesIO()
    signal = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    sf.write(buf, signal, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


WAVS = {name: wav_bytes(200 + 50 * i) for i, name in enumerate(NAMES)}


def emodb_zip(prefix: str = "", extra: Sequence[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> bytes:
    """An EMO-DB-like release: erklaerung.txt and wav/<name>.wav, stored (uncompressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{prefix}erklaerung.txt", "Erklaerung der Dateinamen\n")
        for name, data in WAVS.items():
            zf.writestr(f"{prefix}wav/{name}.wav", data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def emodb_tar(extra: Sequence[tuple[tarfile.TarInfo, bytes | None]] = (), mode: str = "w:gz") -> bytes:
    members = [(tar_member("./", tarfile.DIRTYPE), None), (tar_member("./wav", tarfile.DIRTYPE), None)]
    members += [(tar_member(f"./wav/{n}.wav"), d) for n, d in WAVS.items()]
    return tar_bytes(members + list(extra), mode)


# -- the local server ---------------------------------------------------------------------------

class ServerState:
    """What the test server serves and what it saw."""

    def __init__(self, payload: bytes, ranges: bool = True, drop_after: int | None = None,
                 length: bool = True, stall: bool = False) -> None:
        self.payload = payload
        self.ranges = ranges
        self.drop_after = drop_after  # first response only: send this many body bytes, then hang up
        self.length = length  # send Content-Length
        self.stall = stall  # after drop_after bytes, wait for `release` instead of hanging up
        self.release = threading.Event()
        self.requests: list[dict] = []
        self.lock = threading.Lock()


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            body, status, headers = state.payload, 200, {}
            wanted = self.headers.get("Range")
            if wanted and state.ranges:
                start = int(re.fullmatch(r"bytes=(\d+)-", wanted)[1])
                if start >= len(body):
                    self._record(wanted, 416)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                body, status = body[start:], 206
            self._record(wanted, status)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            if state.length:
                self.send_header("Content-Length", str(len(body)))
            if state.ranges:
                self.send_header("Accept-Ranges", "bytes")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            with state.lock:
                drop, state.drop_after = state.drop_after, None
            self.wfile.write(body if drop is None else body[:drop])
            self.wfile.flush()
            if drop is not None and state.stall:
                state.release.wait(10)

        def _record(self, wanted: str | None, status: int) -> None:
            with state.lock:
                state.requests.append({"path": self.path, "range": wanted, "status": status})

    return Handler


@pytest.fixture
def serve(monkeypatch):
    """``serve(payload, name=..., ranges=..., drop_after=...) -> (url, state)``; servers stop at teardown."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    running: list[tuple[ThreadingHTTPServer, threading.Thread, ServerState]] = []

    def start(payload: bytes, *, name: str = "download.zip", **options: object) -> tuple[str, ServerState]:
        state = ServerState(payload, **options)
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread, state))
        return f"http://127.0.0.1:{server.server_address[1]}/{name}", state

    yield start
    for server, thread, state in running:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def files_under(path: Path) -> list[Path]:
    """Everything that is not a plain folder (files, links), recursively."""
    return sorted(p for p in path.rglob("*") if p.is_symlink() or not p.is_dir())


# -- fetch: the happy path, re-runs, resume -------------------------------------------------------

@pytest.mark.parametrize("give_sha", [False, True])
def test_fetch_downloads_verifies_extracts_and_scans(tmp_path, serve, give_sha):
    payload = emodb_zip()
    digest = hashlib.sha256(payload).hexdigest()
    url, state = serve(payload)
    dest = tmp_path / "emodb"
    calls: list[tuple[int, int | None]] = []

    result = fetch("emodb", dest, url=url, sha256=digest.upper() if give_sha else None,
                   progress=lambda done, total: calls.append((done, total)))

    assert (result.downloaded, result.extracted, result.skipped) == (True, True, False)
    assert result.root == dest and result.corpus == "emodb" and result.url == url
    assert result.archive == dest / DOWNLOAD_DIR / "download.zip"
    assert result.archive.read_bytes() == payload
    assert result.sha256 == digest
    assert (result.n_files, result.n_utterances) == (5, 4)
    assert any("535" in w for w in result.warnings)  # 4 utterances, not the official 535
    for name, data in WAVS.items():
        assert (dest / "wav" / f"{name}.wav").read_bytes() == data
    assert not list(dest.rglob("*.part")) and not list(dest.glob(".serbench-extract-*"))
    assert calls[0][0] == 0 and calls[-1] == (len(payload), len(payload))

    stamp = json.loads((dest / STAMP).read_text())
    assert stamp["url"] == url and stamp["sha256"] == digest and stamp["time"]
    assert sorted(stamp["files"]) == sorted(["erklaerung.txt", *(f"wav/{n}.wav" for n in NAMES)])

    manifest = scan("emodb", result.root).manifest
    assert dict(zip(manifest["utterance_id"], manifest["emotion"])) == EMOTIONS
    assert [r["range"] for r in state.requests] == [None]


def test_rerun_skips_then_reextracts_then_redownloads(tmp_path, serve, monkeypatch):
    payload = emodb_zip()
    url, state = serve(payload)
    monkeypatch.setitem(fetch_module.DOWNLOADS, "emodb", url)  # the default address, no url=
    dest = tmp_path / "emodb"
    fetch("emodb", dest)
    assert len(state.requests) == 1

    again = fetch("emodb", dest)
    assert (again.skipped, again.downloaded, again.extracted) == (True, False, False)
    assert again.n_utterances == 4 and again.n_files == 5
    assert "nothing to do" in again.message
    assert len(state.requests) == 1

    (dest / "wav" / "08a02Wb.wav").unlink()  # a listed file is gone: re-extract the kept archive
    third = fetch("emodb", dest)
    assert (third.skipped, third.downloaded, third.extracted) == (False, False, True)
    assert (dest / "wav" / "08a02Wb.wav").read_bytes() == WAVS["08a02Wb"]
    assert len(state.requests) == 1

    third.archive.write_bytes(b"damaged")  # a kept archive that no longer verifies is downloaded again
    (dest / STAMP).unlink()
    fourth = fetch("emodb", dest)
    assert fourth.downloaded and fourth.archive.read_bytes() == payload
    assert len(state.requests) == 2


@pytest.mark.parametrize("ranges", [True, False], ids=["server-resumes", "server-ignores-range"])
def test_interrupted_download_keeps_only_part_and_resumes(tmp_path, serve, ranges):
    payload = emodb_zip()
    half = len(payload) // 2
    url, state = serve(payload, ranges=ranges, drop_after=half)
    dest = tmp_path / "emodb"
    part = dest / DOWNLOAD_DIR / "download.zip.part"

    with pytest.raises(FetchError, match="run the same command again to resume"):
        fetch("emodb", dest, url=url)
    assert part.read_bytes() == payload[:half]
    # no final archive, no corpus files, no stamp: only the .part and the address it comes from
    assert files_under(dest) == [part, dest / DOWNLOAD_DIR / "download.zip.url"]

    result = fetch("emodb", dest, url=url)
    assert result.downloaded and result.n_utterances == 4
    assert result.archive.read_bytes() == payload and not part.exists()
    assert state.requests[1]["range"] == f"bytes={half}-"
    assert state.requests[1]["status"] == (206 if ranges else 200)


def test_archive_or_part_from_another_address_is_not_reused(tmp_path, serve):
    first, second = emodb_zip(), emodb_zip(extra=[("README.md", b"a mirror\n")])
    url_a, state_a = serve(first, drop_after=len(first) // 2)
    url_b, state_b = serve(second)
    assert url_a != url_b and url_a.endswith("/download.zip") and url_b.endswith("/download.zip")
    dest = tmp_path / "emodb"
    with pytest.raises(FetchError, match="resume"):
        fetch("emodb", dest, url=url_a)

    from_b = fetch("emodb", dest, url=url_b)
    assert [r["range"] for r in state_b.requests] == [None]  # A's half was not resumed from B
    assert from_b.archive.read_bytes() == second

    from_a = fetch("emodb", dest, url=url_a)  # B's kept archive is not taken for A's
    assert from_a.downloaded and from_a.archive.read_bytes() == first
    assert [r["range"] for r in state_a.requests] == [None, None]


def test_stalled_download_times_out_and_resumes(tmp_path, serve):
    payload = emodb_zip()
    url, state = serve(payload, drop_after=3000, stall=True)
    dest = tmp_path / "emodb"
    with pytest.raises(FetchError, match="interrupted after 3,000 bytes .*again to resume"):
        fetch("emodb", dest, url=url, timeout=1.0)
    state.release.set()
    assert fetch("emodb", dest, url=url).n_utterances == 4
    assert state.requests[1]["range"] == "bytes=3000-"


def test_unannounced_size_keeps_a_short_download_to_resume(tmp_path, serve):
    # Without Content-Length a dropped connection looks like the end of the file: the
    # archive check catches it, and the .part stays for the next run to resume.
    payload = emodb_zip()
    url, state = serve(payload, drop_after=4000, length=False)
    dest = tmp_path / "emodb"
    with pytest.raises(FetchError, match="size not announced.*is kept, run again to resume"):
        fetch("emodb", dest, url=url)
    assert (dest / DOWNLOAD_DIR / "download.zip.part").stat().st_size == 4000
    result = fetch("emodb", dest, url=url)
    assert result.archive.read_bytes() == payload
    assert state.requests[1]["range"] == "bytes=4000-" and state.requests[1]["status"] == 206


def test_complete_part_from_a_killed_run_restarts_after_416(tmp_path, serve):
    payload = emodb_zip()
    url, state = serve(payload)
    dest = tmp_path / "emodb"
    part = dest / DOWNLOAD_DIR / "download.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload)  # complete, but killed before the rename
    (dest / DOWNLOAD_DIR / "download.zip.url").write_text(url + "\n")

    result = fetch("emodb", dest, url=url)
    assert result.n_utterances == 4 and result.archive.read_bytes() == payload
    assert [r["status"] for r in state.requests] == [416, 200]


def test_local_file_as_url_and_wrapped_root(tmp_path):
    archive = tmp_path / "by-hand.zip"
    archive.write_bytes(emodb_zip(prefix="EmoDB/"))
    dest = tmp_path / "emodb"

    result = fetch("emodb", dest, url=str(archive))
    assert result.url == archive.resolve().as_uri()
    assert result.root == dest / "EmoDB"
    assert result.n_utterances == 4
    assert json.loads((dest / STAMP).read_text())["root"] == "EmoDB"
    assert fetch("emodb", dest, url=str(archive)).skipped


# -- fetch: refusals ------------------------------------------------------------------------------

def _zip_symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("wav/link.wav")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


MALICIOUS = {
    "zip-dotdot": lambda out: ("download.zip", emodb_zip(extra=[("../evil.txt", b"x")]), "'..' component"),
    "zip-absolute": lambda out: ("download.zip", emodb_zip(extra=[(str(out / "evil.txt"), b"x")]), "absolute"),
    "zip-backslash-dotdot": lambda out: ("download.zip", emodb_zip(extra=[("wav\\..\\..\\evil.txt", b"x")]),
                                         "'..' component"),
    "zip-drive-letter": lambda out: ("download.zip", emodb_zip(extra=[("C:/evil.txt", b"x")]), "drive letter"),
    "zip-symlink": lambda out: ("download.zip", emodb_zip(extra=[(_zip_symlink(), str(out).encode())]),
                                "symbolic link"),
    "tar-symlink": lambda out: ("emodb.tar.gz", emodb_tar([(tar_member("wav/link", tarfile.SYMTYPE, str(out)),
                                                            None)]), "symbolic link"),
    "tar-hardlink": lambda out: ("emodb.tar.gz", emodb_tar([(tar_member("wav/hard", tarfile.LNKTYPE,
                                                                        "../../outside/secret"), None)]),
                                 "hard link"),
    "tar-dotdot": lambda out: ("emodb.tar.gz", emodb_tar([(tar_member("wav/../../evil.txt"), b"x")]),
                               "'..' component"),
    "tar-fifo": lambda out: ("emodb.tar.gz", emodb_tar([(tar_member("wav/pipe", tarfile.FIFOTYPE), None)]), "FIFO"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archive_is_refused_and_nothing_is_written(tmp_path, serve, case):
    outside = tmp_path / "outside"
    name, payload, reason = MALICIOUS[case](outside)
    url, _ = serve(payload, name=name)
    dest = tmp_path / "data" / "emodb"

    with pytest.raises(FetchError, match=re.escape(reason)) as info:
        fetch("emodb", dest, url=url)
    assert "refused member" in str(info.value)
    assert files_under(tmp_path) == []  # nothing outside DIR, nothing inside it, the archive removed
    assert not outside.exists() and not (dest / DOWNLOAD_DIR).exists()


@pytest.mark.parametrize("damage", ["crc", "truncated", "html-page"])
def test_corrupt_archive_is_refused_and_removed(tmp_path, serve, damage):
    payload = emodb_zip()
    if damage == "crc":
        at = payload.index(WAVS["10b01Nc"][200:232]) + 8  # inside a stored member's data
        payload = payload[:at] + bytes([payload[at] ^ 0xFF]) + payload[at + 1:]
    elif damage == "truncated":
        payload = payload[: len(payload) // 2]
    else:
        payload = b"<html><body>Not here any more</body></html>"
    url, _ = serve(payload)
    dest = tmp_path / "emodb"

    with pytest.raises(FetchError, match="CRC|corrupt|not a zip or tar") as info:
        fetch("emodb", dest, url=url)
    assert "removed" in str(info.value)
    assert files_under(tmp_path) == []  # neither .part nor archive, nothing extracted


def test_sha256_mismatch_is_refused(tmp_path, serve):
    url, _ = serve(emodb_zip())
    dest = tmp_path / "emodb"
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch("emodb", dest, url=url, sha256="0" * 64)
    assert files_under(tmp_path) == []
    with pytest.raises(FetchError, match="64 hexadecimal digits"):
        fetch("emodb", dest, url=url, sha256="abc")


def test_archive_that_is_not_emodb_fails_the_scan(tmp_path, serve):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("speaker1/angry/001.wav", WAVS["03a01Fa"])
    url, _ = serve(buf.getvalue())
    with pytest.raises(FetchError, match="do not scan as emodb"):
        fetch("emodb", tmp_path / "emodb", url=url)
    assert not (tmp_path / "emodb" / STAMP).exists()


def test_unreachable_server_is_a_fetch_error(tmp_path, serve):
    url, _ = serve(b"")
    port = int(re.search(r":(\d+)/", url)[1])
    # Port 1 on the loopback is closed: the connection is refused at once.
    with pytest.raises(FetchError, match="cannot download"):
        fetch("emodb", tmp_path / "emodb", url=url.replace(f":{port}/", ":1/"), timeout=5)


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:1/casia.zip"])
def test_corpus_that_cannot_be_downloaded_says_how_to_obtain_it(tmp_path, url):
    dest = tmp_path / "casia"
    with pytest.raises(FetchError, match="casia .*cannot be downloaded.*How to obtain it: .*Chinese Academy of Sciences"):
        fetch("casia", dest, url=url)
    assert not dest.exists()


def test_unknown_corpus_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus 'nosuch'"):
        fetch("nosuch", tmp_path / "x")


# -- safe extraction on its own -----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_safe_extract_tar_formats(tmp_path, mode):
    archive = tmp_path / "corpus.tar"
    archive.write_bytes(emodb_tar(mode=mode))
    files = safe_extract(archive, tmp_path / "out")
    assert files == [f"wav/{n}.wav" for n in NAMES]
    for name, data in WAVS.items():
        assert (tmp_path / "out" / "wav" / f"{name}.wav").read_bytes() == data


@pytest.mark.parametrize("limits, reason", [
    ({"max_total_bytes": 4000}, "would unpack to"),
    ({"max_members": 3}, "more than 3 members"),
])
def test_safe_extract_refuses_likely_bombs(tmp_path, limits, reason):
    archive = tmp_path / "big.zip"
    archive.write_bytes(emodb_zip())
    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(archive, tmp_path / "out", **limits)
    assert files_under(tmp_path / "out") == []


def test_safe_extract_refuses_a_link_in_the_target_pointing_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "wav").symlink_to(outside)
    archive = tmp_path / "a.zip"
    archive.write_bytes(emodb_zip())
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("extra, reason", [
    ([("wav/03a01Fa.wav", b"again")], "holds it twice"),
    ([("erklaerung.txt/inner.txt", b"x")], "also a file in the archive"),
    ([(".serbench-fetch.json", b"{}")], "reserved for serbench"),
])
def test_safe_extract_refuses_ambiguous_or_reserved_names(tmp_path, extra, reason):
    archive = tmp_path / "a.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we add on purpose
        archive.write_bytes(emodb_zip(extra=extra))
    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(archive, tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_safe_extract_replaces_existing_files_and_keeps_others(tmp_path):
    dest = tmp_path / "out"
    (dest / "wav").mkdir(parents=True)
    (dest / "wav" / "03a01Fa.wav").write_bytes(b"old")
    (dest / "notes.txt").write_text("mine")
    (dest / ".serbench-extract-stale").mkdir()  # left by a killed run
    archive = tmp_path / "a.zip"
    archive.write_bytes(emodb_zip())
    safe_extract(archive, dest)
    assert (dest / "wav" / "03a01Fa.wav").read_bytes() == WAVS["03a01Fa"]
    assert (dest / "notes.txt").read_text() == "mine"
    assert not list(dest.glob(".serbench-extract-*"))
