"""Fixtures for corpus-loader tests: tiny synthetic WAV files in a corpus-shaped tree."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 16000
DURATION = 0.1  # seconds: enough for a header with frames, cheap to write and read


def write_wav(path: Path, seconds: float = DURATION, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a quiet 220 Hz tone (float32 (n,)) as 16-bit PCM WAV, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate), dtype=np.float32) / sample_rate
    sf.write(str(path), 0.1 * np.sin(2 * np.pi * 220.0 * t), sample_rate, subtype="PCM_16")
    return path


@pytest.fixture
def make_corpus() -> Callable[..., Path]:
    """``make_corpus(root, wavs, texts=None)``: write each relative path in ``wavs`` as a tiny
    WAV and each ``{relative path: content}`` of ``texts`` as a text file; return ``root``."""

    def make(root: Path, wavs: Iterable[str], texts: dict[str, str] | None = None) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for rel in wavs:
            write_wav(root / rel)
        for rel, content in (texts or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content)
        return root

    return make
