"""CRNN-CTC (Zhu et al. 2020): a CRNN whose frame outputs are trained with CTC.

The paper (only its abstract is available to us) splits each utterance into emotional and
non-emotional frames and trains with CTC "to make the network model focus on the emotional
frames". Our reading, fixed here so that results can be reproduced:

**Frame split (energy).** The frame energy is ``E(t) = 10 log10(sum_f exp(logmel[f, t]))``
dB, the total mel power of the static log-mel channel (:func:`frame_energy_db`; melseg
stores ``ln`` of the mel power). It is taken to the model's output frame rate by the max
over the input frames each output frame covers (:func:`pool_energy`; an output frame is as
loud as its loudest input frame, as the max-pooling CNN sees it). An output frame is
*emotional* when ``E(t) >= max_t' E(t') - drop_db`` over the utterance's valid frames
(default ``drop_db = 25``): the voiced, loud part of the speech, which carries the pitch and
energy contours; pauses, silence and weak consonants are *non-emotional*. The threshold is
relative to the utterance, so recording level does not matter, and the loudest frame is
always emotional, so every utterance has at least one emotional segment.

**CTC targets.** Classes: blank = 0, emotion ``k`` (class index ``0..K-1``) = CTC label
``k + 1``. Each maximal run of emotional frames is one emotional segment; the target
sequence is the utterance's label once per segment (``[k+1] * n_runs``), and the
non-emotional frames are what the blank absorbs (:func:`ctc_targets`). CTC does not pin the
tokens to the runs; the split fixes *how many* emotional events the utterance contains,
and the loss lets the network place them on the frames where it finds emotional evidence
and emit blank elsewhere, instead of forcing every frame (silence included) to carry the
label as frame-wise cross-entropy would. Runs are separated by at least one non-emotional
frame, so ``2 * n_runs - 1 <= T'`` and the target is always alignable; :func:`ctc_loss`
still checks every target and raises :class:`CTCAlignmentError` rather than returning an
infinite loss.

**Decoding.** The utterance decision is *posterior decoding*: the sum over valid frames of
each non-blank class's posterior, argmax (:func:`decode` ``method='posterior'``); the
model's ``logits`` are the log of these sums renormalized over the K emotions
(:func:`utterance_log_probs`), so softmax(logits) are scores for the results store. Why not
best-path: CTC posteriors are peaky and blank-dominated, so best path often collapses to
no token at all on short or quiet utterances and throws away the evidence of the frames it
did not pick; the posterior sum always decides and uses every frame. Best-path decoding
with a majority vote over the emitted tokens (ties and empty paths fall back to posterior
decoding) is available as ``method='best_path'`` for comparison.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from serbench.deep.crnn import (
    BLSTM, ConvStack, SystemInputError, SystemOutput, check_batch, check_classes, check_labels, length_mask,
    check_lengths,
)

BLANK = 0
DECODE_METHODS = ("posterior", "best_path")
_DB_PER_NEPER = 10.0 / math.log(10.0)   # 10 log10(p) = _DB_PER_NEPER * ln(p)


class CTCAlignmentError(SystemInputError):
    """A CTC target sequence cannot be aligned with its utterance's output frames."""


# ---------------------------------------------------------------- frame split and targets

def frame_energy_db(logmel: torch.Tensor) -> torch.Tensor:
    """``(B, F, T)`` static log-mel (``ln`` mel power) -> ``(B, T)`` frame energy in dB.

    Needs the raw log-mel: features normalized by a mean/std no longer give a power.
    """
    if logmel.ndim != 3:
        raise SystemInputError(f"logmel must be (B, F, T), got {tuple(logmel.shape)}")
    return _DB_PER_NEPER * torch.logsumexp(logmel.float(), dim=1)


