"""RAVDESS, the Ryerson Audio-Visual Database of Emotional Speech and Song: speech part.

Layout of the audio-only speech release (``Audio_Speech_Actors_01-24.zip``)::

    Actor_01/03-01-01-01-01-01-01.wav
    ...
    Actor_24/03-01-08-02-02-02-24.wav

The name is seven two-digit fields: modality (03 audio-only), vocal channel
(01 speech, 02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry,
06 fearful, 07 disgust, 08 surprised), intensity (01 normal, 02 strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"),
repetition (01, 02) and actor (01-24; odd male, even female).

The ``Actor_NN`` folders may also sit inside ``Audio_Speech_Actors_01-24/`` (or the
song release's folder), and the files may lie flat in the corpus folder. Song files
(vocal channel 02) are listed as skipped: this loader is for the speech corpus.
A second copy of a file (the common Kaggle copy ships every actor twice, once at the
top and once under ``audio_speech_actors_01-24/``) is skipped as a duplicate.
"""
from __future__ import annotations

import re
from pathlib import Path

from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files, known_metadata

INFO = CorpusInfo(
    name="ravdess",
    title="RAVDESS, Ryerson Audio-Visual Database of Emotional Speech and Song",
    language="English (North American)",
    speakers="24 (12 f, 12 m)",
    emotions=("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    layout="Actor_<NN>/03-01-<emotion>-<intensity>-<statement>-<repetition>-<actor>.wav, "
           "e.g. Actor_12/03-01-06-01-02-01-12.wav (also under Audio_Speech_Actors_01-24/, or flat)",
    obtain="Zenodo record 1188976 (CC BY-NC-SA 4.0): download Audio_Speech_Actors_01-24.zip and unzip it",
)
EXPECTED = 1440
KNOWN_FILES = ("README*", "LICENSE*", "*.md", "*.txt", "*.pdf", "*.csv")

CODES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fear", "07": "disgust", "08": "surprise",
}
NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)"
    r"-(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$"
)
ACTOR_DIR = re.compile(r"^actor_(\d\d)$", re.IGNORECASE)
# The release zips unpack to these names; Kaggle lower-cases them.
CONTAINER_DIR = re.compile(r"^audio_(speech|song)_actors_01-24$", re.IGNORECASE)


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    """Entries for every speech file; song, misplaced, misnamed and duplicate files as skipped."""
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path, rel in audio_files(root, skipped, known_metadata(KNOWN_FILES)):
        folder_actor, problem = _folder_actor(rel.parts[:-1])
        if problem:
            skipped.append(Skipped(str(rel), problem))
            continue
        m = NAME.match(path.stem)
        if m is None:
            skipped.append(Skipped(str(rel), "name is not MM-VV-EE-II-SS-RR-AA, e.g. 03-01-06-01-02-01-12"))
            continue
        if m["channel"] == "02":
            skipped.append(Skipped(str(rel), "song, not speech"))
            continue
        reason = _check_fields(m)
        if reason is None and folder_actor is not None and folder_actor != m["actor"]:
            reason = f"actor {m['actor']} in the name but the file is in Actor_{folder_actor}"
        if reason:
            skipped.append(Skipped(str(rel), reason))
            continue
        if path.stem in seen:
            skipped.append(Skipped(str(rel), f"duplicate of {seen[path.stem]}"))
            continue
        seen[path.stem] = str(rel)
        actor = m["actor"]
        entries.append(Entry(
            utterance_id=path.stem, path=path, speaker=actor, emotion=CODES[m["emotion"]],
            label=m["emotion"], text_id=m["statement"],
            gender="m" if int(actor) % 2 == 1 else "f",
        ))
    return entries, skipped


def _folder_actor(folders: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(actor number of an ``Actor_NN`` folder or None, a problem with the folders or None)."""
    rest = list(folders)
    if rest and CONTAINER_DIR.match(rest[0]):
        rest.pop(0)
    if not rest:
        return None, None
    if len(rest) == 1:
        m = ACTOR_DIR.match(rest[0])
        if m:
            return m.group(1), None
    return None, "expected Actor_NN/<name>.wav (optionally under Audio_Speech_Actors_01-24/) or a flat folder"


def _check_fields(m: re.Match[str]) -> str | None:
    if m["modality"] != "03":
        return f"modality {m['modality']} is not 03 (audio-only)"
    if m["channel"] != "01":
        return f"unknown vocal channel {m['channel']!r}"
    if m["emotion"] not in CODES:
        return f"unknown emotion code {m['emotion']!r}"
    if m["intensity"] not in ("01", "02"):
        return f"unknown intensity {m['intensity']!r}"
    if m["statement"] not in ("01", "02"):
        return f"unknown statement {m['statement']!r}"
    if m["repetition"] not in ("01", "02"):
        return f"unknown repetition {m['repetition']!r}"
    if not 1 <= int(m["actor"]) <= 24:
        return f"actor {m['actor']} outside 01-24"
    return None
