"""Speaker-independent evaluation protocols: objects that turn a manifest into folds.

>>> from serbench.experiments.protocol import get_protocol
>>> folds = get_protocol("loso").folds(manifest)        # doctest: +SKIP
>>> [(f.name, len(f.train), len(f.test)) for f in folds]  # doctest: +SKIP
[('liuchanhg', 900, 300), ...]

Every protocol holds out one group (a speaker, or an IEMOCAP session) per fold (as
scikit-learn's :class:`~sklearn.model_selection.LeaveOneGroupOut` does), so each
group is tested exactly once and train and test groups never overlap. The inner
cross-validation used for hyper-parameters (:func:`inner_cv`) is grouped by speaker
too, and sees only the training rows of a fold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from serbench.errors import SerbenchError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

#: Most inner-CV splits: with more training speakers than this, speakers are grouped into folds.
MAX_INNER_SPLITS = 5


class ProtocolError(SerbenchError):
    """The data cannot be split the way a protocol asks (too few speakers, missing groups)."""


@dataclass(frozen=True)
class Fold:
    """One outer fold: ``name`` is the held-out group; ``train``/``test`` are row positions (int arrays)."""

    name: str
    train: np.ndarray
    test: np.ndarray

    def __repr__(self) -> str:  # arrays would flood the repr
        return f"Fold(name={self.name!r}, n_train={len(self.train)}, n_test={len(self.test)})"


class Protocol:
    """Leave one group out, the group taken from the manifest column :attr:`column`.

    Subclasses only set :attr:`name`, :attr:`column` and :attr:`description`.
    """

    name: str = ""
    column: str = ""
    description: str = ""

    def groups(self, manifest: pd.DataFrame, corpus: str | None = None) -> np.ndarray:
        """The group of each row, shape (n_rows,), as str; raises :class:`ProtocolError` on missing values."""
        where = f"{corpus} manifest" if corpus else "manifest"
        if self.column not in manifest.columns:
            raise ProtocolError(f"protocol {self.name!r} needs a {self.column!r} column; the {where} has none")
        col = manifest[self.column]
        missing = col.isna().to_numpy()
        if missing.any():
            ids = manifest["utterance_id"][missing].head(5).tolist() if "utterance_id" in manifest else []
            hint = " (this corpus has no sessions: use --protocol loso)" if self.column == "session" else ""
            raise ProtocolError(f"protocol {self.name!r}: {int(missing.sum())} row(s) of the {where} have no "
                                f"{self.column!r}, e.g. {ids}{hint}")
        return col.astype(str).to_numpy()

    def folds(self, manifest: pd.DataFrame, corpus: str | None = None) -> list[Fold]:
        """One :class:`Fold` per distinct group, sorted by group name.

        ``manifest`` is any DataFrame with the protocol's column (n_rows rows); the
        positions in each fold index its rows (``iloc``). Raises :class:`ProtocolError`
        when there are fewer than 2 groups, since nothing could be held out.
        """
        groups = self.groups(manifest, corpus)
        distinct = np.unique(groups)
        if len(distinct) < 2:
            where = f"the {corpus} data" if corpus else "the data"
            raise ProtocolError(
                f"protocol {self.name!r} needs at least 2 distinct values of {self.column!r} but {where} "
                f"has {len(distinct)} ({', '.join(map(str, distinct)) or 'none'}); use a corpus with more "
                f"{self.column}s or another --protocol")
        # LeaveOneGroupOut's split, written out: scikit-learn's import alone costs seconds, and a
        # client that only plans folds for remote workers does not need it.
        out = []
        for group in sorted(distinct.tolist()):
            test = np.flatnonzero(groups == group)
            train = np.flatnonzero(groups != group)
            out.append(Fold(name=str(group), train=train, test=test))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LeaveOneSpeakerOut(Protocol):
    """Leave one speaker out (LOSO), the paper's protocol."""

    name = "loso"
    column = "speaker"
    description = "leave one speaker out"


class LeaveOneSessionOut(Protocol):
    """Leave one recording session out (IEMOCAP's usual protocol: both speakers of a session held out)."""

    name = "loso-session"
    column = "session"
    description = "leave one session out"


PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (LeaveOneSpeakerOut, LeaveOneSessionOut)}

