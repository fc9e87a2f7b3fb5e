"""Fixtures for corpus-loader tests: a corpus-shaped tree of tiny synthetic WAV files."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import pytest

DURATION = 0.1  # seconds: enough for a header with frames, cheap to write and read


@pytest.fixture
def make_corpus(tone) -> Callable[..., Path]:
    """``make_corpus(root, wavs, texts=None)``: write each relative path in ``wavs`` as a
    0.1 s 16 kHz tone (``tone`` from tests/conftest.py) and each ``{relative path: content}``
    of ``texts`` as a text file; return ``root``."""

    def make(root: Path, wavs: Iterable[str], texts: dict[str, str] | None = None) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for rel in wavs:
            tone(root / rel, seconds=DURATION)
        for rel, content in (texts or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content)
        return root

    return make
