"""CASIA Chinese emotional speech corpus, the public 1200-utterance portion.

Layout: ``<speaker>/<emotion>/<text id>.wav`` (4 speakers x 6 emotions x 50 texts).
"""
from __future__ import annotations

from pathlib import Path

from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files, known_metadata

INFO = CorpusInfo(
    name="casia",
    title="CASIA Chinese emotional speech (public 1200-utterance set)",
    language="Mandarin Chinese",
    speakers="4 (2 f, 2 m)",
    emotions=("angry", "fear", "happy", "neutral", "sad", "surprise"),
    layout="<speaker>/<emotion>/<text id>.wav, e.g. wangzhe/angry/201.wav",
    obtain="Institute of Automation, Chinese Academy of Sciences (CASIA); licensed, not downloadable here",
)
EXPECTED = 1200
KNOWN_FILES = ("transcripts_*.txt", "README*", "LICENSE*", "*.md")

GENDERS = {"liuchanhg": "f", "liuchang": "f", "zhaoquanyin": "f", "wangzhe": "m", "zhaozuoxiang": "m"}
FOLDER_EMOTIONS = {e: e for e in INFO.emotions}


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path, rel in audio_files(root, skipped, known_metadata(KNOWN_FILES)):
        if len(rel.parts) != 3:
            skipped.append(Skipped(str(rel), "expected <speaker>/<emotion>/<text id>.wav"))
            continue
        speaker, folder, _ = rel.parts
        emotion = FOLDER_EMOTIONS.get(folder.lower())
        if emotion is None:
            skipped.append(Skipped(str(rel), f"unknown emotion folder {folder!r}"))
            continue
        text_id = path.stem
        entries.append(Entry(
            utterance_id=f"{speaker}_{folder}_{text_id}", path=path, speaker=speaker,
            emotion=emotion, label=folder, text_id=text_id, gender=GENDERS.get(speaker.lower()),
        ))
    return entries, skipped