#: Corpora whose standard protocol is not LOSO.
_DEFAULTS = {"iemocap": "loso-session", "iemocap4": "loso-session"}


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name`` ('loso' or 'loso-session'); a :class:`Protocol` passes through."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[str(name).lower()]()
    except KeyError:
        raise ProtocolError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def default_protocol(corpus: str) -> Protocol:
    """'loso-session' for IEMOCAP (speakers share sessions), 'loso' for every other corpus."""
    return get_protocol(_DEFAULTS.get(corpus.lower(), "loso"))


def resolve_protocol(corpus: str, name: str | Protocol | None = None) -> Protocol:
    """``--protocol name`` for ``corpus``; None gives the corpus' default (:func:`default_protocol`)."""
    if name is None:
        return default_protocol(corpus)
    try:
        return get_protocol(name)
    except ProtocolError:
        raise ProtocolError(f"--protocol {name!r}: unknown; choose one of {', '.join(PROTOCOLS)}") from None


def inner_cv(groups_train: Sequence, max_splits: int = MAX_INNER_SPLITS) -> LeaveOneGroupOut | GroupKFold:
    """The inner CV splitter for hyper-parameter search over a fold's training rows.

    ``groups_train`` (n_train,) holds the speaker of each training row. With at most
    ``max_splits`` speakers each is held out once (:class:`LeaveOneGroupOut`); with more,
    :class:`GroupKFold` with ``max_splits`` splits keeps every speaker in one split.
    Pass ``groups=groups_train`` to the splitter (or to ``GridSearchCV.fit``).
    """
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    n = len(np.unique(np.asarray(groups_train, dtype=str)))
    if n < 2:
        raise ProtocolError(
            f"the inner model-selection CV needs at least 2 training speakers but the fold has {n}; "
            "use a corpus with at least 3 speakers")
    if max_splits < 2:
        raise ProtocolError(f"max_splits must be at least 2, got {max_splits}")
    return LeaveOneGroupOut() if n <= max_splits else GroupKFold(n_splits=max_splits)


def stage_seed(seed: int, fold: str, stage: str) -> int:
    """A stable per-(fold, stage) seed, so a fold's result does not depend on which folds ran before it
    (nor on the executor that ran it)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}/{fold}/{stage}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def holdout_split(rows: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's TRAINING rows into (fit, validation), stratified by class; validation is empty at 0.

    ``y`` holds the class of every row of the dataset (``rows`` index it). Used for early
    stopping: the validation rows come from the training speakers only.
    """
    rows = np.asarray(rows)
    if fraction <= 0:
        return rows, rows[:0]
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y[rows]):
        members = rows[y[rows] == c]
        k = int(round(fraction * len(members)))
        if 0 < k < len(members):
            val.extend(rng.choice(members, size=k, replace=False).tolist())
    val_arr = np.array(sorted(val), dtype=rows.dtype)
    return np.setdiff1d(rows, val_arr), val_arr


def speaker_holdout(rows: np.ndarray, speakers: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's TRAINING rows into (fit, validation) by speaker: ``k`` of the training
    speakers, drawn with ``seed``, are the validation set, so it looks like an unseen test speaker.

    ``speakers`` holds the speaker of every row of the dataset (``rows`` index it).
    """
    rows = np.asarray(rows)
    names = sorted(set(np.asarray(speakers)[rows].astype(str).tolist()))
    if k <= 0:
        return rows, rows[:0]
    if k >= len(names):
        raise ProtocolError(f"--set val_speakers={k}: a fold has only {len(names)} training speakers; hold out "
                            f"fewer (at most {len(names) - 1}) or use 0")
    held = set(np.random.default_rng(seed).choice(names, size=k, replace=False).tolist())
    mask = np.isin(np.asarray(speakers)[rows].astype(str), list(held))
    return rows[~mask], rows[mask]


__all__ = ["stage_seed", "holdout_split", "speaker_holdout", "Fold", "Protocol", "ProtocolError", "LeaveOneSpeakerOut", "LeaveOneSessionOut", "PROTOCOLS",
           "get_protocol", "default_protocol", "resolve_protocol", "inner_cv", "MAX_INNER_SPLITS"]
