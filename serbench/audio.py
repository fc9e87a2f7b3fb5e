"""Audio loading in one place: any rate and channel count in, 16 kHz mono float32 out."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from serbench.errors import AudioError

TARGET_SR = 16000


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

    @property
    def duration(self) -> float:
        return len(self.signal) / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path``; raise :class:`AudioError` if it is not usable audio."""
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
    mono = data.mean(axis=1) if channels > 1 else data[:, 0]
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32)
    return Audio(signal=np.ascontiguousarray(mono, dtype=np.float32), sample_rate=sample_rate,
                 orig_sample_rate=int(sr), orig_channels=int(channels))


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes: the cache's key for "this audio has not changed"."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
