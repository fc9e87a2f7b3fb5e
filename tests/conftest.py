"""Shared test helpers: tiny synthesized WAV files (tests never read the shared real corpora)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def write_tone(path: Path, seconds: float = 0.2, sr: int = 16000, channels: int = 1,
               freq: float = 220.0, amplitude: float = 0.3, subtype: str = "PCM_16") -> Path:
    """Write a sine tone WAV (optionally multi-channel) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    x = amplitude * np.sin(2 * np.pi * freq * t)
    data = np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x
    sf.write(path, data, sr, subtype=subtype)
    return path


@pytest.fixture
def tone():
    return write_tone
