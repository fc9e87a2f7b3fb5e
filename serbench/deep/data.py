"""Inputs of the deep models: segment images, low-level segment sequences, normalization.

Everything fitted here (normalization statistics) is fitted on the training rows of a
fold only; the caller passes those rows.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from serbench.errors import SerbenchError


class DeepDataError(SerbenchError):
    """The corpus gives nothing a deep model can train on."""


def segment_tensor(mels: Sequence[np.ndarray], n_segments: int, size: int,
                   device: torch.device | str | None = None, chunk: int = 256,
                   store: torch.device | str | None = None, context: int = 0) -> torch.Tensor:
    """``(U*N, 3, size, size + 2 * context)`` raw log-mel segment images, utterance-major, on ``store``
    (default ``device``); ``context``: pixels of neighbouring frames on each side (``segment_images``).

    Resizing runs on ``device`` (``segment_images(device=...)``), in chunks of utterances so
    the intermediate tensors stay small; each chunk then moves to ``store``.
    """
    from serbench.features.melseg import segment_images

    store = device if store is None else store
    parts = [segment_images(list(mels[i:i + chunk]), n_segments, size=size, device=device,
                            context=context).to(store)
             for i in range(0, len(mels), chunk)]
    out = torch.cat(parts).float()
    expect = (len(mels) * n_segments, 3, size, size + 2 * context)
    if tuple(out.shape) != expect:
        raise DeepDataError(f"segment_images returned {tuple(out.shape)}, expected {expect}")
    return out


def lowlevel_sequences(mels: Sequence[np.ndarray], n_segments: int) -> torch.Tensor:
    """``(U, N, 360)`` low-level sequences for the ``sru`` ablation.

    Each utterance's frames are split into the same N segments as the CNN input
    (``stretch_frames`` for short utterances, then ``segment_bounds``); each segment becomes
    the mean and the standard deviation over its frames of the 3 x 60 log-mel channels
    (static, delta, delta-delta), i.e. D = 2 * 3 * n_mels.
    """
    from serbench.features.melseg import segment_bounds, stretch_frames

    if not mels:
        raise DeepDataError("no utterances to build low-level sequences from")
    n_ch = int(np.prod(mels[0].shape[:-1]))
    out = np.empty((len(mels), n_segments, 2 * n_ch), dtype=np.float32)
    for i, m in enumerate(mels):
        flat = np.asarray(m, dtype=np.float32).reshape(n_ch, -1)   # (180, T)
        stretch = stretch_frames(flat.shape[1], n_segments)
        if stretch is not None:
            flat = flat[:, stretch]
        edges = segment_bounds(flat.shape[1], n_segments)
        for j in range(n_segments):
            seg = flat[:, int(edges[j]):int(edges[j + 1])]
            out[i, j, :n_ch] = seg.mean(axis=1)
            out[i, j, n_ch:] = seg.std(axis=1)
    return torch.from_numpy(out)


def channel_stats(x: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std ``(C,)`` of ``(M, C, ...)`` training inputs (float64 accumulation)."""
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64, device=x.device)
    s2 = torch.zeros(c, dtype=torch.float64, device=x.device)
    count = 0
    for i in range(0, x.shape[0], chunk):
        part = x[i:i + chunk].transpose(0, 1).reshape(c, -1).double()
        s += part.sum(dim=1)
        s2 += (part * part).sum(dim=1)
        count += part.shape[1]
    mean = s / count
    std = (s2 / count - mean * mean).clamp_min(0).sqrt()
    # A constant channel would divide by zero: leave it unscaled.
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return mean.float(), std.float()


class Normalizer:
    """``(x - mean) / std`` along dim 1 (channels of images, features of sequences)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, x: torch.Tensor) -> "Normalizer":
        return cls(*channel_stats(x))

    @classmethod
    def fit_last(cls, x: torch.Tensor) -> "Normalizer":
        """Statistics over every dim but the last (for ``(U, N, D)`` sequences)."""
        flat = x.reshape(-1, x.shape[-1]).double()
        std = flat.std(dim=0, unbiased=False)
        return cls(flat.mean(dim=0).float(), torch.where(std > 1e-8, std, torch.ones_like(std)).float())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        if x.ndim == 4:                                          # images (B, C, H, W)
            return (x - mean[:, None, None]) / std[:, None, None]
        return (x - mean) / std                                  # sequences (B, N, D)


def label_indices(emotions: pd.Series, labels: Sequence[str]) -> torch.Tensor:
    """Canonical emotion strings -> ``(U,)`` int64 class indices in ``labels`` order."""
    index = {lab: i for i, lab in enumerate(labels)}
    return torch.tensor([index[e] for e in emotions.astype(str)], dtype=torch.long)
