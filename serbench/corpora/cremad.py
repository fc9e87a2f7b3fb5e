"""CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (audio).

Layout of the release repository::

    AudioWAV/1001_DFA_ANG_XX.wav     actor 1001, sentence DFA, anger, level unspecified
    VideoDemographics.csv            ActorID,Age,Sex,Race,Ethnicity (Sex: Male/Female)

Name fields: actor (1001-1091), sentence code (12 sentences: IEO, TIE, IOM, IWW,
TAI, MTI, IWL, ITH, DFA, ITS, TSI, WSI), emotion (ANG, DIS, FEA, HAP, NEU, SAD) and
intensity (LO, MD, HI, XX unspecified; one release file once read ``X``).
The corpus folder may be the repository (holding ``AudioWAV/``) or ``AudioWAV``
itself. Gender comes from ``VideoDemographics.csv`` in the corpus folder (or next
to ``AudioWAV`` when the corpus folder is ``AudioWAV``); without it gender is NA.
``text_id`` is the sentence code.

The repository's other folders (AudioMP3, VideoFlash, VideoMP4, processedResults)
and its metadata files are ignored without being listed. Two checks name common
problems instead of failing later with "unreadable audio": a Git LFS pointer (the
repository cloned without ``git lfs``) and the release's known header-only file
``1076_MTI_NEU_XX.wav`` (CREMA-D issue #8) are listed as skipped with the reason.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from serbench.audio import audio_info
from serbench.corpora.base import CorpusInfo, Entry, Skipped, audio_files, known_metadata
from serbench.errors import AudioError, CorpusError

INFO = CorpusInfo(
    name="cremad",
    title="CREMA-D, Crowd-sourced Emotional Multimodal Actors Dataset (audio)",
    language="English (American)",
    speakers="91 (43 f, 48 m)",
    emotions=("angry", "disgust", "fear", "happy", "neutral", "sad"),
    layout="AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, e.g. AudioWAV/1001_DFA_ANG_XX.wav, "
           "with VideoDemographics.csv (ActorID, Sex) beside AudioWAV for genders",
    obtain="github.com/CheyneyComputerScience/CREMA-D (ODbL): clone with git lfs, or the Kaggle copy",
)
EXPECTED = 7442
DEMOGRAPHICS = "VideoDemographics.csv"
AUDIO_DIR = "AudioWAV"
KNOWN_FILES = ("README*", "LICENSE*", "*.md", "*.txt", "*.csv", "*.pdf", "*.R", "*.r")
KNOWN_DIRS = ("audiomp3", "videoflash", "videomp4", "processedresults", "docs")
#: Files of the official release known to hold no audio.
KNOWN_DEFECTIVE = {"1076_MTI_NEU_XX": "known defective in the release: header only, no audio (CREMA-D issue #8)"}

CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>LO|MD|HI|XX|X)$")
SEXES = {"male": "m", "female": "f"}
LFS_HEADER = b"version https://git-lfs"


def parse(root: Path) -> tuple[list[Entry], list[Skipped]]:
    """Entries for every ``AudioWAV`` file (or flat file) named after the release; others as skipped."""
    genders = _read_genders(root)
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path, rel in audio_files(root, skipped, known_metadata(KNOWN_FILES, dirs=KNOWN_DIRS)):
        if not (len(rel.parts) == 1 or (len(rel.parts) == 2 and rel.parts[0] == AUDIO_DIR)):
            skipped.append(Skipped(str(rel), f"CREMA-D files belong in {AUDIO_DIR}/ or the corpus folder itself"))
            continue
        m = NAME.match(path.stem)
        if m is None:
            skipped.append(Skipped(str(rel), "name is not <actor>_<sentence>_<emotion>_<level>, e.g. 1001_DFA_ANG_XX"))
            continue
        reason = _check_fields(m)
        if reason is None:
            reason = _unusable(path)
        if reason:
            skipped.append(Skipped(str(rel), reason))
            continue
        actor = m["actor"]
        entries.append(Entry(
            utterance_id=path.stem, path=path, speaker=actor, emotion=CODES[m["emotion"]],
            label=m["emotion"], text_id=m["sentence"], gender=genders.get(actor),
        ))
    return entries, skipped


def _check_fields(m: re.Match[str]) -> str | None:
    if not 1001 <= int(m["actor"]) <= 1091:
        return f"actor {m['actor']} outside 1001-1091"
    if m["sentence"] not in SENTENCES:
        return f"unknown sentence code {m['sentence']!r}"
    if m["emotion"] not in CODES:
        return f"unknown emotion code {m['emotion']!r}"
    return None


def _unusable(path: Path) -> str | None:
    """Why a well-named file holds no audio, for the two known cases; None otherwise."""
    if path.stat().st_size < 200:
        with open(path, "rb") as f:
            if f.read(len(LFS_HEADER)) == LFS_HEADER:
                return "Git LFS pointer, not audio: run `git lfs pull` in the CREMA-D clone"
    if path.stem in KNOWN_DEFECTIVE:
        try:
            audio_info(path)
        except AudioError:
            return KNOWN_DEFECTIVE[path.stem]
    return None


def _read_genders(root: Path) -> dict[str, str]:
    """Actor id -> 'm'/'f' from VideoDemographics.csv, or {} when the file is absent."""
    candidates = [root / DEMOGRAPHICS]
    if root.name == AUDIO_DIR:
        candidates.append(root.parent / DEMOGRAPHICS)
    table = next((c for c in candidates if c.is_file()), None)
    if table is None:
        return {}
    genders: dict[str, str] = {}
    with open(table, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"ActorID", "Sex"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{table}: no column(s) {sorted(missing)}; expected ActorID, Age, Sex, Race, Ethnicity")
        for row in reader:
            actor, sex = (row["ActorID"] or "").strip(), (row["Sex"] or "").strip().lower()
            if sex not in SEXES:
                raise CorpusError(f"{table}: actor {actor!r} has Sex {row['Sex']!r}; expected Male or Female")
            genders[actor] = SEXES[sex]
    return genders
