"""The manifest: one row per utterance, a fixed schema shared by every corpus loader.

A loader module parses its corpus' official layout into :class:`Entry` records and
:class:`Skipped` records (files that do not fit the layout); :func:`build_manifest`
turns them into the manifest DataFrame, reading each file's header for duration and
sample rate so that unreadable audio fails here, naming the file.
"""
from __future__ import annotations

import fnmatch
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from serbench.audio import audio_info
from serbench.errors import AudioError, CorpusError

if TYPE_CHECKING:  # pandas is imported where a manifest is built: listing corpora stays light
    import pandas as pd

#: Canonical emotion labels; every corpus maps its own codes onto these.
EMOTIONS: tuple[str, ...] = (
    "angry", "boredom", "calm", "disgust", "excited", "fear", "frustrated",
    "happy", "neutral", "sad", "surprise",
)

#: Manifest columns, in order, with their dtypes. ``label`` is the corpus' own code,
#: ``session`` is set where a corpus has recording sessions (IEMOCAP), else missing.
MANIFEST_COLUMNS: dict[str, str] = {
    "utterance_id": "string",
    "path": "string",
    "speaker": "string",
    "gender": "string",
    "emotion": "string",
    "label": "string",
    "text_id": "string",
    "session": "string",
    "duration": "float64",
    "sample_rate": "int64",
}

AUDIO_SUFFIXES = (".wav", ".flac")
#: Compressed formats seen in circulating copies of corpora: named as such, with how to convert.
UNSUPPORTED_AUDIO: dict[str, str] = {".mp3": "MP3", ".ogg": "Ogg", ".oga": "Ogg", ".opus": "Opus", ".m4a": "M4A/AAC",
                                     ".aac": "AAC", ".wma": "WMA", ".webm": "WebM", ".amr": "AMR"}


@dataclass(frozen=True)
class CorpusInfo:
    """What ``serbench corpora`` prints about a supported corpus."""

    name: str
    title: str
    language: str
    speakers: str
    emotions: tuple[str, ...]
    layout: str
    obtain: str
    fetchable: bool = False


