"""Batch transforms of segment images: SpecAugment-style masks, frequency shifts and time crops.

The masks and frequency shifts are applied to normalized training batches
(``StageConfig.augment``), never to validation or test inputs. Random time crops shift training
segments over their context columns (``StageConfig.crop``); fixed crops cut the segments themselves,
or evenly spread shifts of them, for validation and test. Randomness comes from the global torch RNG,
whose state a stage checkpoints, so a resumed stage draws the same masks. (Whole-utterance log-mel
augmentation for DCNN-BLSTMwA, in numpy, is :mod:`serbench.deep.augment`.)
"""
from __future__ import annotations

from typing import Callable

import torch


def spec_masks(x: torch.Tensor, *, freq_masks: int = 0, freq_width: float = 0.0, time_masks: int = 0,
               time_width: float = 0.0) -> torch.Tensor:
    """Zero random mel-band rows and time columns of ``(B, C, F, T)`` images (all channels alike).

    Each image gets ``freq_masks`` bands of ``U{0..round(freq_width * F)}`` rows and
    ``time_masks`` spans of ``U{0..round(time_width * T)}`` columns at uniform positions.
    Zero is the training mean after normalization. Returns a new tensor.
    """
    if x.ndim != 4:
        raise ValueError(f"spec_masks expects (B, C, F, T) images, got {tuple(x.shape)}")
    b, _, f, t = x.shape
    keep = torch.ones(b, 1, f, t, dtype=x.dtype)
    for count, width, axis, size in ((freq_masks, freq_width, 2, f), (time_masks, time_width, 3, t)):
        most = int(round(width * size))
        if count <= 0 or most <= 0:
            continue
        pos = torch.arange(size)
        for _ in range(count):
            w = torch.randint(0, most + 1, (b,))
            start = (torch.rand(b) * (size - w + 1).float()).long()
            band = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + w)[:, None])   # (B, size)
            shape = (b, 1, size, 1) if axis == 2 else (b, 1, 1, size)
            keep = keep * (~band).to(x.dtype).reshape(shape)
    return x * keep.to(x.device)


def mask_augmenter(freq_masks: int, freq_width: float, time_masks: int,
                   time_width: float) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """:func:`spec_masks` with fixed settings as a batch transform; None when it would mask nothing."""
    if (freq_masks <= 0 or freq_width <= 0) and (time_masks <= 0 or time_width <= 0):
        return None
    return lambda x: spec_masks(x, freq_masks=freq_masks, freq_width=freq_width, time_masks=time_masks,
                                time_width=time_width)


def time_crop(x: torch.Tensor, width: int, offset: int | None = None) -> torch.Tensor:
    """Columns ``[offset, offset + width)`` of ``(B, C, F, T)`` images; ``offset`` None: the centre.

    Images already ``width`` wide come back as they are.
    """
    t = x.shape[-1]
    if t == width:
        return x
    if not 0 < width <= t:
        raise ValueError(f"cannot crop {width} columns from images {t} wide")
    start = (t - width) // 2 if offset is None else int(offset)
    if not 0 <= start <= t - width:
        raise ValueError(f"crop offset {offset} outside 0..{t - width}")
    return x[..., start:start + width]


def random_time_crop(x: torch.Tensor, width: int) -> torch.Tensor:
    """A ``width``-column crop of each ``(B, C, F, T)`` image at its own uniform random offset.

    With context images (:func:`serbench.features.melseg.segment_images`) this shifts each
    training segment in time over real neighbouring frames. Global torch RNG (checkpointed).
    """
    b, c, f, t = x.shape
    if t == width:
        return x
    start = torch.randint(0, t - width + 1, (b,))
    idx = (start[:, None] + torch.arange(width)[None, :]).to(x.device)           # (B, width)
    return x.gather(3, idx[:, None, None, :].expand(b, c, f, width))


def random_freq_shift(x: torch.Tensor, most: int) -> torch.Tensor:
    """Each ``(B, C, F, T)`` image moved up or down by its own ``U{-most..most}`` mel-band rows.

    Rows moved in from beyond an edge repeat the edge row. A shift of the mel axis stands in for a
    change of speaker (vocal tract length, pitch register), which is what an unseen test speaker
    brings. Global torch RNG (checkpointed).
    """
    if most <= 0:
        return x
    b, c, f, t = x.shape
    d = torch.randint(-most, most + 1, (b,))
    rows = (torch.arange(f)[None, :] - d[:, None]).clamp(0, f - 1).to(x.device)     # (B, F)
    return x.gather(2, rows[:, None, :, None].expand(b, c, f, t))


def crop_offsets(context: int, crops: int) -> list[int]:
    """``crops`` column offsets evenly spread over ``0..2 * context`` (one crop: the centre, ``context``)."""
    if crops <= 1 or context == 0:
        return [context]
    return [int(round(i * 2 * context / (crops - 1))) for i in range(crops)]
