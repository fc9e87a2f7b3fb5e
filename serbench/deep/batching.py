"""One fold's inputs for the seed-paper systems: normalization, augmentation, batches.

:func:`plan_fold` turns a fold's utterances into rows (fit originals, augmented copies,
validation, test) with every fitted thing (augmentation, class balancing, the
per-(channel, mel band) normalization) taken from the fit utterances only. The
``*Inputs`` classes build padded batches from those rows: whole log-mel spectrograms
for the CRNN systems, fixed-length windows as images for DCNN-BLSTMwA (optionally
through a frozen encoder whose features are computed once). Training batches group
utterances of similar length (:func:`length_batches`); padding never changes a result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from serbench.deep.augment import augment_training_set, balanced_indices
from serbench.deep.crnn import SystemInputError, SystemOutput
from serbench.deep.crnn_ctc import frame_energy_db
from serbench.deep.dcnn_blstm_att import DCNNBLSTMAtt, stack_segments
from serbench.deep.train import autocast


# ---------------------------------------------------------------- normalization

def fit_band_stats(mels: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std ``(C, F)`` per (channel, mel band) over every frame of ``mels`` (each ``(C, F, T_i)``).

    Sums in float64; a constant band keeps std 1 (no division by zero).
    """
    if not len(mels):
        raise SystemInputError("no training utterances to fit the input normalization on")
    total = total2 = None
    count = 0
    for m in mels:
        a = np.asarray(m, dtype=np.float64)
        s, s2 = a.sum(axis=-1), np.einsum("cft,cft->cf", a, a)
        total = s if total is None else total + s
        total2 = s2 if total2 is None else total2 + s2
        count += a.shape[-1]
    mean = total / count
    std = np.sqrt(np.maximum(total2 / count - mean * mean, 0.0))
    std = np.where(std > 1e-8, std, 1.0)
    return torch.from_numpy(mean).float(), torch.from_numpy(std).float()


class BandNorm:
    """``(x - mean) / std`` per (channel, band) for ``(C, F, T)`` or ``(B, C, F, T)`` log-mel."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean[..., None], std[..., None]     # (C, F, 1): broadcasts over frames

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


# ---------------------------------------------------------------- one fold's data

@dataclass
class FoldPlan:
    """One fold's data as the trainer sees it.

    Rows index ``arrays`` and ``labels``: ``[fit originals | augmented copies | val | test]``.
    ``arrays[r]`` is the RAW log-mel ``(C, F, T_r)`` float32 (normalized per batch with
    ``norm``); ``labels (R,)`` int64 with -1 on test rows (their labels never reach
    training); ``train_rows``: one epoch's rows (fit + copies, oversampled with
    ``balance``); ``source (R,)``: the corpus position of each row's utterance.
    """

    arrays: list[torch.Tensor]
    labels: torch.Tensor
    train_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    norm: BandNorm
    source: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(channels, mel bands)`` of the inputs."""
        return int(self.arrays[0].shape[0]), int(self.arrays[0].shape[1])


def float_tensor(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a, dtype=np.float32)
    # Cached arrays may be read-only; torch.from_numpy shares memory only with writable ones.
    return torch.from_numpy(a if a.flags.writeable else a.copy())


@dataclass(frozen=True)
class Augmentation:
    """Training-set augmentation of a fold: ``copies`` augmented copies of each fit utterance
    (time shift <= ``shift`` frames, time mask <= ``time_mask`` frames, frequency mask <=
    ``freq_mask`` bands) and, with ``balance``, classes oversampled to the largest."""

    copies: int = 0
    time_mask: int = 10
    freq_mask: int = 8
    shift: int = 10
    balance: bool = False


