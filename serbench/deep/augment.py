"""Data augmentation and class balancing for DCNN-BLSTMwA (Zhang et al. 2021).

The abstract says the speech samples are first preprocessed "by data enhancement and
datasets balancing" without naming the methods. Our choice works on the log-mel arrays
that serbench caches (``(C, F, T)``: channels static/delta/delta-delta, 60 bands,
frames), so no audio is resynthesized and no speed or pitch change alters the prosody
that carries the emotion:

* :func:`time_mask` / :func:`freq_mask` (SpecAugment-style): a random run of frames /
  bands is set to the utterance's per-channel mean (a neutral value in each channel's own
  units, whereas 0 would be a loud level in a raw log-mel);
* :func:`time_shift`: a small random shift of the start: ``s > 0`` prepends ``s`` copies of
  the first frame (leading silence gets longer), ``s < 0`` drops ``|s|`` leading frames;
* :func:`augment_training_set`: the originals plus ``copies`` augmented versions of each;
* :func:`balanced_indices`: random oversampling of the minority classes up to the size of
  the largest class.

**Training folds only.** Augmented copies and duplicated rows must never reach a test
fold or any statistic that a test fold is scored with, and every augmented copy must stay
in the fold of its source utterance (its speaker). So each function here takes the
training data of one fold explicitly -- the arrays, labels or row indices of the
training speakers -- and returns only values derived from what it was given; none of
them can see, or index into, the full corpus. Apply them after the fold split, to the
training part, with a seed fixed per fold.
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import Sequence

import numpy as np

from serbench.errors import SerbenchError


class AugmentError(SerbenchError):
    """An augmentation or balancing input or option cannot be used."""


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_mel(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel)
    if mel.ndim != 3 or mel.shape[-1] < 1 or not np.issubdtype(mel.dtype, np.floating):
        raise AugmentError(f"mel must be a float array (C, F, T) with T >= 1, got {mel.dtype} {mel.shape}")
    return mel


def _check_width(name: str, value: int) -> int:
    if int(value) != value or value < 0:
        raise AugmentError(f"{name} must be an integer >= 0, got {value}")
    return int(value)


def _mask(mel: np.ndarray, rng: np.random.Generator, axis: int, max_width: int, n_masks: int) -> np.ndarray:
    out = mel.copy()
    size = mel.shape[axis]
    fill = mel.mean(axis=(1, 2), keepdims=True)                    # (C, 1, 1) per-channel mean
    # At most half the axis per mask, so a short utterance keeps most of its content.
    cap = min(max_width, size // 2)
    for _ in range(n_masks):
        width = int(rng.integers(0, cap + 1))
        if width == 0:
            continue
        start = int(rng.integers(0, size - width + 1))
        region = [slice(None)] * 3
        region[axis] = slice(start, start + width)
        out[tuple(region)] = np.broadcast_to(fill, out[tuple(region)].shape)
    return out


def time_mask(mel: np.ndarray, rng: int | np.random.Generator, *, max_width: int = 10,
              n_masks: int = 1) -> np.ndarray:
    """``(C, F, T)`` -> copy with ``n_masks`` runs of ``0..min(max_width, T // 2)`` frames masked."""
    mel = _check_mel(mel)
    return _mask(mel, _rng(rng), 2, _check_width("max_width", max_width), _check_width("n_masks", n_masks))


def freq_mask(mel: np.ndarray, rng: int | np.random.Generator, *, max_width: int = 8,
              n_masks: int = 1) -> np.ndarray:
    """``(C, F, T)`` -> copy with ``n_masks`` runs of ``0..min(max_width, F // 2)`` bands masked."""
    mel = _check_mel(mel)
    return _mask(mel, _rng(rng), 1, _check_width("max_width", max_width), _check_width("n_masks", n_masks))


def time_shift(mel: np.ndarray, rng: int | np.random.Generator, *, max_shift: int = 10) -> np.ndarray:
    """``(C, F, T)`` -> ``(C, F, T + s)`` for a random ``s`` in ``[-max_shift, max_shift]``.

    ``s > 0`` repeats the first frame ``s`` times in front; ``s < 0`` drops ``|s|`` leading
    frames but always keeps at least one frame.
    """
    mel = _check_mel(mel)
    max_shift = _check_width("max_shift", max_shift)
    s = int(_rng(rng).integers(-max_shift, max_shift + 1))
    if s > 0:
        return np.concatenate([np.repeat(mel[:, :, :1], s, axis=2), mel], axis=2)
    return mel[:, :, min(-s, mel.shape[2] - 1):].copy()


def augment(mel: np.ndarray, rng: int | np.random.Generator, *, time_mask_width: int = 10,
            freq_mask_width: int = 8, max_shift: int = 10) -> np.ndarray:
    """One augmented version: :func:`time_shift`, then :func:`time_mask`, then :func:`freq_mask`."""
    g = _rng(rng)
    out = time_shift(mel, g, max_shift=max_shift)
    out = time_mask(out, g, max_width=time_mask_width)
    return freq_mask(out, g, max_width=freq_mask_width)


def augment_training_set(train_mels: Sequence[np.ndarray], train_labels: Sequence[Hashable] | np.ndarray, *,
                         copies: int = 1, seed: int = 0, **options: int
                         ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The training fold's arrays plus ``copies`` augmented versions of each.

    Returns ``(mels, labels, source)``: the originals first, then the copies; ``source[i]``
    is the position in ``train_mels`` that row ``i`` comes from (so speaker and fold can be
    carried over). ``options`` go to :func:`augment`.
    """
    copies = _check_width("copies", copies)
    labels = np.asarray(train_labels)
    if labels.ndim != 1 or len(labels) != len(train_mels):
        raise AugmentError(f"train_labels must be 1-D with one label per array ({len(train_mels)}), "
                           f"got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    mels = [_check_mel(m) for m in train_mels]
    source = np.arange(len(mels))
    for _ in range(copies):
        mels += [augment(m, rng, **options) for m in train_mels]
    source = np.tile(source, copies + 1)
    return mels, labels[source], source


def balanced_indices(train_labels: Sequence[Hashable] | np.ndarray, seed: int | np.random.Generator, *,
                     index: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Random oversampling of a training fold: every class as often as the largest one.

    ``train_labels (n,)``: the labels of the training rows; ``index (n,)``: their row
    numbers (default ``0..n-1``, positions in ``train_labels``). Returns a shuffled int64
    array of values of ``index`` in which each class occurs ``max_c n_c`` times: every
    row at least once, and a class of ``n_c`` rows is filled up by whole repeats plus a
    draw without replacement, so duplicates are spread as evenly as possible.
    """
    labels = np.asarray(train_labels)
    if labels.ndim != 1 or labels.size == 0:
        raise AugmentError(f"train_labels must be a non-empty 1-D sequence, got shape {labels.shape}")
    idx = np.arange(labels.size) if index is None else np.asarray(index)
    if idx.shape != labels.shape or not np.issubdtype(idx.dtype, np.integer):
        raise AugmentError(f"index must hold one integer row number per training label ({labels.size}), "
                           f"got {idx.dtype} {idx.shape}")
    if np.unique(idx).size != idx.size:
        raise AugmentError("index holds repeated row numbers; pass each training row once")
    rng = _rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    target = int(counts.max())
    picked = []
    for c in range(classes.size):
        rows = np.flatnonzero(inverse == c)
        repeats, rest = divmod(target, rows.size)
        picked.append(np.tile(rows, repeats))
        picked.append(rng.choice(rows, size=rest, replace=False))
    order = np.concatenate(picked)
    return idx[rng.permutation(order)].astype(np.int64)
