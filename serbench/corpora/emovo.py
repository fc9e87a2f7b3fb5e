"""EMOVO, the Italian emotional speech corpus (Fondazione Ugo Bordoni).

Layout: one folder per speaker, files named emotion, speaker, sentence::

    f1/dis-f1-b1.wav
    m3/tri-m3-n5.wav

Speakers f1, f2, f3 (female) and m1, m2, m3 (male); emotions dis disgust,
gio joy -> happy, neu neutral, pau fear, rab anger, sor surprise, tri sadness;
14 sentences (b1-b3, d1-d2, l1-l4, n1-n5). The speaker folders may sit inside an
``EMOVO/`` folder (the release zip) and/or a ``Dataset/`` folder (a common copy);
its ``Documents/`` folder and top-level readme files are ignored. ``text_id`` is
the sentence code.
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files

INFO = CorpusInfo(
    name="emovo",
    title="EMOVO Italian emotional speech corpus",
    language="Italian",
    speakers="6 (3 f, 3 m)",
    emotions=("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    layout="[EMOVO/]<f1|f2|f3|m1|m2|m3>/<emotion>-<speaker>-<sentence>.wav, e.g. EMOVO/f1/dis-f1-b1.wav",
    obtain="Fondazione Ugo Bordoni (voice.fub.it/activities/corpora/emovo): request the corpus",
)
EXPECTED = 588
KNOWN_FILES = ("README*", "LICENSE*", "*.md", "*.txt", "*.pdf", "*.csv", "*.doc", "*.docx")
KNOWN_DIRS = ("documents", "document", "documenti", "docs")
CONTAINERS = ("emovo", "dataset")

SPEAKERS = ("f1", "f2", "f3", "m1", "m2", "m3")
CODES = {
    "dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear",
    "rab": "angry", "sor": "surprise", "tri": "sad",
}
SENTENCES = ("b1", "b2", "b3", "d1", "d2", "l1", "l2", "l3", "l4", "n1", "n2", "n3", "n4", "n5")
NAME = re.compile(r"^(?P<emotion>[a-z]{3})-(?P<speaker>[fm]\d)-(?P<sentence>[a-z]\d)$", re.IGNORECASE)


def _is_metadata(rel: Path) -> bool:
    """Documentation of the release: anything in a known folder, known files in the containers."""
    folders = [p.lower() for p in rel.parts[:-1]]
    if any(f in KNOWN_DIRS for f in folders):
        return True
    return all(f in CONTAINERS for f in folders) and any(fnmatch.fnmatch(rel.name, p) for p in KNOWN_FILES)


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    """Entries for every ``<speaker>/<emotion>-<speaker>-<sentence>`` file; others as skipped."""
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path, rel in audio_files(root, skipped, _is_metadata):
        folders = [p.lower() for p in rel.parts[:-1]]
        if not folders or not all(f in CONTAINERS for f in folders[:-1]) or folders[-1] not in SPEAKERS:
            skipped.append(Skipped(str(rel), "expected [EMOVO/]<speaker>/<emotion>-<speaker>-<sentence>.wav"))
            continue
        m = NAME.match(path.stem)
        if m is None:
            skipped.append(Skipped(str(rel), "name is not <emotion>-<speaker>-<sentence>, e.g. dis-f1-b1"))
            continue
        code, speaker, sentence = m["emotion"].lower(), m["speaker"].lower(), m["sentence"].lower()
        reason = None
        if code not in CODES:
            reason = f"unknown emotion code {code!r}"
        elif speaker != folders[-1]:
            reason = f"speaker {speaker} in the name but the file is in folder {rel.parts[-2]!r}"
        elif sentence not in SENTENCES:
            reason = f"unknown sentence code {sentence!r}"
        if reason:
            skipped.append(Skipped(str(rel), reason))
            continue
        entries.append(Entry(
            utterance_id=f"{code}-{speaker}-{sentence}", path=path, speaker=speaker, emotion=CODES[code],
            label=code, text_id=sentence, gender=speaker[0],
        ))
    return entries, skipped
