"""SAVEE, the Surrey Audio-Visual Expressed Emotion database (audio).

Layout of the release's audio part::

    AudioData/DC/a01.wav     speaker DC, anger, sentence 1
    AudioData/KL/su15.wav    speaker KL, surprise, sentence 15

Codes: a anger, d disgust, f fear, h happiness, n neutral, sa sadness, su surprise;
15 sentences per emotion and 30 neutral, 120 per speaker. The corpus folder may be
the release folder or ``AudioData`` itself. The common Kaggle copy renames the files
``DC_a01.wav`` and puts them all in one folder (``ALL/``); that naming is accepted in
the corpus folder or any single sub-folder. The four speakers (DC, JE, JK, KL) are
male. ``text_id`` is the code plus number (``a01``): SAVEE numbers sentences within
each emotion, so the same number in two emotions is not the same sentence.
"""
from __future__ import annotations

import re
from pathlib import Path

from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files, known_metadata

INFO = CorpusInfo(
    name="savee",
    title="SAVEE, Surrey Audio-Visual Expressed Emotion database (audio)",
    language="English (British)",
    speakers="4 (4 m)",
    emotions=("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    layout="AudioData/<DC|JE|JK|KL>/<code><nn>.wav, e.g. AudioData/DC/a01.wav "
           "(or <speaker>_<code><nn>.wav in one folder, e.g. ALL/DC_a01.wav)",
    obtain="University of Surrey (kahlan.eps.surrey.ac.uk/savee): register and download the audio data",
)
EXPECTED = 480
KNOWN_FILES = ("README*", "LICENSE*", "Info*.txt", "*.md", "*.txt", "*.pdf", "*.csv", "*.doc", "*.docx")
# Other parts of the full audio-visual release: video, annotated clips, tracked landmarks.
KNOWN_DIRS = ("audiovisualclip", "videodata", "visualdata", "annotation", "documentation")

SPEAKERS = ("DC", "JE", "JK", "KL")
CODES = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}
NAME = re.compile(r"^(?P<code>sa|su|a|d|f|h|n)(?P<number>\d\d)$")
FLAT_NAME = re.compile(r"^(?P<speaker>[A-Z]{2})_(?P<code>sa|su|a|d|f|h|n)(?P<number>\d\d)$")


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    """Entries for every file named after the release or the Kaggle copy; others as skipped."""
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path, rel in audio_files(root, skipped, known_metadata(KNOWN_FILES, dirs=KNOWN_DIRS, max_depth=2)):
        folders = rel.parts[:-1]
        if folders and folders[0].lower() == "audiodata":
            folders = folders[1:]
        flat = FLAT_NAME.match(path.stem)
        plain = NAME.match(path.stem)
        if flat and len(folders) <= 1:
            speaker, code, number = flat["speaker"], flat["code"], flat["number"]
        elif plain and len(folders) == 1:
            speaker, code, number = folders[0], plain["code"], plain["number"]
        else:
            skipped.append(Skipped(str(rel), "expected AudioData/<speaker>/<code><nn>.wav or "
                                             "<speaker>_<code><nn>.wav, e.g. DC/a01.wav or DC_a01.wav"))
            continue
        if speaker not in SPEAKERS:
            skipped.append(Skipped(str(rel), f"unknown speaker {speaker!r}; SAVEE has {', '.join(SPEAKERS)}"))
            continue
        text_id = f"{code}{number}"
        entries.append(Entry(
            utterance_id=f"{speaker}_{text_id}", path=path, speaker=speaker, emotion=CODES[code],
            label=code, text_id=text_id, gender="m",
        ))
    return entries, skipped
