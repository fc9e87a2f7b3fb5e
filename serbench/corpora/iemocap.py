"""IEMOCAP, the Interactive Emotional Dyadic Motion Capture database (audio of the segmented turns).

Layout of ``IEMOCAP_full_release`` (the corpus folder may be that folder or its parent)::

    Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav
    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt

Each evaluation file holds one line per utterance with its majority label, e.g.
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``,
followed by the individual annotators' lines (ignored here). Labels: neu, fru, ang,
sad, hap, exc, sur, fea, dis, and oth (other) / xxx (no majority).

Speaker = session + the gender letter of the utterance's last name part (``F000`` -> ``Ses01F``):
every session has one female and one male actor, whichever of them wore the markers
(the dialog name's letter). ``session`` is ``Session1`` .. ``Session5``; ``text_id`` is
the dialog (scripted dialogs share their script across sessions, so text_id is a
dialog, not a sentence).

Utterances labelled xxx or oth, or with no label line, are listed as skipped with
the reason. With ``four_class=True`` only angry, happy (hap and exc merged, the
usual 4-class setting; ``label`` keeps hap/exc), neutral and sad are kept; the other
labelled utterances (fru, sur, fea, dis) are left out *without* being listed as
skipped, because the user asked for the subset (xxx/oth are still listed).

Only audio under ``Session*/sentences/wav`` counts. The release's other files
(transcriptions, MOCAP, avi, forced alignment, full-dialog wavs under
``dialog/wav``, documentation) are ignored without being listed; other audio files
in the corpus folder are listed as skipped.
"""
from __future__ import annotations

import re
from pathlib import Path

from serbench.corpora.base import AUDIO_SUFFIXES, CorpusInfo, Entry, Skipped, iter_files, unsupported_format

INFO = CorpusInfo(
    name="iemocap",
    title="IEMOCAP, Interactive Emotional Dyadic Motion Capture database",
    language="English",
    speakers="10 (5 f, 5 m) in 5 sessions",
    emotions=("angry", "disgust", "excited", "fear", "frustrated", "happy", "neutral", "sad", "surprise"),
    layout="[IEMOCAP_full_release/]Session<1-5>/sentences/wav/<dialog>/<utterance>.wav with labels in "
           "Session<1-5>/dialog/EmoEvaluation/<dialog>.txt, e.g. "
           "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav",
    obtain="USC SAIL (sail.usc.edu/iemocap): request the release under its license agreement",
)
# Manifest rows of the full release in the default setting: the 10039 segmented utterances
# less the 2507 labelled xxx and 3 labelled oth (no majority label; listed as skipped).
EXPECTED = 7529
RELEASE_DIR = "IEMOCAP_full_release"

CODES = {
    "neu": "neutral", "fru": "frustrated", "ang": "angry", "sad": "sad", "hap": "happy",
    "exc": "excited", "sur": "surprise", "fea": "fear", "dis": "disgust",
}
UNUSABLE = {"xxx": "no majority label (xxx)", "oth": "label 'oth' (other) has no canonical emotion"}
FOUR_CLASS = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}

SESSION_DIR = re.compile(r"^Session([1-5])$")
LABEL_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(?P<utt>\S+)\s+(?P<code>\S+)")
UTTERANCE = re.compile(r"^Ses0(?P<session>[1-5])[FM]_.+_(?P<gender>[FM])\d+$")


def parse(root: Path, *, four_class: bool = False) -> tuple[list[Entry], list[Skipped]]:
    """Entries for every labelled utterance; ``four_class`` keeps ang, hap+exc, neu, sad only."""
    base = _release_root(root)
    labels = _read_labels(base)
    codes = FOUR_CLASS if four_class else CODES
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path in iter_files(base, skipped, relative_to=root):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            why = unsupported_format(path)
            if why:
                skipped.append(Skipped(str(path.relative_to(root)), why))
            continue  # transcriptions, MOCAP, avi, alignments ...: not audio, part of the release
        rel = path.relative_to(root)
        parts = path.relative_to(base).parts
        in_session = len(parts) >= 2 and SESSION_DIR.match(parts[0]) is not None
        if in_session and parts[1:3] == ("dialog", "wav"):
            continue  # whole-dialog recordings; the corpus is the segmented turns
        if not (in_session and len(parts) == 5 and parts[1:3] == ("sentences", "wav")):
            skipped.append(Skipped(str(rel), "audio outside Session<1-5>/sentences/wav/<dialog>/"))
            continue
        session_dir, _, _, dialog, _ = parts
        utt = path.stem
        m = UTTERANCE.match(utt)
        if m is None or not utt.startswith(dialog + "_"):
            skipped.append(Skipped(str(rel), f"name is not <dialog>_<F|M><nnn> for dialog {dialog!r}, "
                                             "e.g. Ses01F_impro01_F000"))
            continue
        if f"Session{m['session']}" != session_dir:
            skipped.append(Skipped(str(rel), f"utterance of session {m['session']} filed under {session_dir}"))
            continue
        code = labels.get(utt)
        if code is None:
            skipped.append(Skipped(str(rel), f"no label line in {session_dir}/dialog/EmoEvaluation/{dialog}.txt"))
            continue
        if code in UNUSABLE:
            skipped.append(Skipped(str(rel), UNUSABLE[code]))
            continue
        if code not in CODES:
            skipped.append(Skipped(str(rel), f"unknown label {code!r}"))
            continue
        if code not in codes:
            continue  # excluded by four_class, as documented above
        gender = m["gender"]
        entries.append(Entry(
            utterance_id=utt, path=path, speaker=f"Ses0{m['session']}{gender}", emotion=codes[code],
            label=code, text_id=dialog, gender=gender.lower(), session=session_dir,
        ))
    return entries, skipped


def _release_root(root: Path) -> Path:
    """``root`` itself when it holds the Session folders, else its ``IEMOCAP_full_release``."""
    if any((root / f"Session{i}").is_dir() for i in range(1, 6)):
        return root
    inner = root / RELEASE_DIR
    return inner if inner.is_dir() else root


def _read_labels(base: Path) -> dict[str, str]:
    """Majority label code per utterance id, from every session's EmoEvaluation/*.txt."""
    labels: dict[str, str] = {}
    for i in range(1, 6):
        folder = base / f"Session{i}" / "dialog" / "EmoEvaluation"
        if not folder.is_dir():
            continue
        # Only the top-level files: Categorical/, Attribute/, Self-evaluation/ hold per-annotator data.
        for txt in sorted(folder.glob("*.txt")):
            if txt.name.startswith("."):
                continue  # macOS resource forks (._Ses01F_impro01.txt) are not text
            for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                m = LABEL_LINE.match(line)
                if m:
                    labels[m["utt"]] = m["code"].lower()
    return labels