@dataclass(frozen=True)
class Entry:
    """One utterance parsed from the layout (before its header is read)."""

    utterance_id: str
    path: Path
    speaker: str
    emotion: str
    label: str
    text_id: str
    gender: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A file found in the corpus folder that does not fit the expected layout."""

    path: str
    reason: str


@dataclass
class CorpusScan:
    """The result of scanning a corpus folder: the manifest and what was left out."""

    corpus: str
    root: Path
    manifest: pd.DataFrame
    skipped: list[Skipped] = field(default_factory=list)
    #: True when an emotion subset or a loader option narrowed the manifest.
    subset: bool = False

    def summary(self) -> dict:
        m = self.manifest
        return {
            "corpus": self.corpus,
            "root": str(self.root),
            "utterances": int(len(m)),
            "speakers": int(m["speaker"].nunique()),
            "emotions": {k: int(v) for k, v in sorted(Counter(m["emotion"]).items())},
            "total_duration_s": float(m["duration"].sum()),
            "sample_rates": sorted(int(s) for s in m["sample_rate"].unique()),
            "skipped": [asdict(s) for s in self.skipped],
        }


def iter_files(root: Path, skipped: list[Skipped] | None = None, relative_to: Path | None = None) -> list[Path]:
    """All regular files under ``root``, sorted, hidden files and folders excluded.

    Links to files are followed. Links to folders are not (a corpus is one folder tree), and
    dangling links lead nowhere: with ``skipped`` given, both are appended to it (paths relative
    to ``relative_to``, default ``root``) instead of passing unseen.
    """
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink() and skipped is not None:
            shown = str(p.relative_to(relative_to or root))
            if not p.exists():
                skipped.append(Skipped(shown, f"dangling link (to {os.readlink(p)}, which does not exist)"))
            elif p.is_dir():
                skipped.append(Skipped(shown, "link to a folder, not followed; move or copy that folder "
                                              "into the corpus folder, or link its files one by one"))
        elif not p.is_dir() and skipped is not None:
            skipped.append(Skipped(str(p.relative_to(relative_to or root)), "not a regular file"))
    return files


def unsupported_format(path: Path) -> str | None:
    """Why ``path`` cannot be read when its suffix names a compressed audio format, else None."""
    kind = UNSUPPORTED_AUDIO.get(path.suffix.lower())
    if kind is None:
        return None
    return (f"{kind} audio is not supported (serbench reads WAV and FLAC); convert it, e.g. "
            f"`ffmpeg -i {path.name} {path.stem}.wav`")


def known_metadata(patterns: Sequence[str], *, dirs: Sequence[str] = (), max_depth: int | None = 1
                   ) -> Callable[[Path], bool]:
    """A rule for :func:`audio_files`: release files that are documentation, not recordings.

    A relative path is metadata when its name matches one of ``patterns`` (fnmatch) at most
    ``max_depth`` levels deep (1 = the corpus folder itself; None = anywhere), or when it lies
    under a top-level folder named in ``dirs`` (case-insensitive).
    """
    dirs = tuple(d.lower() for d in dirs)

    def rule(rel: Path) -> bool:
        if len(rel.parts) > 1 and rel.parts[0].lower() in dirs:
            return True
        return ((max_depth is None or len(rel.parts) <= max_depth)
                and any(fnmatch.fnmatch(rel.name, p) for p in patterns))
    return rule


def audio_files(root: Path, skipped: list[Skipped], is_metadata: Callable[[Path], bool]
                ) -> Iterator[tuple[Path, Path]]:
    """``(path, path relative to root)`` of every audio file under ``root``, sorted.

    Files ``is_metadata(rel)`` calls documentation are passed over silently; any other
    non-audio file is appended to ``skipped`` ("not an audio file", or for MP3, Ogg, M4A ...
    that the format is not supported and how to convert it), never dropped unseen; so are
    dangling links and links to folders (see :func:`iter_files`).
    """
    for path in iter_files(root, skipped):
        rel = path.relative_to(root)
        if is_metadata(rel):
            continue
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            skipped.append(Skipped(str(rel), unsupported_format(path) or "not an audio file"))
            continue
        yield path, rel


def build_manifest(
    corpus: str,
    root: Path,
    entries: Iterable[Entry],
    skipped: Iterable[Skipped],
    *,
    layout: str,
    emotions: Sequence[str] | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CorpusScan:
    """Validate parsed entries, read audio headers, apply the emotion subset.

    Raises :class:`CorpusError` when nothing matched the layout (naming the layout
    expected), when ``strict`` and files were skipped, or when utterance ids clash.
    Raises :class:`~serbench.errors.AudioError` naming an unreadable file, or a
    :class:`CorpusError` listing every one when there are several.
    """
    entries = list(entries)
    skipped = list(skipped)
    if not entries:
        found = f"{len(skipped)} file(s) found but none matched" if skipped else "no files found"
        raise CorpusError(f"{root}: no {corpus} utterances ({found}); expected layout: {layout}")
    if strict and skipped:
        listing = "; ".join(f"{s.path} ({s.reason})" for s in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        raise CorpusError(f"{root}: {len(skipped)} file(s) do not fit the {corpus} layout: {listing}{more}")
    ids = Counter(e.utterance_id for e in entries)
    clashes = [k for k, n in ids.items() if n > 1]
    if clashes:
        raise CorpusError(f"{root}: duplicate utterance ids in {corpus}: {', '.join(sorted(clashes)[:10])}")
    unknown = sorted({e.emotion for e in entries} - set(EMOTIONS))
    if unknown:
        raise CorpusError(f"{corpus} loader produced non-canonical emotions {unknown}")

    if emotions:
        wanted = [e.strip() for e in emotions if e.strip()]
        bad = sorted(set(wanted) - set(EMOTIONS))
        if bad:
            raise CorpusError(f"unknown emotion(s) {bad}; choose from {', '.join(EMOTIONS)}")
        present = {e.emotion for e in entries}
        absent = sorted(set(wanted) - present)
        if absent:
            raise CorpusError(f"{corpus} at {root} has no utterances labelled {absent}; it has {sorted(present)}")
        entries = [e for e in entries if e.emotion in set(wanted)]

    import pandas as pd

    rows = []
    unreadable: list[AudioError] = []
    for i, e in enumerate(entries):
        try:
            info = audio_info(e.path)
        except AudioError as exc:
            # Keep scanning so that one error message lists every broken file, not just the first.
            unreadable.append(exc)
            continue
        row = asdict(e)
        row["path"] = str(Path(e.path).resolve())
        row["duration"] = info.duration
        row["sample_rate"] = info.sample_rate
        rows.append(row)
        if progress is not None:
            progress(i + 1)
    if len(unreadable) == 1:
        raise unreadable[0]
    if unreadable:
        listing = "; ".join(str(exc) for exc in unreadable[:20])
        more = f"; and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
        raise CorpusError(f"{root}: {len(unreadable)} unreadable audio files in {corpus}: {listing}{more}. "
                          "Replace or remove them, then run again.")
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    df = df.astype(MANIFEST_COLUMNS).sort_values("utterance_id", kind="stable").reset_index(drop=True)
    return CorpusScan(corpus=corpus, root=Path(root), manifest=df, skipped=skipped)


def check_root(root: str | Path, corpus: str, layout: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder; the {corpus} loader expects {layout}")
    return root


def check_expected_count(scan: CorpusScan, expected: int | None) -> str | None:
    """A note when a full release should hold ``expected`` utterances but the folder holds another number."""
    if expected is not None and not scan.subset and len(scan.manifest) != expected:
        return f"{scan.corpus}: found {len(scan.manifest)} utterances, the full release has {expected}"
    return None