def pool_energy(energy: torch.Tensor, lengths: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, T)`` input-rate energy -> ``(B, ceil(T / factor))``: max over each output frame's inputs.

    Padding frames are ignored (an output frame covering only padding gets ``-inf``).
    """
    mask = length_mask(lengths, energy.shape[1])
    e = energy.masked_fill(~mask, float("-inf"))
    if factor == 1:
        return e
    pad = (-e.shape[1]) % factor
    e = F.pad(e, (0, pad), value=float("-inf"))
    return e.reshape(e.shape[0], -1, factor).amax(dim=-1)


def emotional_frames(energy: torch.Tensor, lengths: torch.Tensor, drop_db: float = 25.0) -> torch.Tensor:
    """``(B, T)`` dB, ``(B,)`` lengths -> ``(B, T)`` bool: valid and within ``drop_db`` of the loudest frame."""
    if not drop_db > 0:
        raise SystemInputError(f"drop_db must be > 0 dB, got {drop_db}")
    lengths = check_lengths(lengths, energy.shape[0], energy.shape[1], "energy")
    mask = length_mask(lengths, energy.shape[1])
    if not bool(torch.isfinite(energy[mask]).all()):
        raise SystemInputError("energy holds NaN or infinite values in valid frames")
    peak = energy.masked_fill(~mask, float("-inf")).amax(dim=1, keepdim=True)
    return mask & (energy >= peak - drop_db)


def ctc_targets(energy: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, *,
                drop_db: float = 25.0) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets from the energy split (see the module docstring).

    ``energy (B, T)`` dB at the output frame rate, ``lengths (B,)`` valid output frames,
    ``labels (B,)`` class indices ``0..K-1``. Returns ``targets (B, S)`` int64 (label + 1 once
    per run of emotional frames, right-padded with 0) and ``target_lengths (B,)`` = runs.
    """
    emo = emotional_frames(energy, lengths, drop_db)
    labels = torch.as_tensor(labels, device=energy.device)
    if labels.ndim != 1 or labels.shape[0] != energy.shape[0] or labels.is_floating_point() or \
            (labels.numel() and int(labels.min()) < 0):
        raise SystemInputError(f"labels must be non-negative class indices ({energy.shape[0]},), got "
                               f"{labels.dtype} {tuple(labels.shape)}")
    prev = F.pad(emo[:, :-1], (1, 0), value=False)
    runs = (emo & ~prev).sum(dim=1)                               # starts of emotional segments
    width = max(int(runs.max()) if runs.numel() else 0, 1)
    slots = torch.arange(width, device=energy.device)[None, :] < runs[:, None]
    targets = torch.where(slots, labels.long()[:, None] + 1, torch.zeros_like(slots, dtype=torch.long))
    return targets, runs.long()


