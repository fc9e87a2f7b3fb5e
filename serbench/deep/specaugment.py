"""SpecAugment-style masks on batches of segment images, for training stage 1 only.

Applied to normalized training batches (``StageConfig.augment``), never to validation or
test inputs. Randomness comes from the global torch RNG, whose state a stage checkpoints,
so a resumed stage draws the same masks. (Whole-utterance log-mel augmentation for
DCNN-BLSTMwA, in numpy, is :mod:`serbench.deep.augment`.)
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
