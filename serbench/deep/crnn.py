"""CRNN: the plain CNN + BLSTM + fully connected baseline on log-mel spectrograms.

Input everywhere in :mod:`serbench.deep.systems`: a padded batch ``x`` of log-mel
spectrograms ``(B, C, F, T)`` (``C`` = 1 static or 3 static/delta/delta-delta channels,
``F`` = 60 mel bands as melseg) and ``lengths (B,)``, the number of valid frames of each
utterance (``1 <= lengths[b] <= T``).

Topology: ``n`` conv blocks ``Conv2d(3x3) -> BatchNorm -> ReLU -> MaxPool`` (pooling
mostly over frequency; time is pooled by ``time_pools``, default 4x in all, i.e. 40 ms
per output frame, so the BLSTM still sees the syllable rhythm), the ``(channels x
F')`` map of each output frame flattened into a vector, a BLSTM over the valid frames
(``pack_padded_sequence``), a summarization over time (:class:`Summary`: mean over
valid frames, last valid state, or learned attention weights) and two FC layers.

Padding never influences the result. Padding frames are set to zero before every
convolution (so a conv at the edge of the valid frames sees the same zeros as the
conv's own zero padding would give an unpadded utterance), batch-norm statistics are
taken over valid frames only (:class:`MaskedBatchNorm2d`), max-pooling runs after the
ReLU on non-negative values with zeroed padding (a window that straddles the edge
therefore returns the max of its valid frames), the BLSTM runs on packed sequences and
the summaries ignore padded positions. In eval mode an utterance gives the same logits
alone as inside any padded batch.

The shared building blocks live here because the other systems (CRNN-CTC, CRNN-MK)
are modifications of this baseline.
"""
from __future__ import annotations

import math
from enum import Enum
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serbench.errors import SerbenchError


class SystemInputError(SerbenchError):
    """A batch or a constructor option cannot be used with a ``serbench.deep.systems`` model."""


class SystemOutput(NamedTuple):
    """What every system's ``forward`` returns.

    ``logits (B, n_classes)``: utterance scores (softmax gives probabilities).
    ``frames (B, T', D)`` or ``None``: frame-level outputs at the model's output frame
    rate (BLSTM outputs; for CRNN-CTC the frame log-posteriors ``(B, T', K + 1)``).
    ``lengths (B,)``: valid output frames (or segments) per utterance.
    ``weights (B, T')`` or ``None``: attention weights (sum 1 over valid positions, 0 on padding).
    ``energy (B, T')`` or ``None``: CRNN-CTC only, frame energy in dB at the output rate.
    """

    logits: torch.Tensor
    frames: torch.Tensor | None
    lengths: torch.Tensor
    weights: torch.Tensor | None = None
    energy: torch.Tensor | None = None


class Summary(str, Enum):
    """How the BLSTM outputs ``(B, T', 2H)`` become one ``(B, 2H)`` vector per utterance."""

    MEAN = "mean"            # average over the valid frames
    LAST = "last"            # final state of each direction: forward at frame L-1, backward at frame 0
    ATTENTION = "attention"  # softmax-weighted sum, weights from a learned scorer (AttentionPool)

    @classmethod
    def _missing_(cls, value: object) -> "Summary | None":
        # "learned" is the name Meyer et al. give the attention summarization.
        return cls.ATTENTION if value == "learned" else None

    @classmethod
    def parse(cls, value: "Summary | str", option: str = "summary") -> "Summary":
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(s.value) for s in cls)
            raise SystemInputError(f"{option} must be one of {choices}, got {value!r}") from None


# ---------------------------------------------------------------- input checks and masks

def length_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, total)`` bool, True on valid positions."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


