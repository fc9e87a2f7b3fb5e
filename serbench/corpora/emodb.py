"""Berlin Database of Emotional Speech (EMO-DB).

File names encode everything: ``03a01Fa.wav`` = speaker 03, text a01, emotion F,
version a. Files sit in ``wav/`` (the release) or directly in the folder.
"""
from __future__ import annotations

import re
from pathlib import Path

from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files, known_metadata

INFO = CorpusInfo(
    name="emodb",
    title="Berlin Database of Emotional Speech (EMO-DB)",
    language="German",
    speakers="10 (5 f, 5 m)",
    emotions=("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"),
    layout="wav/<speaker><text><emotion><version>.wav, e.g. wav/03a01Fa.wav (or the files without wav/)",
    obtain="freely downloadable: serbench fetch emodb --to DIR",
    fetchable=True,
)
EXPECTED = 535
KNOWN_FILES = ("erkennung.txt", "erklaerung.txt", "README*", "LICENSE*", "*.md", "*.html", "*.pdf")
KNOWN_DIRS = ("lablaut", "labsilb", "silb", "laut")  # phonetic annotations shipped with the release

CODES = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
GENDERS = {"03": "m", "08": "f", "09": "f", "10": "m", "11": "m", "12": "m", "13": "f", "14": "f", "15": "m", "16": "f"}
NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<code>[A-Z])(?P<version>[a-z])$")


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path, rel in audio_files(root, skipped, known_metadata(KNOWN_FILES, dirs=KNOWN_DIRS)):
        if not (len(rel.parts) == 1 or (len(rel.parts) == 2 and rel.parts[0] == "wav")):
            skipped.append(Skipped(str(rel), "EMO-DB files belong in wav/ or the corpus folder itself"))
            continue
        m = NAME.match(path.stem)
        if m is None:
            skipped.append(Skipped(str(rel), "name is not <speaker><text><emotion><version>, e.g. 03a01Fa"))
            continue
        code = m["code"]
        if code not in CODES:
            skipped.append(Skipped(str(rel), f"unknown emotion code {code!r}"))
            continue
        entries.append(Entry(
            utterance_id=path.stem, path=path, speaker=m["speaker"], emotion=CODES[code], label=code,
            text_id=m["text"], gender=GENDERS.get(m["speaker"]),
        ))
    return entries, skipped
