"""Audio loading in one place: any rate and channel count in, 16 kHz mono float32 out."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import soxr

from serbench.errors import AudioError

TARGET_SR = 16000
#: A float file whose peak is this many times full scale (1.0) gets a warning: the openSMILE sets
#: quantize to 16 bit and clip it, other sets see it unscaled; a little over 1.0 is common and harmless.
OVER_FULL_SCALE = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file, read without decoding the samples."""

    frames: int
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class Audio:
    """Decoded audio. ``signal`` has shape (n_samples,) at ``sample_rate``."""

    signal: np.ndarray
    sample_rate: int
    orig_sample_rate: int
    orig_channels: int
    #: What is odd about the file but did not stop it being read (a truncated file, samples far
    #: beyond full scale), one reason each, without the path; also logged (info) with the path.
    warnings: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return len(self.signal) / self.sample_rate


# Within a :func:`reuse_file_facts` scope: (kind, path) -> (stat signature, value).
_FACTS: dict[tuple[str, str], tuple[tuple, object]] | None = None


@contextlib.contextmanager
def reuse_file_facts() -> Iterator[None]:
    """Within this block, a file's header and content hash are read once and reused while its
    size, modification time and inode are unchanged.

    A command that loads several feature sets of one corpus (a grid) otherwise reads every
    header and hashes every file once per set. Outside such a block nothing is reused, so a
    long-lived process always sees a file as it is now.
    """
    global _FACTS
    outer = _FACTS
    _FACTS = {} if outer is None else outer
    try:
        yield
    finally:
        _FACTS = outer


def _remembered(kind: str, path: str | Path, compute: Callable[[], object]) -> object:
    if _FACTS is None:
        return compute()
    try:
        st = os.stat(path)
    except OSError:
        return compute()     # let the reader raise its own error naming the file
    sig = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    key = (kind, str(path))
    hit = _FACTS.get(key)
    if hit is not None and hit[0] == sig:
        return hit[1]
    value = compute()
    _FACTS[key] = (sig, value)
    return value


def remembered_in_scope(key: tuple, compute: Callable[[], object]) -> object:
    """``compute()``, reused for the same ``key`` within a :func:`reuse_file_facts` block (e.g. a corpus scan)."""
    if _FACTS is None:
        return compute()
    full = ("scoped",) + tuple(key)
    if full not in _FACTS:
        _FACTS[full] = ((), compute())  # type: ignore[index]
    return _FACTS[full][1]  # type: ignore[index]


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path``; raise :class:`AudioError` if it is not usable audio."""
    return _remembered("info", path, lambda: _audio_info(path))  # type: ignore[return-value]


def _audio_info(path: str | Path) -> AudioInfo:
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types for corrupt headers
        raise AudioError(path, f"unreadable audio ({_short(exc)})") from exc
    if info.frames <= 0:
        raise AudioError(path, "audio has zero length (no samples)")
    return AudioInfo(frames=int(info.frames), sample_rate=int(info.samplerate), channels=int(info.channels))


def load_audio(path: str | Path, sample_rate: int = TARGET_SR) -> Audio:
    """Decode ``path`` to mono float32 at ``sample_rate`` (soxr high quality).

    Multi-channel audio is averaged to mono. Raises :class:`AudioError` naming the
    file when it is missing, empty, unreadable, zero-length or holds NaN/inf.
    Silence is not an error here: feature extractors record it per row.
    """
    path = Path(path)
    audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(path, f"cannot decode audio ({_short(exc)})") from exc
    if data.shape[0] == 0:
        raise AudioError(path, "audio has zero length (no samples)")
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "audio contains NaN or infinite samples")
    channels = data.shape[1]
    notes = []
    claimed = wav_header_frames(path)
    if claimed is not None and claimed > data.shape[0]:
        notes.append(f"truncated: its header gives {claimed / sr:.2f} s ({claimed} frames), the file holds "
                     f"{data.shape[0] / sr:.2f} s; read at the shorter length")
    peak = max(float(data.max()), -float(data.min()))          # no |data| copy of a long file
    if peak > OVER_FULL_SCALE:
        notes.append(f"samples reach {peak:.3g}, {peak:.0f}x full scale (1.0); the openSMILE sets clip them at "
                     "full scale: rescale the file if that is not meant")
    for note in notes:            # info: the callers show them (extract's notes, predict's warnings)
        log.info("%s: %s", path, note)
    mono = data.mean(axis=1) if channels > 1 else data[:, 0]
    del data                      # a long multi-channel file: do not hold both copies while resampling
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32)
    return Audio(signal=np.ascontiguousarray(mono, dtype=np.float32), sample_rate=sample_rate,
                 orig_sample_rate=int(sr), orig_channels=int(channels), warnings=tuple(notes))


def wav_header_frames(path: str | Path) -> int | None:
    """The frame count a RIFF/WAVE file's header claims (its ``data`` chunk size / block size), or None.

    None for other containers, for a header that gives no usable size (0 or 0xFFFFFFFF, as
    streaming writers leave it; RF64) or that cannot be parsed. libsndfile reports the frames
    actually present, so comparing the two finds a file cut short with its header intact.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block = None
            for _ in range(64):             # a WAV has a handful of chunks before its data
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size)
                    if len(fmt) < 14:
                        return None
                    block = struct.unpack("<H", fmt[12:14])[0]
                    if size % 2:
                        f.seek(1, os.SEEK_CUR)
                elif cid == b"data":
                    if not block or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block
                else:
                    f.seek(size + (size % 2), os.SEEK_CUR)
    except (OSError, struct.error):
        return None
    return None


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes: the cache's key for "this audio has not changed"."""
    return _remembered("sha256", path, lambda: _file_hash(path, chunk))  # type: ignore[return-value]


def _file_hash(path: str | Path, chunk: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