def check_batch(x: torch.Tensor, lengths: torch.Tensor, *, channels: Sequence[int] | None = None,
                n_mels: int | None = None, name: str = "x") -> torch.Tensor:
    """Validate a padded ``(B, C, F, T)`` batch and return ``lengths`` as int64 on ``x``'s device.

    Only valid frames must be finite: padding may hold anything (it is masked out).
    """
    if not torch.is_tensor(x) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise SystemInputError(f"{name} must be a float tensor (B, C, F, T), got {shape}")
    b, c, f, t = x.shape
    if channels is not None and c not in channels:
        raise SystemInputError(f"{name} has {c} channels, this model takes {' or '.join(map(str, channels))} "
                               "(static or static/delta/delta-delta log-mel)")
    if n_mels is not None and f != n_mels:
        raise SystemInputError(f"{name} has {f} mel bands, the model was built with n_mels={n_mels}")
    lengths = check_lengths(lengths, b, t, name)
    valid = length_mask(lengths, t)[:, None, None, :].expand_as(x)
    if not bool(torch.isfinite(x[valid]).all()):
        raise SystemInputError(f"{name} holds NaN or infinite values in valid frames; clean the features first")
    return lengths


def check_lengths(lengths: torch.Tensor, batch: int, total: int, name: str) -> torch.Tensor:
    """Validate ``(batch,)`` integer lengths in ``[1, total]``; returns them as int64."""
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or lengths.shape[0] != batch or lengths.is_floating_point():
        raise SystemInputError(f"lengths must be an integer tensor ({batch},) for {name}, got "
                               f"{lengths.dtype} {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > total):
        raise SystemInputError(f"lengths must lie in [1, {total}] (the padded size of {name}), got "
                               f"min {int(lengths.min())}, max {int(lengths.max())}")
    return lengths.long()


def pad_batch(arrays: Sequence[np.ndarray | torch.Tensor], pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length ``(C, F, T_i)`` log-mel arrays -> ``(B, C, F, max T_i)`` float32 batch and ``lengths (B,)``.

    The collate step for these models (e.g. melseg's ``(3, 60, T)`` arrays); ``pad_value``
    fills the frames beyond each ``T_i`` and never changes a model's output.
    """
    if len(arrays) == 0:
        raise SystemInputError("pad_batch needs at least one array")
    tensors = [torch.as_tensor(a, dtype=torch.float32) for a in arrays]
    first = tensors[0].shape[:-1]
    for i, t in enumerate(tensors):
        if t.ndim != 3 or t.shape[:-1] != first or t.shape[-1] < 1:
            raise SystemInputError(f"array {i} has shape {tuple(t.shape)}; every array must be (C, F, T) with "
                                   f"the (C, F) = {tuple(first)} of array 0 and T >= 1")
    lengths = torch.tensor([t.shape[-1] for t in tensors], dtype=torch.long)
    out = torch.full((len(tensors), *first, int(lengths.max())), float(pad_value))
    for i, t in enumerate(tensors):
        out[i, ..., :t.shape[-1]] = t
    return out, lengths


def pooled_lengths(lengths: torch.Tensor, pool: int) -> torch.Tensor:
    """Valid frames after a ceil-mode max-pool of kernel = stride = ``pool`` over time."""
    return torch.div(lengths + pool - 1, pool, rounding_mode="floor")


# ---------------------------------------------------------------- convolutional front end

class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from valid frames only.

    ``x (B, C, F, T)``, ``mask (B, T)`` bool. Padding positions of the output are 0.
    State dict names are those of ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        m = mask[:, None, None, :]
        x = x.masked_fill(~m, 0.0)
        if self.training:
            n = mask.sum() * x.shape[2]                             # valid (frame, band) cells per channel
            mean = x.sum(dim=(0, 2, 3)) / n
            centred = (x - mean[None, :, None, None]).masked_fill(~m, 0.0)
            var = (centred * centred).sum(dim=(0, 2, 3)) / n
            with torch.no_grad():
                self.num_batches_tracked += 1
                # momentum=None means a cumulative average, as in nn.BatchNorm2d.
                w = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), w)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), w)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.masked_fill(~m, 0.0)


class ConvBlock(nn.Module):
    """``Conv2d -> MaskedBatchNorm -> ReLU -> MaxPool(freq_pool, time_pool)``.

    ``forward(x (B, C_in, F, T), lengths (B,)) -> (y (B, C_out, ceil(F/fp), ceil(T/tp)), lengths')``.
    ``conv`` may be any module mapping ``(B, C_in, F, T)`` to ``(B, C_out, F, T)`` with zero
    padding ("same" size), e.g. the multi-kernel layer of CRNN-MK.
    """

    def __init__(self, conv: nn.Module, out_channels: int, freq_pool: int, time_pool: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = MaskedBatchNorm2d(out_channels)
        self.freq_pool, self.time_pool = int(freq_pool), int(time_pool)
        # ceil_mode keeps the last partial window: with non-negative, zero-padded inputs its max
        # is the max of its valid frames, so short utterances keep every frame.
        self.pool = nn.MaxPool2d((self.freq_pool, self.time_pool), ceil_mode=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = length_mask(lengths, x.shape[-1])
        x = self.conv(x.masked_fill(~mask[:, None, None, :], 0.0))
        x = F.relu(self.bn(x, mask))                               # padding is 0 after bn
        if self.freq_pool > 1 or self.time_pool > 1:
            x = self.pool(x)
            lengths = pooled_lengths(lengths, self.time_pool)
        return x, lengths


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    # No bias: the batch norm that follows has its own shift.
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)


def check_pools(channels: Sequence[int], freq_pools: Sequence[int], time_pools: Sequence[int]) -> None:
    if not channels:
        raise SystemInputError("channels must name at least one conv block, e.g. (16, 32, 64)")
    for name, seq in (("channels", channels), ("freq_pools", freq_pools), ("time_pools", time_pools)):
        if len(seq) != len(channels):
            raise SystemInputError(f"{name} must have one entry per conv block ({len(channels)}), got {len(seq)}")
        if any(int(v) < 1 for v in seq):
            raise SystemInputError(f"{name} entries must be >= 1, got {tuple(seq)}")


def pooled_size(size: int, pools: Sequence[int]) -> int:
    """Size of an axis after ceil-mode pools."""
    for p in pools:
        size = math.ceil(size / p)
    return size


class ConvStack(nn.Module):
    """Conv blocks over ``(B, C, F, T)`` -> frame vectors ``(B, T', channels[-1] * F')`` + lengths."""

    def __init__(self, in_channels: int, channels: Sequence[int], freq_pools: Sequence[int],
                 time_pools: Sequence[int], n_mels: int, first_conv: nn.Module | None = None) -> None:
        super().__init__()
        check_pools(channels, freq_pools, time_pools)
        blocks = []
        c_in = in_channels
        for i, (c, fp, tp) in enumerate(zip(channels, freq_pools, time_pools)):
            conv = first_conv if (i == 0 and first_conv is not None) else conv3x3(c_in, c)
            blocks.append(ConvBlock(conv, c, fp, tp))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.time_factor = math.prod(int(p) for p in time_pools)
        self.out_dim = channels[-1] * pooled_size(n_mels, freq_pools)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            x, lengths = block(x, lengths)
        b, c, f, t = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, t, c * f), lengths

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            lengths = pooled_lengths(lengths, block.time_pool)
        return lengths


# ---------------------------------------------------------------- recurrent part and summaries

class BLSTM(nn.Module):
    """Bidirectional LSTM over the valid frames of ``(B, T, D)``.

    Returns ``outputs (B, T, 2H)`` (0 on padding) and ``last (B, 2H)``: the top layer's final
    forward state (after frame L-1) and final backward state (after frame 0), each having read
    every valid frame.
    """

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTM(input_size, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, torch.cat([h_n[-2], h_n[-1]], dim=-1)


class AttentionPool(nn.Module):
    """Learned attention pooling: ``e_t = v . tanh(W h_t + b)``, ``a = softmax(e)`` over valid ``t``.

    ``forward(h (B, T, D), mask (B, T)) -> (pooled (B, D), weights (B, T))``; the weights sum
    to 1 over the valid positions and are exactly 0 on padding.
    """

    def __init__(self, dim: int, attn_dim: int = 64) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.score(torch.tanh(self.proj(h))).squeeze(-1)          # (B, T)
        e = e.masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, dim=-1)
        return torch.bmm(a.unsqueeze(1), h).squeeze(1), a


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)`` -> ``(B, D)`` mean over the positions where ``mask (B, T)`` is True."""
    total = h.masked_fill(~mask.unsqueeze(-1), 0.0).sum(dim=1)
    return total / mask.sum(dim=1, keepdim=True).clamp_min(1).to(h.dtype)


class Summarizer(nn.Module):
    """One of the :class:`Summary` functions over BLSTM outputs.

    ``forward(outputs (B, T, D), last (B, D), mask (B, T)) -> (summary (B, D), weights (B, T) | None)``.
    """

    def __init__(self, kind: Summary | str, dim: int, attn_dim: int = 64) -> None:
        super().__init__()
        self.kind = Summary.parse(kind)
        self.attention = AttentionPool(dim, attn_dim) if self.kind is Summary.ATTENTION else None

    def forward(self, outputs: torch.Tensor, last: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.kind is Summary.MEAN:
            return masked_mean(outputs, mask), None
        if self.kind is Summary.LAST:
            return last, None
        assert self.attention is not None
        return self.attention(outputs, mask)


def mlp_head(in_dim: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    """FC -> ReLU -> dropout -> FC (logits; the softmax lives in the loss)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(hidden, n_classes))


def check_classes(n_classes: int) -> None:
    if int(n_classes) < 2:
        raise SystemInputError(f"n_classes must be >= 2, got {n_classes}")


def check_labels(labels: torch.Tensor, batch: int, n_classes: int) -> torch.Tensor:
    """Validate ``(B,)`` class indices in ``[0, n_classes)``."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != batch or labels.is_floating_point():
        raise SystemInputError(f"labels must be an integer tensor ({batch},), got {labels.dtype} {tuple(labels.shape)}")
    if batch and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise SystemInputError(f"labels must lie in [0, {n_classes - 1}], got min {int(labels.min())}, "
                               f"max {int(labels.max())}")
    return labels.long()


# ---------------------------------------------------------------- the model

class CRNN(nn.Module):
    """The baseline CRNN: ``forward(x (B, C, F, T), lengths (B,)) -> SystemOutput``.

    ``logits (B, n_classes)``; ``frames (B, T', 2 * hidden)`` BLSTM outputs with
    ``T' = ceil(T / prod(time_pools))`` and ``lengths`` the valid output frames;
    ``weights (B, T')`` with ``summary='attention'``.

    Defaults: 3 blocks of 16/32/64 channels, frequency pooled 2x per block
    (60 -> 30 -> 15 -> 8 bands), time pooled 2x in the first two blocks (10 ms -> 40 ms per
    frame), one BLSTM layer of 128 units per direction, FC 64, dropout 0.3.
    """

    def __init__(self, n_classes: int, *, in_channels: int = 3, n_mels: int = 60,
                 channels: Sequence[int] = (16, 32, 64), freq_pools: Sequence[int] = (2, 2, 2),
                 time_pools: Sequence[int] = (2, 2, 1), hidden: int = 128, lstm_layers: int = 1,
                 summary: Summary | str = Summary.MEAN, attn_dim: int = 64, fc_hidden: int = 64,
                 dropout: float = 0.3) -> None:
        super().__init__()
        check_classes(n_classes)
        if in_channels not in (1, 3):
            raise SystemInputError(f"in_channels must be 1 (static) or 3 (static, delta, delta-delta), got {in_channels}")
        self.n_classes, self.in_channels, self.n_mels = int(n_classes), in_channels, n_mels
        self.cnn = ConvStack(in_channels, channels, freq_pools, time_pools, n_mels)
        self.blstm = BLSTM(self.cnn.out_dim, hidden, lstm_layers, dropout)
        self.summary = Summarizer(summary, 2 * hidden, attn_dim)
        self.head = mlp_head(2 * hidden, fc_hidden, n_classes, dropout)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames for ``lengths`` input frames."""
        return self.cnn.output_lengths(torch.as_tensor(lengths).long())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> SystemOutput:
        lengths = check_batch(x, lengths, channels=(self.in_channels,), n_mels=self.n_mels)
        frames, lengths = self.cnn(x, lengths)                    # (B, T', D)
        outputs, last = self.blstm(frames, lengths)               # (B, T', 2H), (B, 2H)
        mask = length_mask(lengths, outputs.shape[1])
        z, weights = self.summary(outputs, last, mask)
        return SystemOutput(self.head(z), outputs, lengths, weights)

    def loss(self, out: SystemOutput, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the utterance logits against ``labels (B,)``."""
        labels = check_labels(labels, out.logits.shape[0], self.n_classes).to(out.logits.device)
        return F.cross_entropy(out.logits, labels)