def check_alignment(input_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> None:
    """Raise :class:`CTCAlignmentError` if some target cannot fit its input frames.

    A CTC path needs one frame per label plus one blank between equal neighbours, so a
    target of ``S`` labels with ``R`` adjacent repeats needs ``S + R`` frames.
    """
    if targets.ndim != 2 or targets.shape[0] != input_lengths.shape[0] or target_lengths.shape != input_lengths.shape:
        raise CTCAlignmentError(f"targets must be (B, S) and target_lengths (B,) for B={input_lengths.shape[0]}, "
                                f"got {tuple(targets.shape)} and {tuple(target_lengths.shape)}")
    if int(target_lengths.min()) < 0 or int(target_lengths.max()) > targets.shape[1]:
        raise CTCAlignmentError(f"target_lengths must lie in [0, {targets.shape[1]}] (the width of targets)")
    valid = length_mask(target_lengths, targets.shape[1])
    if bool((targets[valid] == BLANK).any()):
        raise CTCAlignmentError(f"targets hold the blank index {BLANK} inside target_lengths; emotions are 1..K")
    repeats = ((targets[:, 1:] == targets[:, :-1]) & valid[:, 1:]).sum(dim=1)
    need = target_lengths + repeats
    bad = torch.nonzero(need > input_lengths).flatten()
    if bad.numel():
        b = int(bad[0])
        raise CTCAlignmentError(
            f"utterance {b} of the batch: a CTC target of {int(target_lengths[b])} labels "
            f"({int(repeats[b])} repeats) needs at least {int(need[b])} output frames but has "
            f"{int(input_lengths[b])}; use fewer time pools or a shorter target ({bad.numel()} such utterances)")


def ctc_loss(log_probs: torch.Tensor, input_lengths: torch.Tensor, targets: torch.Tensor,
             target_lengths: torch.Tensor) -> torch.Tensor:
    """Checked ``torch.nn.CTCLoss`` (blank 0, mean over the batch of per-target-length losses).

    ``log_probs (T, B, K+1)`` log-softmax outputs, ``input_lengths (B,)``, ``targets (B, S)``,
    ``target_lengths (B,)``.
    """
    input_lengths = check_lengths(input_lengths, log_probs.shape[1], log_probs.shape[0], "log_probs")
    targets, target_lengths = torch.as_tensor(targets).long(), torch.as_tensor(target_lengths).long()
    check_alignment(input_lengths.cpu(), targets.cpu(), target_lengths.cpu())
    # CTC is computed in float32 even under autocast: its log-space recursions lose too much in half.
    return F.ctc_loss(log_probs.float(), targets.to(log_probs.device), input_lengths, target_lengths,
                      blank=BLANK, reduction="mean", zero_infinity=False)


# ---------------------------------------------------------------- decoding

def utterance_log_probs(frame_log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(B, T, K+1)`` frame log-posteriors -> ``(B, K)`` log of each emotion's share of the
    non-blank posterior mass summed over the valid frames."""
    mask = length_mask(lengths, frame_log_probs.shape[1])
    lp = frame_log_probs[..., 1:].masked_fill(~mask[..., None], float("-inf"))
    mass = torch.logsumexp(lp, dim=1)                              # (B, K): log sum_t p_k(t)
    return mass - torch.logsumexp(mass, dim=1, keepdim=True)


def decode(log_probs: torch.Tensor, lengths: torch.Tensor, method: str = "posterior") -> torch.Tensor:
    """``log_probs (T, B, K+1)`` (CTC layout, blank 0), ``lengths (B,)`` -> ``(B,)`` class indices ``0..K-1``.

    ``posterior``: argmax over emotions of the posterior summed over valid frames.
    ``best_path``: per-frame argmax, merge repeats, drop blanks, majority vote over the
    remaining tokens; a tie or an all-blank path is settled by posterior decoding.
    """
    if method not in DECODE_METHODS:
        raise SystemInputError(f"method must be one of {DECODE_METHODS}, got {method!r}")
    if log_probs.ndim != 3 or log_probs.shape[2] < 2:
        raise SystemInputError(f"log_probs must be (T, B, K+1) with K >= 1, got {tuple(log_probs.shape)}")
    lengths = check_lengths(lengths, log_probs.shape[1], log_probs.shape[0], "log_probs")
    frames = log_probs.transpose(0, 1)                             # (B, T, K+1)
    scores = utterance_log_probs(frames, lengths)                  # (B, K)
    posterior = scores.argmax(dim=1)
    if method == "posterior":
        return posterior
    k = frames.shape[2] - 1
    best = frames.argmax(dim=2).cpu()
    out = posterior.clone()
    for b in range(frames.shape[0]):
        path = best[b, :int(lengths[b])]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]                          # merge repeated frames
        tokens = path[keep]
        tokens = tokens[tokens != BLANK] - 1
        if tokens.numel() == 0:
            continue
        counts = torch.bincount(tokens, minlength=k)
        top = torch.nonzero(counts == counts.max()).flatten()
        out[b] = top[scores[b, top.to(scores.device)].argmax().cpu()] if top.numel() > 1 else top[0]
    return out


# ---------------------------------------------------------------- the model

class CRNNCTC(nn.Module):
    """CRNN with a per-frame ``K + 1``-way (blank + emotions) output trained with CTC.

    ``forward(x (B, C, F, T), lengths (B,), energy (B, T) | None) -> SystemOutput`` with
    ``frames (B, T', K+1)`` frame log-posteriors, ``lengths`` valid output frames,
    ``energy (B, T')`` dB at the output rate and ``logits (B, K)`` =
    :func:`utterance_log_probs`. ``energy`` is the input-rate :func:`frame_energy_db` of
    the *raw* log-mel; when omitted it is computed from ``x[:, 0]``, which is right only
    if ``x`` is the unnormalized log-mel (pass it explicitly when the trainer normalizes).

    ``loss(out, labels)`` is the CTC loss against :func:`ctc_targets` of ``out.energy``;
    ``predict(out)`` decodes with ``decode_method``. CNN/BLSTM options as :class:`CRNN`.
    """

    def __init__(self, n_classes: int, *, in_channels: int = 3, n_mels: int = 60,
                 channels: Sequence[int] = (16, 32, 64), freq_pools: Sequence[int] = (2, 2, 2),
                 time_pools: Sequence[int] = (2, 2, 1), hidden: int = 128, lstm_layers: int = 1,
                 fc_hidden: int = 64, dropout: float = 0.3, drop_db: float = 25.0,
                 decode_method: str = "posterior") -> None:
        super().__init__()
        check_classes(n_classes)
        if in_channels not in (1, 3):
            raise SystemInputError(f"in_channels must be 1 or 3, got {in_channels}")
        if decode_method not in DECODE_METHODS:
            raise SystemInputError(f"decode_method must be one of {DECODE_METHODS}, got {decode_method!r}")
        if not drop_db > 0:
            raise SystemInputError(f"drop_db must be > 0 dB, got {drop_db}")
        self.n_classes, self.in_channels, self.n_mels = int(n_classes), in_channels, n_mels
        self.drop_db, self.decode_method = float(drop_db), decode_method
        self.cnn = ConvStack(in_channels, channels, freq_pools, time_pools, n_mels)
        self.blstm = BLSTM(self.cnn.out_dim, hidden, lstm_layers, dropout)
        # Frame classifier: the same FC-ReLU-FC head as the CRNN, applied to every frame.
        self.frame_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, fc_hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(fc_hidden, n_classes + 1))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.cnn.output_lengths(torch.as_tensor(lengths).long())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, energy: torch.Tensor | None = None) -> SystemOutput:
        in_lengths = check_batch(x, lengths, channels=(self.in_channels,), n_mels=self.n_mels)
        if energy is None:
            energy = frame_energy_db(x[:, 0].masked_fill(~length_mask(in_lengths, x.shape[-1])[:, None, :], 0.0))
        elif energy.shape != (x.shape[0], x.shape[-1]):
            raise SystemInputError(f"energy must be (B, T) = {(x.shape[0], x.shape[-1])}, got {tuple(energy.shape)}")
        feats, lengths = self.cnn(x, in_lengths)
        outputs, _ = self.blstm(feats, lengths)
        log_probs = torch.log_softmax(self.frame_head(outputs).float(), dim=-1)   # (B, T', K+1)
        e_out = pool_energy(energy.detach().float(), in_lengths, self.cnn.time_factor)
        return SystemOutput(utterance_log_probs(log_probs, lengths), log_probs, lengths, None, e_out)

    def targets(self, out: SystemOutput, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`ctc_targets` of a forward output."""
        if out.energy is None:
            raise SystemInputError("out.energy is missing: pass the output of CRNNCTC.forward")
        labels = check_labels(labels, out.logits.shape[0], self.n_classes)
        return ctc_targets(out.energy, out.lengths, labels.to(out.energy.device), drop_db=self.drop_db)

    def loss(self, out: SystemOutput, labels: torch.Tensor) -> torch.Tensor:
        """CTC loss of the frame log-posteriors against the energy-split targets."""
        targets, target_lengths = self.targets(out, labels)
        assert out.frames is not None
        return ctc_loss(out.frames.transpose(0, 1), out.lengths, targets, target_lengths)

    def predict(self, out: SystemOutput) -> torch.Tensor:
        """``(B,)`` class indices decoded with ``decode_method``."""
        assert out.frames is not None
        return decode(out.frames.transpose(0, 1), out.lengths, self.decode_method)