def plan_fold(mels: Sequence[np.ndarray], y: np.ndarray, fit: np.ndarray, val: np.ndarray,
              aug: Augmentation, *, augment_seed: int, balance_seed: int,
              tensors: Sequence[torch.Tensor] | None = None) -> FoldPlan:
    """Augmentation, balancing and normalization of one fold, from its ``fit`` utterances only.

    ``mels[i]`` ``(C, F, T_i)`` and ``y[i]`` (class index) for every corpus utterance;
    ``fit`` / ``val`` are corpus positions (no test rows: see :func:`predict_plan`).
    ``tensors`` (optional) are ``mels`` already converted with :func:`float_tensor`.
    """
    fit, val = (np.asarray(v, dtype=np.int64) for v in (fit, val))
    fit_mels = [mels[i] for i in fit]
    as_t = (lambda i: tensors[i]) if tensors is not None else (lambda i: float_tensor(mels[i]))
    if aug.copies > 0:
        arrs, labs, src = augment_training_set(
            fit_mels, y[fit], copies=aug.copies, seed=augment_seed,
            time_mask_width=aug.time_mask, freq_mask_width=aug.freq_mask, max_shift=aug.shift)
        train_src = fit[src]
        train_arrays = [as_t(i) for i in fit] + [float_tensor(a) for a in arrs[len(fit):]]
    else:
        labs, train_src = y[fit], fit
        train_arrays = [as_t(i) for i in fit]
    n_train = len(train_arrays)
    if aug.balance:
        train_rows = balanced_indices(np.asarray(labs), balance_seed, index=np.arange(n_train, dtype=np.int64))
    else:
        train_rows = np.arange(n_train, dtype=np.int64)
    mean, std = fit_band_stats(fit_mels)                                    # fit originals only
    arrays = train_arrays + [as_t(i) for i in val]
    labels = torch.as_tensor(np.concatenate([np.asarray(labs), y[val]]), dtype=torch.long)
    return FoldPlan(arrays=arrays, labels=labels, train_rows=train_rows,
                    val_rows=np.arange(n_train, n_train + len(val), dtype=np.int64),
                    test_rows=np.arange(0, dtype=np.int64),
                    norm=BandNorm(mean, std), source=np.concatenate([train_src, val]).astype(np.int64))


def predict_plan(mels: Sequence[np.ndarray], rows: np.ndarray, norm: BandNorm,
                 tensors: Sequence[torch.Tensor] | None = None) -> FoldPlan:
    """The utterances ``rows`` to predict, normalized with a fold's fitted ``norm`` (labels unused: -1)."""
    rows = np.asarray(rows, dtype=np.int64)
    as_t = (lambda i: tensors[i]) if tensors is not None else (lambda i: float_tensor(mels[i]))
    return FoldPlan(arrays=[as_t(i) for i in rows], labels=torch.full((len(rows),), -1, dtype=torch.long),
                    train_rows=np.arange(0, dtype=np.int64), val_rows=np.arange(0, dtype=np.int64),
                    test_rows=np.arange(len(rows), dtype=np.int64), norm=norm, source=rows)


# ---------------------------------------------------------------- batches

def length_batches(sizes: np.ndarray, batch: int, gen: torch.Generator, bucket: int = 8) -> list[np.ndarray]:
    """Positions ``0..len(sizes)-1`` in batches of at most ``batch``, with similar ``sizes`` together.

    A seeded random permutation is cut into pools of ``bucket * batch``; each pool is
    sorted by size (ties in random order) and cut into batches; the batch order is
    shuffled. All randomness comes from ``gen`` (saved in checkpoints).
    """
    n = len(sizes)
    perm = torch.randperm(n, generator=gen).numpy()
    out: list[np.ndarray] = []
    pool = max(1, bucket) * batch
    for start in range(0, n, pool):
        chunk = perm[start:start + pool]
        chunk = chunk[np.argsort(np.asarray(sizes)[chunk], kind="stable")]
        out += [chunk[i:i + batch] for i in range(0, len(chunk), batch)]
    order = torch.randperm(len(out), generator=gen).tolist()
    return [out[i] for i in order]


