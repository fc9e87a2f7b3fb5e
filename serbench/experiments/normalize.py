"""Per-speaker feature normalization (speaker z-scoring), label-free.

Each speaker's feature vectors are standardized with that speaker's own mean and
standard deviation. This is standard practice in leave-one-speaker-out SER work: it
removes speaker identity (pitch range, loudness, timbre) from the features. It uses
no labels, and the statistics of a speaker come from that speaker's rows only, so it
never moves information between speakers: applied to a test speaker, it uses the test
speaker's own (unlabelled) recordings, as a deployed system would after enrolment.
Because a speaker's output depends on nothing but that speaker's rows, normalizing
all speakers at once gives exactly what normalizing each fold's speakers would.

It is an option (off by default, as in the paper), recorded in every run's config and
in the system name (``-spknorm``), because on CASIA it is worth more than 10 UA points.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from serbench.errors import SerbenchError


class NormalizationError(SerbenchError):
    """Per-speaker statistics cannot be computed (a speaker with too few rows, non-finite input)."""


class SpeakerNormalizer:
    """Z-score features per speaker with that speaker's own statistics.

    Parameters
    ----------
    min_rows : int, default 2
        A speaker needs at least this many rows for a standard deviation; fewer raises
        :class:`NormalizationError` (a single row would be mapped to all zeros).
    eps : float, default 1e-12
        Features whose standard deviation within a speaker is at most ``eps`` are
        constant for that speaker; they are centred but not scaled (they become 0)
        instead of divided by ~0.

    Attributes (after :meth:`fit`)
    ------------------------------
    speakers_ : list[str]
        The speakers seen, sorted.
    mean_, scale_ : dict[str, np.ndarray of shape (n_features,)]
        Each speaker's mean and standard deviation (1 where constant).

    There is deliberately no ``y`` argument anywhere: labels cannot reach this step.
    """

    def __init__(self, min_rows: int = 2, eps: float = 1e-12) -> None:
        self.min_rows = min_rows
        self.eps = eps

    def fit(self, X: np.ndarray, speakers: Sequence) -> "SpeakerNormalizer":
        """Compute each speaker's mean and std from its own rows. ``X`` (n, n_features), ``speakers`` (n,)."""
        if not isinstance(self.min_rows, (int, np.integer)) or self.min_rows < 1:
            raise NormalizationError(f"min_rows must be a positive integer, got {self.min_rows!r}")
        X, spk = self._check(X, speakers)
        self.mean_: dict[str, np.ndarray] = {}
        self.scale_: dict[str, np.ndarray] = {}
        for s in map(str, np.unique(spk)):
            rows = X[spk == s]
            if len(rows) < self.min_rows:
                raise NormalizationError(
                    f"speaker {s!r} has {len(rows)} usable row(s); per-speaker normalization needs at least "
                    f"{self.min_rows}. Drop that speaker or run without --speaker-norm")
            mean = rows.mean(axis=0)
            std = rows.std(axis=0)
            # A feature that is constant within a speaker carries nothing for that speaker.
            self.mean_[str(s)] = mean
            self.scale_[str(s)] = np.where(std > self.eps, std, 1.0)
        self.speakers_ = sorted(self.mean_)
        return self

    def transform(self, X: np.ndarray, speakers: Sequence) -> np.ndarray:
        """``(X - mean[speaker]) / scale[speaker]`` row by row; (n, n_features) float64.

        Every speaker in ``speakers`` must have been seen by :meth:`fit`: a new speaker is
        normalized by fitting on its own rows (:meth:`fit_transform`), never with another's.
        """
        if not hasattr(self, "mean_"):
            raise NormalizationError("SpeakerNormalizer is not fitted; call fit(X, speakers) first")
        X, spk = self._check(X, speakers)
        unseen = sorted(set(map(str, np.unique(spk))) - set(self.mean_))
        if unseen:
            raise NormalizationError(f"speaker(s) {unseen} were not seen in fit; fit on their own rows first")
        out = np.empty_like(X)
        for s in np.unique(spk):
            m = spk == s
            out[m] = (X[m] - self.mean_[s]) / self.scale_[s]
        return out

    def fit_transform(self, X: np.ndarray, speakers: Sequence) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same rows."""
        return self.fit(X, speakers).transform(X, speakers)

    @staticmethod
    def _check(X: np.ndarray, speakers: Sequence) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise NormalizationError(f"X must be 2-D (n_rows, n_features), got shape {X.shape}")
        spk = np.asarray(speakers).astype(str)
        if spk.shape != (X.shape[0],):
            raise NormalizationError(f"speakers has {spk.shape[0] if spk.ndim else 0} entries but X has "
                                     f"{X.shape[0]} rows; pass one speaker per row")
        if not np.all(np.isfinite(X)):
            raise NormalizationError("X holds NaN or infinite values; exclude rows whose features failed first")
        return X, spk


def normalize_per_speaker(X: np.ndarray, speakers: Sequence, *, min_rows: int = 2) -> np.ndarray:
    """Function form of :class:`SpeakerNormalizer`: each speaker z-scored with its own rows only.

    ``X`` (n_rows, n_features), ``speakers`` (n_rows,) -> (n_rows, n_features) float64.
    """
    return SpeakerNormalizer(min_rows=min_rows).fit_transform(X, speakers)


def normalize_mels_per_speaker(mels: Sequence[np.ndarray], speakers: Sequence[str]) -> list[np.ndarray]:
    """Z-score each (channel, mel band) of every utterance with its speaker's own frame statistics.

    ``mels[i]`` is ``(3, n_mels, T_i)``; the statistics of a speaker are the mean and standard
    deviation over all frames of that speaker's utterances (float64 accumulation), so, as
    with :class:`SpeakerNormalizer` for feature matrices, no label
    is used and no information crosses speakers: a test speaker is normalized with its own
    unlabelled audio. A (channel, band) constant within a speaker is centred, not scaled.
    Returns new float32 arrays in the same order.
    """
    speakers = [str(s) for s in speakers]
    if len(speakers) != len(mels):
        raise NormalizationError(f"{len(mels)} utterances but {len(speakers)} speaker labels")
    sums: dict[str, list] = {}
    for m, spk in zip(mels, speakers):
        x = np.asarray(m, dtype=np.float64)
        acc = sums.setdefault(spk, [0.0, 0.0, 0])
        acc[0] = acc[0] + x.sum(axis=-1)
        acc[1] = acc[1] + (x * x).sum(axis=-1)
        acc[2] += x.shape[-1]
    stats = {}
    for spk, (s1, s2, n) in sums.items():
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        stats[spk] = (mean[..., None], np.where(std > 1e-8, std, 1.0)[..., None])
    return [((np.asarray(m, dtype=np.float64) - stats[spk][0]) / stats[spk][1]).astype(np.float32)
            for m, spk in zip(mels, speakers)]


__all__ = ["SpeakerNormalizer", "NormalizationError", "normalize_per_speaker", "normalize_mels_per_speaker"]
