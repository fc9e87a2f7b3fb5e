"""Training and prediction of whole-utterance models (CRNN family, DCNN-BLSTMwA) on batched inputs.

A model here has ``forward(*batch) -> SystemOutput`` and ``loss(out, labels)``; its inputs
come from a :mod:`serbench.deep.batching` builder (padded log-mel, or segment images /
features). :func:`train_system` runs the shared epoch loop (:func:`serbench.deep.train.run_epochs`:
checkpoints, exact resume, early stopping); ``settings`` is any object with ``optimizer``,
``lr``, ``momentum``, ``weight_decay``, ``batch``, ``bucket``, ``epochs``, ``patience`` and
``grad_clip``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from serbench.deep.batching import length_batches, sorted_batches
from serbench.deep.optim import make_optimizer
from serbench.deep.train import EpochHook, StageResult, autocast, run_epochs

Inputs = Any


def evaluate_loss(model: nn.Module, inputs: Inputs, labels: torch.Tensor, rows: np.ndarray, *, batch: int,
                  device: torch.device, amp: bool = False) -> float:
    """Mean of ``model.loss`` over ``rows`` (eval mode, whole utterances), weighted by batch size."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for pos in sorted_batches(inputs.sizes(rows, train=False), batch):
            idx = rows[pos]
            with autocast(device, amp):
                out = inputs.forward(model, inputs.make(idx), device)
            total += float(model.loss(out, labels[idx].to(device))) * len(idx)
    return total / max(1, len(rows))


def train_system(model: nn.Module, inputs: Inputs, labels: torch.Tensor, train_rows: np.ndarray,
                 val_rows: np.ndarray, settings: Any, *, device: torch.device, seed: int,
                 name: str = "train", checkpoint: Path | None = None, amp: bool = False,
                 on_epoch: EpochHook | None = None) -> StageResult:
    """Train ``model`` (on ``device``) with ``model.loss`` on the rows ``train_rows`` of ``inputs``.

    ``labels (R,)`` class indices per row. One epoch = ``train_rows`` in
    :func:`length_batches` order. With ``val_rows`` the best-validation-loss weights are
    kept and training stops after ``patience`` epochs without improvement. The
    ``checkpoint`` is written after every epoch (``done=True`` after the last); if it exists
    on entry training resumes from it (or, when done, only loads the final weights).
    ``on_epoch`` gets ``{"stage": name, "epoch", "loss", "val_loss", "seconds", "samples",
    "done"}`` after each epoch's checkpoint, so a hook that raises simulates a kill.
    """
    s = settings
    opt = make_optimizer(s.optimizer, [p for p in model.parameters() if p.requires_grad], lr=s.lr,
                         weight_decay=s.weight_decay, momentum=s.momentum)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    val_rows = np.asarray(val_rows, dtype=np.int64)

    def epoch_batches(gen: torch.Generator):
        # The batch order is drawn first, then each batch's random crops, as batches are built.
        for pos in length_batches(inputs.sizes(train_rows, train=True), s.batch, gen, s.bucket):
            idx = train_rows[pos]
            yield idx, inputs.make(idx, gen)

    def batch_loss(item) -> tuple[torch.Tensor, int]:
        idx, batch = item
        return model.loss(inputs.forward(model, batch, device), labels[idx].to(device, non_blocking=True)), len(idx)

    val_loss = None
    if len(val_rows):
        val_loss = (lambda: evaluate_loss(model, inputs, labels, val_rows, batch=2 * s.batch, device=device,
                                          amp=amp and device.type == "cuda"))
    return run_epochs(model, opt, name=name, epochs=s.epochs, patience=s.patience, seed=seed, device=device,
                      epoch_batches=epoch_batches, batch_loss=batch_loss, val_loss=val_loss, checkpoint=checkpoint,
                      amp=amp, on_epoch=on_epoch, grad_clip=s.grad_clip, lr_hint="lr")


def predict_system(model: nn.Module, inputs: Inputs, rows: np.ndarray, *, batch: int, device: torch.device,
                   amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs (n, C) float64, predicted (n,) int64)`` for ``rows`` (eval mode, whole utterances), in row order.

    ``probs`` = softmax of the utterance logits; ``predicted`` = the model's own decision
    (``model.predict`` where it has one: CRNN-CTC's decoding), else the argmax of ``probs``.
    """
    model.eval()
    rows = np.asarray(rows, dtype=np.int64)
    probs: list[torch.Tensor | None] = [None] * len(rows)
    preds: list[int] = [0] * len(rows)
    with torch.no_grad():
        for pos in sorted_batches(inputs.sizes(rows, train=False), batch):
            with autocast(device, amp):
                out = inputs.forward(model, inputs.make(rows[pos]), device)
            p = torch.softmax(out.logits.double(), dim=1).cpu()
            decided = model.predict(out).cpu() if hasattr(model, "predict") else p.argmax(dim=1)
            for k, i in enumerate(pos):
                probs[int(i)], preds[int(i)] = p[k], int(decided[k])
    if not rows.size:
        return torch.empty(0, 0, dtype=torch.float64), torch.empty(0, dtype=torch.long)
    return torch.stack(probs), torch.tensor(preds, dtype=torch.long)   # type: ignore[arg-type]


__all__ = ["train_system", "evaluate_loss", "predict_system"]