def sorted_batches(sizes: np.ndarray, batch: int) -> list[np.ndarray]:
    """Positions in batches of at most ``batch``, sorted by size (evaluation: no randomness)."""
    order = np.argsort(np.asarray(sizes), kind="stable")
    return [order[i:i + batch] for i in range(0, len(order), batch)]


def _crop_start(length: int, keep: int, gen: torch.Generator | None) -> int:
    if gen is None or keep <= 0 or length <= keep:
        return 0
    return int(torch.randint(0, length - keep + 1, (1,), generator=gen))


def pad_frames(arrays: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, F, T_i)`` tensors -> ``(B, C, F, max T_i)`` zero-padded and ``lengths (B,)``."""
    lengths = torch.tensor([int(a.shape[-1]) for a in arrays], dtype=torch.long)
    out = arrays[0].new_zeros((len(arrays), *arrays[0].shape[:-1], int(lengths.max())))
    for i, a in enumerate(arrays):
        out[i, ..., :a.shape[-1]] = a
    return out, lengths


class SpectrogramInputs:
    """Batches for CRNN / CRNN-MK / CRNN-CTC: ``(x (B, C, F, T), lengths (B,)[, energy (B, T)])``.

    ``x`` is the normalized, zero-padded log-mel; training rows (``gen`` given) longer than
    ``max_frames`` are randomly cropped. With ``energy`` (CRNN-CTC) the frame energy in dB
    of the RAW static log-mel is passed too, since the normalized input no longer gives a
    power (the energy split needs it).
    """

    def __init__(self, plan: FoldPlan, *, max_frames: int = 0, energy: bool = False) -> None:
        self.plan, self.max_frames, self.energy = plan, int(max_frames), bool(energy)
        self.frames = np.array([int(a.shape[-1]) for a in plan.arrays], dtype=np.int64)

    def sizes(self, rows: np.ndarray, train: bool) -> np.ndarray:
        """Frames each row will have in a batch (its sort key)."""
        f = self.frames[rows]
        return np.minimum(f, self.max_frames) if train and self.max_frames > 0 else f

    def make(self, rows: np.ndarray, gen: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        raws = []
        for r in rows:
            a = self.plan.arrays[int(r)]
            start = _crop_start(int(a.shape[-1]), self.max_frames, gen)
            raws.append(a[..., start:start + self.max_frames] if (gen is not None and self.max_frames > 0) else a)
        raw, lengths = pad_frames(raws)
        x = self.plan.norm(raw)
        if not self.energy:
            return x, lengths
        return x, lengths, frame_energy_db(raw[:, 0])

    def forward(self, model: nn.Module, inputs: tuple[torch.Tensor, ...], device: torch.device) -> SystemOutput:
        return model(*(t.to(device, non_blocking=True) for t in inputs))


def segment_windows(n_frames: int, seg_frames: int, seg_hop: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame windows of one utterance for DCNN-BLSTMwA.

    Windows of ``seg_frames`` frames every ``seg_hop`` frames; a last window ending at
    the final frame is added when the hop does not reach it, so no frame is lost. An
    utterance shorter than ``seg_frames`` is one window of all its frames (the resize to
    the image size stretches it). Count: ``1 + ceil((T - seg_frames) / seg_hop)`` for
    ``T >= seg_frames``.
    """
    if n_frames <= seg_frames:
        return [(0, n_frames)]
    out = [(s, s + seg_frames) for s in range(0, n_frames - seg_frames + 1, seg_hop)]
    if out[-1][1] < n_frames:
        out.append((n_frames - seg_frames, n_frames))
    return out


def window_images(mel: torch.Tensor, windows: Sequence[tuple[int, int]], size: int) -> torch.Tensor:
    """``(C, F, T)`` normalized log-mel + windows -> ``(len(windows), C, size, size)`` bilinear images."""
    widths = {e - s for s, e in windows}
    if len(widths) == 1:
        segs = torch.stack([mel[..., s:e] for s, e in windows])
        return F.interpolate(segs, size=(size, size), mode="bilinear", align_corners=False)
    return torch.cat([F.interpolate(mel[None, ..., s:e], size=(size, size), mode="bilinear", align_corners=False)
                      for s, e in windows])


