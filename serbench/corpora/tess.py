"""TESS, the Toronto Emotional Speech Set.

Layout: one folder per speaker and emotion, the file named speaker, word, emotion::

    OAF_angry/OAF_back_angry.wav
    YAF_pleasant_surprised/YAF_back_ps.wav

Two actresses, OAF (older, 64) and YAF (younger, 26), say "Say the word ___" for
200 words in 7 emotions: angry, disgust, fear, happy, neutral, sad and pleasant
surprise (``ps`` in file names, ``Pleasant_surprise`` / ``pleasant_surprised`` in
folder names) -> surprise. The release is inconsistent in case (``OAF_Fear``,
``OAF_Sad``), so names are matched case-insensitively. The emotion folders may sit
inside container folders (the Kaggle copy nests them in
``TESS Toronto emotional speech set data/``) or the files may lie flat; a file whose
folder names another speaker or emotion is skipped, and so is a second copy of the
same file (the Kaggle copy ships the set twice). ``text_id`` is the word.
"""
from __future__ import annotations

import re
from pathlib import Path

from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files, known_metadata

INFO = CorpusInfo(
    name="tess",
    title="TESS, Toronto Emotional Speech Set",
    language="English (Canadian)",
    speakers="2 (2 f)",
    emotions=("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    layout="<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav, e.g. OAF_angry/OAF_back_angry.wav "
           "(pleasant surprise: YAF_pleasant_surprised/YAF_back_ps.wav)",
    obtain="University of Toronto Dataverse (doi:10.5683/SP2/E8H2MF, CC BY-NC-ND 4.0)",
)
EXPECTED = 2800
KNOWN_FILES = ("README*", "LICENSE*", "*.md", "*.txt", "*.pdf", "*.csv")

SPEAKERS = ("OAF", "YAF")
CODES = {
    "angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
    "sad": "sad", "ps": "surprise", "pleasant_surprise": "surprise", "pleasant_surprised": "surprise",
}
_EMOTION = r"(?P<emotion>pleasant_surprised?|ps|angry|disgust|fear|happy|neutral|sad)"
NAME = re.compile(rf"^(?P<speaker>oaf|yaf)_(?P<word>[a-z]+)_{_EMOTION}$", re.IGNORECASE)
FOLDER = re.compile(rf"^(?P<speaker>oaf|yaf)_{_EMOTION}$", re.IGNORECASE)


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    """Entries for every ``<speaker>_<word>_<emotion>`` file; others as skipped."""
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path, rel in audio_files(root, skipped, known_metadata(KNOWN_FILES, max_depth=None)):
        m = NAME.match(path.stem)
        if m is None:
            skipped.append(Skipped(str(rel), "name is not <OAF|YAF>_<word>_<emotion>, e.g. OAF_back_angry"))
            continue
        speaker, code, word = m["speaker"].upper(), m["emotion"].lower(), m["word"].lower()
        folder = FOLDER.match(rel.parts[-2]) if len(rel.parts) > 1 else None
        if folder and (folder["speaker"].upper() != speaker or CODES[folder["emotion"].lower()] != CODES[code]):
            skipped.append(Skipped(str(rel), f"file of {speaker}/{code} in folder {rel.parts[-2]!r}"))
            continue
        utterance_id = f"{speaker}_{word}_{code}"
        if utterance_id in seen:
            skipped.append(Skipped(str(rel), f"duplicate of {seen[utterance_id]}"))
            continue
        seen[utterance_id] = str(rel)
        entries.append(Entry(
            utterance_id=utterance_id, path=path, speaker=speaker, emotion=CODES[code], label=code,
            text_id=word, gender="f",
        ))
    return entries, skipped
