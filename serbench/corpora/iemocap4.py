"""IEMOCAP in its usual 4-class setting, as a corpus of its own: ``--corpus iemocap4``.

The same release and layout as :mod:`serbench.corpora.iemocap`, parsed with
``four_class=True``: angry, happy (hap and exc merged; ``label`` keeps which), neutral
and sad. A corpus name rather than a loader option so that every command (features,
baselines, deep models, tables) and every cache and results-store folder sees the same
subset; its default protocol is leave-one-session-out like IEMOCAP's.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from serbench.corpora import iemocap
from serbench.corpora.base import Entry, Skipped

INFO = dataclasses.replace(
    iemocap.INFO, name="iemocap4",
    title="IEMOCAP, 4-class setting (angry, happy+excited, neutral, sad)",
    emotions=("angry", "happy", "neutral", "sad"),
)
# The commonly used 4-class count: 1103 angry, 1636 happy+excited, 1708 neutral, 1084 sad.
EXPECTED = 5531


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    """IEMOCAP entries with angry, happy (hap + exc), neutral and sad only."""
    return iemocap.parse(root, four_class=True)