class SegmentInputs:
    """Batches for DCNN-BLSTMwA with an encoder that trains: ``(segments (B, N, C, S, S), lengths (B,))``.

    Images are made per batch (memory stays small whatever the corpus size); training rows
    (``gen`` given) with more than ``max_segments`` windows keep a random run of them.
    """

    def __init__(self, plan: FoldPlan, *, seg_frames: int, seg_hop: int, image_size: int,
                 max_segments: int = 0) -> None:
        self.plan, self.size, self.max_segments = plan, int(image_size), int(max_segments)
        self.windows = [segment_windows(int(a.shape[-1]), seg_frames, seg_hop) for a in plan.arrays]
        self.counts = np.array([len(w) for w in self.windows], dtype=np.int64)

    def sizes(self, rows: np.ndarray, train: bool) -> np.ndarray:
        c = self.counts[rows]
        return np.minimum(c, self.max_segments) if train and self.max_segments > 0 else c

    def _windows(self, r: int, gen: torch.Generator | None) -> list[tuple[int, int]]:
        w = self.windows[r]
        start = _crop_start(len(w), self.max_segments, gen)
        return w[start:start + self.max_segments] if (gen is not None and self.max_segments > 0) else w

    def images(self, r: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """``(n_r, C, S, S)`` segment images of row ``r`` (normalized log-mel)."""
        return window_images(self.plan.norm(self.plan.arrays[r]), self._windows(r, gen), self.size)

    def make(self, rows: np.ndarray, gen: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        imgs = [self.images(int(r), gen) for r in rows]
        return stack_segments(torch.cat(imgs), [len(i) for i in imgs])

    def forward(self, model: nn.Module, inputs: tuple[torch.Tensor, ...], device: torch.device) -> SystemOutput:
        return model(*(t.to(device, non_blocking=True) for t in inputs))


class FeatureInputs(SegmentInputs):
    """DCNN-BLSTMwA with a frozen encoder: every row's segment features ``(n_r, D)`` are
    computed once (encoder in eval mode, so they equal what :meth:`DCNNBLSTMAtt.forward`
    would compute) and batches are ``(feats (B, N, D), lengths (B,))``."""

    def __init__(self, plan: FoldPlan, model: DCNNBLSTMAtt, *, device: torch.device, amp: bool = False,
                 chunk: int = 256, **kwargs) -> None:
        super().__init__(plan, **kwargs)
        model.encoder.eval()
        self.feats: list[torch.Tensor] = [None] * len(plan.arrays)   # type: ignore[list-item]
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            imgs = torch.cat([im for _, im in pending]).to(device)
            with torch.no_grad(), autocast(device, amp):
                out = model.encoder(imgs).float().cpu()
            for (r, im), part in zip(pending, out.split([len(im) for _, im in pending])):
                self.feats[r] = part
            pending.clear()

        for r in range(len(plan.arrays)):
            pending.append((r, self.images(r)))
            if sum(len(im) for _, im in pending) >= chunk:
                flush()
        if pending:
            flush()

    def make(self, rows: np.ndarray, gen: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        parts = []
        for r in rows:
            f = self.feats[int(r)]
            start = _crop_start(len(f), self.max_segments, gen)
            parts.append(f[start:start + self.max_segments] if (gen is not None and self.max_segments > 0) else f)
        return stack_segments(torch.cat(parts), [len(p) for p in parts])

    def forward(self, model: nn.Module, inputs: tuple[torch.Tensor, ...], device: torch.device) -> SystemOutput:
        feats, lengths = inputs
        return model.forward_features(feats.to(device, non_blocking=True), lengths.to(device))


Inputs = SpectrogramInputs | SegmentInputs
