"""The demo corpus that ``serbench demo-corpus`` synthesizes (see :mod:`serbench.corpora.demo_synth`).

Layout: ``<speaker>/<emotion>/<text id>.wav`` plus ``demo-corpus.json`` holding the
speakers' genders and the synthesis settings.
"""
from __future__ import annotations

import json
from pathlib import Path

from serbench.corpora.base import EMOTIONS, CorpusInfo, Entry, Skipped, audio_files, known_metadata

INFO = CorpusInfo(
    name="demo",
    title="serbench demo corpus (synthesized with eSpeak NG)",
    language="English",
    speakers="4+ synthetic voices",
    emotions=("angry", "happy", "neutral", "sad"),
    layout="<speaker>/<emotion>/<text id>.wav plus demo-corpus.json",
    obtain="serbench demo-corpus --to DIR",
)
EXPECTED = None
METADATA = "demo-corpus.json"


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    genders: dict[str, str] = {}
    meta = root / METADATA
    if meta.is_file():
        genders = {s["name"]: s.get("gender") for s in json.loads(meta.read_text()).get("speakers", [])}
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path, rel in audio_files(root, skipped, known_metadata([METADATA])):
        if len(rel.parts) != 3:
            skipped.append(Skipped(str(rel), "expected <speaker>/<emotion>/<text id>.wav"))
            continue
        speaker, emotion, _ = rel.parts
        if emotion not in EMOTIONS:
            skipped.append(Skipped(str(rel), f"unknown emotion folder {emotion!r}"))
            continue
        entries.append(Entry(
            utterance_id=f"{speaker}_{emotion}_{path.stem}", path=path, speaker=speaker, emotion=emotion,
            label=emotion, text_id=path.stem, gender=genders.get(speaker),
        ))
    return entries, skipped
