"""CRNN-MK: the improved CRNN of Meyer, Xu and Fingscheidt (SLT 2021).

The abstract (all we have of the paper) names four changes to the CNN + BLSTM + FC
topology, each evaluated in an ablation study; each is a constructor flag here so that
the ablation can be rerun. Only the first two are stated concretely; the other two are
**our interpretation** of the abstract, not the paper's recipe:

1. ``multi_kernel`` -- *multi-kernel-width CNN*: the first conv layer is a set of
   parallel ``Conv2d`` branches whose kernels span 3 bands and ``kernel_widths`` frames
   (default 3, 7, 11, 15 frames = 30-150 ms: phone to syllable scale), concatenated on the
   channel axis (:class:`MultiKernelConv`). Off: one 3x3 conv with the same number of
   output channels.
2. ``summary`` -- *BLSTM output summarization*: ``'attention'`` (alias ``'learned'``,
   default) is a learned attention-weighted sum of the BLSTM outputs over the valid
   frames; ``'mean'`` and ``'last'`` (final state of each direction) are the comparisons.
3. ``enhanced_features`` -- *enhanced feature representation*, read as: the three log-mel
   channels (static, delta, delta-delta) instead of the static one, each normalized per
   utterance to zero mean and unit variance per mel band over the valid frames
   (:func:`utterance_normalize`), which removes the speaker's and channel's level and
   spectral tilt. Off: static channel only, unnormalized (a 3-channel input is reduced
   to its channel 0, so one data pipeline feeds both settings).
4. ``effective_training`` -- *effective training method*, read as: label smoothing
   (``label_smoothing``, default 0.1) in the cross-entropy of :meth:`CRNNMK.loss`, a
   regularizer against over-confident fits on small emotional corpora. Off: plain
   cross-entropy.

Everything else (masked batch norm, packed BLSTM, padding invariance) is the
:class:`~serbench.deep.crnn.CRNN` baseline's.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from serbench.deep.crnn import (
    BLSTM, ConvStack, Summarizer, Summary, SystemInputError, SystemOutput, check_batch, check_classes,
    check_labels, length_mask, mlp_head,
)


class MultiKernelConv(nn.Module):
    """Parallel ``Conv2d(in, c_i, (3, w_i))`` branches, "same" zero padding, concatenated.

    ``(B, C_in, F, T) -> (B, out_channels, F, T)``; ``out_channels`` is split as evenly
    as possible over the branches (the first ones get the remainder).
    """

    def __init__(self, in_channels: int, out_channels: int, widths: Sequence[int] = (3, 7, 11, 15)) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise SystemInputError(f"kernel_widths must be odd frame counts >= 1 (centred kernels), got {widths}")
        if out_channels < len(widths):
            raise SystemInputError(f"the first conv block needs >= {len(widths)} channels for {len(widths)} "
                                   f"kernel widths, got {out_channels}")
        base, extra = divmod(out_channels, len(widths))
        self.widths = widths
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, base + (i < extra), kernel_size=(3, w), padding=(1, w // 2), bias=False)
            for i, w in enumerate(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def utterance_normalize(x: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per utterance, channel and band: zero mean, unit variance over the valid frames.

    ``x (B, C, F, T)``, ``lengths (B,)`` -> same shape, 0 on padding. A constant band (e.g.
    a one-frame utterance) becomes 0 rather than a division by zero.
    """
    mask = length_mask(lengths, x.shape[-1])[:, None, None, :]
    n = lengths.to(x.dtype)[:, None, None, None]
    x = x.masked_fill(~mask, 0.0)
    mean = x.sum(dim=-1, keepdim=True) / n
    centred = (x - mean).masked_fill(~mask, 0.0)
    var = (centred * centred).sum(dim=-1, keepdim=True) / n
    return centred * torch.rsqrt(var + eps)


class CRNNMK(nn.Module):
    """Improved CRNN: ``forward(x (B, C, F, T), lengths (B,)) -> SystemOutput``.

    ``logits (B, n_classes)``, ``frames (B, T', 2 * hidden)`` BLSTM outputs, ``lengths``
    valid output frames, ``weights (B, T')`` for the learned summary. ``x`` has 3 channels
    with ``enhanced_features`` (1 or 3 without). See the module docstring for the flags.
    """

    def __init__(self, n_classes: int, *, multi_kernel: bool = True, summary: Summary | str = Summary.ATTENTION,
                 enhanced_features: bool = True, effective_training: bool = True,
                 kernel_widths: Sequence[int] = (3, 7, 11, 15), label_smoothing: float = 0.1,
                 n_mels: int = 60, channels: Sequence[int] = (32, 32, 64), freq_pools: Sequence[int] = (2, 2, 2),
                 time_pools: Sequence[int] = (2, 2, 1), hidden: int = 128, lstm_layers: int = 1,
                 attn_dim: int = 64, fc_hidden: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        check_classes(n_classes)
        if not 0.0 <= label_smoothing < 1.0:
            raise SystemInputError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.n_classes, self.n_mels = int(n_classes), n_mels
        self.multi_kernel, self.enhanced_features = bool(multi_kernel), bool(enhanced_features)
        self.effective_training = bool(effective_training)
        self.label_smoothing = float(label_smoothing) if self.effective_training else 0.0
        in_channels = 3 if self.enhanced_features else 1
        first = MultiKernelConv(in_channels, channels[0], kernel_widths) if self.multi_kernel and channels else None
        self.cnn = ConvStack(in_channels, channels, freq_pools, time_pools, n_mels, first_conv=first)
        self.blstm = BLSTM(self.cnn.out_dim, hidden, lstm_layers, dropout)
        self.summary = Summarizer(summary, 2 * hidden, attn_dim)
        self.head = mlp_head(2 * hidden, fc_hidden, n_classes, dropout)

    @property
    def variant(self) -> str:
        """Short name of the ablation setting, e.g. ``crnn-mk`` or ``crnn-mk-nomk-mean``."""
        parts = ["crnn-mk"]
        if not self.multi_kernel:
            parts.append("nomk")
        if self.summary.kind is not Summary.ATTENTION:
            parts.append(self.summary.kind.value)
        if not self.enhanced_features:
            parts.append("noenh")
        if not self.effective_training:
            parts.append("nols")
        return "-".join(parts)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.cnn.output_lengths(torch.as_tensor(lengths).long())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> SystemOutput:
        allowed = (3,) if self.enhanced_features else (1, 3)
        lengths = check_batch(x, lengths, channels=allowed, n_mels=self.n_mels)
        if self.enhanced_features:
            x = utterance_normalize(x, lengths)
        else:
            x = x[:, :1]
        feats, lengths = self.cnn(x, lengths)
        outputs, last = self.blstm(feats, lengths)
        z, weights = self.summary(outputs, last, length_mask(lengths, outputs.shape[1]))
        return SystemOutput(self.head(z), outputs, lengths, weights)

    def loss(self, out: SystemOutput, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, label-smoothed when ``effective_training`` is on."""
        labels = check_labels(labels, out.logits.shape[0], self.n_classes).to(out.logits.device)
        return F.cross_entropy(out.logits, labels, label_smoothing=self.label_smoothing)
