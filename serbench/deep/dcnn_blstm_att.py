"""DCNN-BLSTMwA (Zhang et al. 2021): segment CNN features, BLSTM, attention, DNN.

From the abstract: 3-channel log-mel (static, delta, delta-delta) segments go through a
DCNN pre-trained on ImageNet that yields segment-level features; the features of a
sentence are stacked into an utterance-level sequence; a BLSTM learns high-level
features for temporal summarization, an attention layer focuses on the emotionally
relevant ones, and a DNN predicts the emotion (softmax). Data augmentation and class
balancing of the training data are in :mod:`serbench.deep.augment`.

Here the DCNN is any ``segment_encoder`` module mapping ``(S, 3, H, W)`` segment images
to ``(S, D)`` features: the AlexNet FC7 extractor of :mod:`serbench.deep` for the paper's
setting (``FeatureExtractor(alexnet, "fc7", alexnet.fc_dim)``), :class:`ConvSegmentEncoder` for a small
from-scratch CNN. ``train_encoder=False`` (default) freezes it as a fixed feature
extractor, as the abstract describes: its parameters get no gradient and it stays in eval
mode (no dropout, frozen batch-norm statistics) even while the rest trains.

Utterances have different numbers of segments: ``forward`` takes the padded
``(B, N, 3, H, W)`` batch and ``lengths (B,)`` segments per utterance. Only the valid
segments are encoded (padded slots never reach the encoder, so they cannot change its
batch statistics either), the BLSTM runs packed and the attention weights are 0 on
padded slots.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from serbench.deep.crnn import (
    BLSTM, AttentionPool, SystemInputError, SystemOutput, check_classes, check_labels, check_lengths, length_mask,
)


class FeatureExtractor(nn.Module):
    """Exposes one method of a module as an encoder: ``FeatureExtractor(alexnet, "fc7", alexnet.fc_dim)``.

    ``owner`` is registered as a submodule (``.to(device)``, ``.eval()`` and the state dict
    include it); the method is looked up by name at call time, so copies of the wrapper
    call their own copy of ``owner``.
    """

    def __init__(self, owner: nn.Module, method: str, out_dim: int) -> None:
        super().__init__()
        if not callable(getattr(owner, method, None)):
            raise SystemInputError(f"{type(owner).__name__} has no method {method!r} to extract features with")
        self.owner = owner
        self.method = method
        self.out_dim = int(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.owner, self.method)(x)


class ConvSegmentEncoder(nn.Module):
    """A small from-scratch segment CNN: ``(S, C, H, W) -> (S, out_dim)``.

    ``len(channels)`` blocks of ``Conv3x3 -> BatchNorm -> ReLU -> MaxPool2``, adaptive
    average pooling to a ``grid`` (like AlexNet's 6 x 6 pool: a coarse grid keeps *where*
    in the image -- which mel bands -- the energy lies, which a global average would lose),
    a linear layer and ReLU (non-negative features, like FC7).
    """

    def __init__(self, out_dim: int = 64, channels: Sequence[int] = (16, 32), in_channels: int = 3,
                 grid: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        if not channels or out_dim < 1 or min(grid) < 1:
            raise SystemInputError(f"ConvSegmentEncoder needs >= 1 conv block, out_dim >= 1 and a grid >= 1, "
                                   f"got channels={tuple(channels)}, out_dim={out_dim}, grid={grid}")
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.fc = nn.Linear(c_in * grid[0] * grid[1], out_dim)
        self.out_dim = int(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.pool(self.features(x)).flatten(1)))


class DCNNBLSTMAtt(nn.Module):
    """``forward(segments (B, N, 3, H, W), lengths (B,)) -> SystemOutput``.

    ``logits (B, n_classes)``; ``frames (B, N, 2 * hidden)`` BLSTM outputs per segment;
    ``lengths`` the valid segments; ``weights (B, N)`` attention over segments.

    ``feature_dim`` is the encoder's output size ``D`` (read from ``segment_encoder.out_dim``
    or ``fc_dim`` when not given). DNN: ``dnn_layers`` FC-ReLU-dropout layers of
    ``dnn_hidden`` units, then the output layer (the softmax lives in the loss).
    """

    def __init__(self, segment_encoder: nn.Module, n_classes: int, *, feature_dim: int | None = None,
                 train_encoder: bool = False, hidden: int = 128, lstm_layers: int = 1, attn_dim: int = 64,
                 dnn_hidden: int = 64, dnn_layers: int = 2, dropout: float = 0.3) -> None:
        super().__init__()
        check_classes(n_classes)
        if feature_dim is None:
            feature_dim = getattr(segment_encoder, "out_dim", None) or getattr(segment_encoder, "fc_dim", None)
        if feature_dim is None or int(feature_dim) < 1:
            raise SystemInputError("feature_dim must be given (the segment_encoder's output size D) when the "
                                   "encoder has no out_dim or fc_dim attribute")
        if dnn_layers < 1:
            raise SystemInputError(f"dnn_layers must be >= 1, got {dnn_layers}")
        self.n_classes, self.feature_dim = int(n_classes), int(feature_dim)
        self.encoder = segment_encoder
        self.train_encoder = bool(train_encoder)
        if not self.train_encoder:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
        self.blstm = BLSTM(self.feature_dim, hidden, lstm_layers, dropout)
        self.attention = AttentionPool(2 * hidden, attn_dim)
        layers: list[nn.Module] = []
        d = 2 * hidden
        for _ in range(dnn_layers):
            layers += [nn.Dropout(dropout), nn.Linear(d, dnn_hidden), nn.ReLU(inplace=True)]
            d = dnn_hidden
        layers += [nn.Dropout(dropout), nn.Linear(d, n_classes)]
        self.dnn = nn.Sequential(*layers)

    def train(self, mode: bool = True) -> "DCNNBLSTMAtt":
        super().train(mode)
        if not self.train_encoder:
            self.encoder.eval()        # a frozen feature extractor keeps its inference behaviour
        return self

    def encode(self, segments: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3, H, W)`` + lengths -> ``(B, N, D)`` segment features, 0 on padded slots."""
        b, n = segments.shape[:2]
        mask = length_mask(lengths, n)
        valid = segments[mask]                                     # (S, 3, H, W), utterance-major
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            feats = self.encoder(valid)
        if feats.ndim != 2 or feats.shape != (valid.shape[0], self.feature_dim):
            raise SystemInputError(f"segment_encoder returned {tuple(feats.shape)} for {valid.shape[0]} segments, "
                                   f"expected ({valid.shape[0]}, {self.feature_dim}) (feature_dim)")
        out = feats.new_zeros(b, n, self.feature_dim)
        out[mask] = feats
        return out

    def forward(self, segments: torch.Tensor, lengths: torch.Tensor) -> SystemOutput:
        if not torch.is_tensor(segments) or segments.ndim != 5 or not segments.is_floating_point():
            shape = tuple(segments.shape) if torch.is_tensor(segments) else type(segments).__name__
            raise SystemInputError(f"segments must be a float tensor (B, N, 3, H, W), got {shape}")
        lengths = check_lengths(lengths, segments.shape[0], segments.shape[1], "segments").to(segments.device)
        return self.forward_features(self.encode(segments, lengths), lengths)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor) -> SystemOutput:
        """The model after the encoder: ``feats (B, N, D)`` segment features (padded slots
        ignored) + ``lengths (B,)`` -> :class:`SystemOutput`.

        With a frozen encoder (in eval mode, deterministic) a trainer may encode every
        segment once and train from the cached features; the result equals :meth:`forward`.
        """
        if not torch.is_tensor(feats) or feats.ndim != 3 or feats.shape[-1] != self.feature_dim:
            shape = tuple(feats.shape) if torch.is_tensor(feats) else type(feats).__name__
            raise SystemInputError(f"feats must be (B, N, {self.feature_dim}) segment features, got {shape}")
        lengths = check_lengths(lengths, feats.shape[0], feats.shape[1], "feats").to(feats.device)
        outputs, _ = self.blstm(feats, lengths)
        z, weights = self.attention(outputs, length_mask(lengths, outputs.shape[1]))
        return SystemOutput(self.dnn(z), outputs, lengths, weights)

    def loss(self, out: SystemOutput, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the utterance logits."""
        labels = check_labels(labels, out.logits.shape[0], self.n_classes).to(out.logits.device)
        return F.cross_entropy(out.logits, labels)


def stack_segments(images: torch.Tensor, counts: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Utterance-major ``(S, 3, H, W)`` segment images -> padded ``(B, N_max, 3, H, W)`` and ``lengths (B,)``.

    ``counts[b]`` is utterance ``b``'s number of segments (``sum(counts) == S``); the
    padding slots are zero (the model never reads them).
    """
    counts = torch.as_tensor(counts, dtype=torch.long)
    if counts.ndim != 1 or counts.numel() == 0 or int(counts.min()) < 1 or int(counts.sum()) != images.shape[0]:
        raise SystemInputError(f"counts must be >= 1 per utterance and sum to the {images.shape[0]} segments, "
                               f"got {counts.tolist()}")
    n = int(counts.max())
    out = images.new_zeros(counts.numel(), n, *images.shape[1:])
    out[length_mask(counts, n).to(images.device)] = images
    return out, counts
