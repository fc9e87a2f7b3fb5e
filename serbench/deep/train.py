"""One training stage (CNN or SRU) with per-epoch checkpoints, resume and early stopping.

A stage trains ``model`` on in-memory ``(X, y)``; batches are drawn with a seeded
``torch.Generator`` and every random state (global torch RNG for dropout, the batch
generator, CUDA RNG) is saved in the checkpoint, so an interrupted stage continues
exactly as if it had not stopped (bit-identical on CPU).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from serbench.errors import SerbenchError
from serbench.io import atomic_write

EpochHook = Callable[[dict], None]


class CheckpointError(SerbenchError):
    """A checkpoint file exists but cannot be used to resume."""


@dataclass
class StageConfig:
    """What a stage needs besides data: optimizer settings, epochs, batching, stopping."""

    name: str                      # 'cnn' or 'sru' (goes into hook events and logs)
    epochs: int
    batch: int
    optimizer: Callable[[list], torch.optim.Optimizer]
    patience: int = 20
    seed: int = 0
    schedule: str = "constant"     # learning-rate factor per optimizer step: see lr_factor
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0       # > 0: mixup of training batches, lambda ~ Beta(alpha, alpha)
    # Applied to each normalized training batch (never to validation or test inputs).
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    # Applied to each raw training batch before ``transform`` (a random crop of wider inputs).
    crop: Callable[[torch.Tensor], torch.Tensor] | None = None


SCHEDULES = ("constant", "cosine", "onecycle")


def lr_factor(kind: str, step: int, total: int) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based) of ``total``.

    'constant': 1. 'cosine': linear warm-up over the first 5 % of the steps, then half a
    cosine to 0. 'onecycle': linear warm-up from 1/25 to 1 over the first 30 %, then half a
    cosine down to 1/2500 (the usual one-cycle shape).
    """
    if kind == "constant" or total <= 0:
        return 1.0
    t = min(max(step, 0), total) / total
    if kind == "cosine":
        warm = 0.05
        if t < warm:
            return (step + 1) / (warm * total + 1)
        return 0.5 * (1.0 + math.cos(math.pi * (t - warm) / (1 - warm)))
    if kind == "onecycle":
        warm, start, end = 0.3, 1 / 25, 1 / 2500
        if t < warm:
            return start + (1 - start) * t / warm
        return end + (1 - end) * 0.5 * (1.0 + math.cos(math.pi * (t - warm) / (1 - warm)))
    raise ValueError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")


def unweighted_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (UA)."""
    recalls = [float((y_pred[y_true == c] == c).float().mean()) for c in torch.unique(y_true)]
    return float(sum(recalls) / len(recalls)) if recalls else float("nan")


@dataclass
class StageResult:
    epochs_run: int
    train_s: float                 # seconds spent in this process on training epochs
    samples: int                   # training samples processed in this process
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0          # epochs already done when this process started

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_s if self.train_s > 0 else float("nan")


def autocast(device: torch.device, amp: bool):
    """float16 autocast on CUDA when ``amp``; a no-op elsewhere (CPU runs in float32)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _batches(n: int, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    return list(torch.randperm(n, generator=gen).split(batch))


def _rng_state(gen: torch.Generator, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "gen": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["gen"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _clone_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


#: Seconds of training between two checkpoints of a stage; always one after its last epoch.
#: A checkpoint holds the model, the optimizer and the best weights so far, written with fsync:
#: about 0.7 GB for the paper's AlexNet. Written after every epoch, the paper profile's GPU folds
#: (CASIA N = 5, four at once on one H200) took 313-342 s, 80-92 s of them training; with this
#: interval 123-134 s, with the same predictions. A killed fold loses about this much training at most.
CHECKPOINT_EVERY_S = 60.0
#: Overrides :data:`CHECKPOINT_EVERY_S` (0: after every epoch).
CHECKPOINT_ENV = "SERBENCH_CHECKPOINT_EVERY_S"


def checkpoint_every_s() -> float:
    """Seconds between a stage's checkpoints: ``$SERBENCH_CHECKPOINT_EVERY_S``, else :data:`CHECKPOINT_EVERY_S`."""
    raw = os.environ.get(CHECKPOINT_ENV, "").strip()
    if not raw:
        return CHECKPOINT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise SerbenchError(f"${CHECKPOINT_ENV}={raw!r}: give the seconds of training between two checkpoints "
                            "of a fold, 0 or more (0: after every epoch)")
    return value


def save_checkpoint(path: Path, obj: dict) -> None:
    """Atomically write ``obj`` (tensors, numbers, lists, dicts only) with ``torch.save``."""
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to"
                              " restart this fold from scratch") from None


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch: int, device: torch.device,
             transform: Callable[[torch.Tensor], torch.Tensor], amp: bool) -> dict:
    """``{"loss": mean cross-entropy, "ua": unweighted accuracy}`` of ``model`` on ``(X, y)`` in eval mode."""
    model.eval()
    total, preds = 0.0, []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            xb = transform(X[i:i + batch].to(device, non_blocking=True))
            with autocast(device, amp):
                out = model(xb).float()
            total += float(nn.functional.cross_entropy(out, y[i:i + batch].to(device), reduction="sum"))
            preds.append(out.argmax(dim=-1).cpu())
    ua = unweighted_accuracy(y.cpu(), torch.cat(preds)) if preds else float("nan")
    return {"loss": total / max(1, len(X)), "ua": ua}


def epoch_logger(log: Callable[[str], None], hook: EpochHook | None, unit: str = "samples") -> EpochHook:
    """An ``on_epoch`` that logs one line per epoch (loss, validation loss, time, ``unit``/s), then calls ``hook``."""
    def on_epoch(ev: dict) -> None:
        vl = f", val loss {ev['val_loss']:.4f}" if ev.get("val_loss") is not None else ""
        if ev.get("val_ua") is not None:
            vl += f", val UA {100 * ev['val_ua']:.1f}"
        log(f"  {ev['stage']} epoch {ev['epoch']}: loss {ev['loss']:.4f}{vl}, {ev['seconds']:.1f} s"
            f" ({ev['samples'] / max(ev['seconds'], 1e-9):.1f} {unit}/s)")
        if hook is not None:
            hook(ev)
    return on_epoch


#: What the ``(truth, predicted)`` pairs a ``batch_loss`` returns after its loss are recorded as.
SCORED = ("ua",)


def run_epochs(model: nn.Module, opt: torch.optim.Optimizer, *, name: str, epochs: int, patience: int, seed: int,
               device: torch.device, epoch_batches: Callable[[torch.Generator], Iterable[object]],
               batch_loss: Callable[[object], tuple[torch.Tensor, int]],
               val_loss: Callable[[], float | dict] | None = None, checkpoint: Path | None = None,
               amp: bool = False, on_epoch: EpochHook | None = None, grad_clip: float = 0.0,
               extra: dict | None = None, lr_hint: str = "lr",
               scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> StageResult:
    """The epoch loop shared by every trainer: checkpoints, exact resume, early stopping.

    ``epoch_batches(gen)`` yields one epoch's batches (all randomness from ``gen``, whose state
    is checkpointed); ``batch_loss(batch)`` returns ``(loss, n_samples)`` in train mode, run under
    float16 autocast on CUDA when ``amp``, or ``(loss, n_samples, (labels, predicted))`` to
    record the epoch's training UA.
    With ``val_loss`` (a float, or a dict with "loss" and "ua", both recorded in the history) the
    best-validation-loss weights are kept and training stops after ``patience`` epochs without
    improvement. ``scheduler`` steps after every optimizer step; its state is checkpointed.
    ``checkpoint`` is written after an epoch once :func:`checkpoint_every_s` seconds have passed
    since the stage started or last wrote it, and always after the last (``done=True``, with the
    final weights); if it exists on entry training resumes from it, or, when done, only loads the
    final weights. ``on_epoch`` gets ``{"stage": name, "epoch", "loss", "val_loss", "seconds",
    "samples", "done"}`` after the epoch's checkpoint (if any), so a hook that raises simulates a kill.
    ``extra`` (tensors/numbers) is stored in the checkpoint.
    """
    params = [p for group in opt.param_groups for p in group["params"]]
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    start, history = 0, []
    best_loss, best_state, bad = float("inf"), None, 0
    if checkpoint is not None and checkpoint.is_file():
        ck = load_checkpoint(checkpoint)
        model.load_state_dict(ck["model"])
        if ck.get("done"):
            model.to(device)
            return StageResult(epochs_run=int(ck["epoch"]), train_s=0.0, samples=0,
                               history=list(ck.get("history", [])), resumed_from=int(ck["epoch"]))
        opt.load_state_dict(ck["optimizer"])
        if ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        if scheduler is not None and ck.get("scheduler"):
            scheduler.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"], gen, device)
        start, history = int(ck["epoch"]), list(ck.get("history", []))
        best_loss, bad = float(ck.get("best_loss", float("inf"))), int(ck.get("bad_epochs", 0))
        best_state = ck.get("best_state")

    train_s, samples = 0.0, 0
    every_s, last_write = checkpoint_every_s(), time.perf_counter()
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, seen, scored = 0.0, 0, {}
        for batch in epoch_batches(gen):
            opt.zero_grad(set_to_none=True)
            with autocast(device, use_amp):
                loss, n, *pairs = batch_loss(batch)
            for key, (truth, guess) in zip(SCORED, pairs):
                scored.setdefault(key, ([], []))
                scored[key][0].append(truth.detach().cpu())
                scored[key][1].append(guess.detach().cpu())
            if not torch.isfinite(loss):
                raise SerbenchError(f"{name} stage: the loss became {float(loss)} at epoch {epoch};"
                                    f" lower the learning rate (--set {lr_hint}=...)")
            scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(opt)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            total += float(loss.detach()) * n
            seen += n
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_s = time.perf_counter() - t0
        train_s += epoch_s
        samples += seen
        rec = {"epoch": epoch, "loss": total / max(1, seen), "val_loss": None, "seconds": epoch_s, "samples": seen,
               "lr": float(opt.param_groups[0]["lr"])}
        for key, (truth, guess) in scored.items():
            rec[key] = unweighted_accuracy(torch.cat(truth), torch.cat(guess))
        stopped = False
        if val_loss is not None:
            got = val_loss()
            if isinstance(got, dict):
                rec["val_loss"], rec["val_ua"] = float(got["loss"]), float(got["ua"])
            else:
                rec["val_loss"] = float(got)
            if rec["val_loss"] < best_loss - 1e-6:
                best_loss, best_state, bad = rec["val_loss"], _clone_state(model), 0
            else:
                bad += 1
                stopped = bad >= patience
        history.append(rec)
        done = stopped or epoch == epochs
        if done and best_state is not None:
            # Early stopping keeps the weights of the best validation epoch.
            model.load_state_dict(best_state)
            best_state = None      # the final weights are the model itself; no need to store them twice
        if checkpoint is not None and (done or time.perf_counter() - last_write >= every_s):
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "epoch": epoch, "done": done, "rng": _rng_state(gen, device), "history": history,
                "best_loss": best_loss, "bad_epochs": bad, "best_state": best_state, "extra": extra or {}})
            last_write = time.perf_counter()
        if on_epoch is not None:
            on_epoch({"stage": name, **rec, "done": done})
        if done:
            break
    last = history[-1]["epoch"] if history else start
    return StageResult(epochs_run=last, train_s=train_s, samples=samples, history=history, resumed_from=start)


def train_stage(model: nn.Module, X: torch.Tensor, y: torch.Tensor, cfg: StageConfig, *,
                device: torch.device, transform: Callable[[torch.Tensor], torch.Tensor],
                checkpoint: Path | None = None, amp: bool = False,
                val: tuple[torch.Tensor, torch.Tensor] | None = None,
                on_epoch: EpochHook | None = None, extra: dict | None = None) -> StageResult:
    """Train ``model`` (already on ``device``) on ``X`` ``(M, ...)`` / ``y`` ``(M,)`` with cross-entropy.

    ``transform`` maps a raw batch to the model input (normalization); batches of
    ``cfg.batch`` rows in a seeded random order. ``val = (X_val, y_val)`` turns on early
    stopping (``cfg.patience``; validation loss and UA in the history). ``cfg.crop``, ``cfg.augment``,
    ``cfg.mixup_alpha`` and ``cfg.label_smoothing`` change the training batches and loss only;
    ``cfg.schedule`` sets the per-step learning rate. Checkpoints, resume and ``on_epoch``: see :func:`run_epochs`.
    """
    opt = cfg.optimizer([p for p in model.parameters() if p.requires_grad])
    steps = cfg.epochs * -(-len(X) // cfg.batch)
    scheduler = None
    if cfg.schedule != "constant":
        lr_factor(cfg.schedule, 0, 1)          # an unknown schedule fails here, before any training
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(cfg.schedule, step, steps))

    def batch_loss(idx: torch.Tensor):
        xb = X[idx].to(device, non_blocking=True)
        if cfg.crop is not None:
            xb = cfg.crop(xb)
        xb = transform(xb)
        yb = y[idx].to(device, non_blocking=True)
        if cfg.augment is not None:
            xb = cfg.augment(xb)
        lam, perm = 1.0, None
        if cfg.mixup_alpha > 0 and len(idx) > 1:
            # Global torch RNG: its state is checkpointed, so a resumed stage draws the same mixes.
            lam = float(torch.distributions.Beta(cfg.mixup_alpha, cfg.mixup_alpha).sample())
            perm = torch.randperm(len(idx)).to(device)
            xb = lam * xb + (1 - lam) * xb[perm]
        out = model(xb).float()
        loss = _mixed_cross_entropy(out, yb, lam, perm, cfg.label_smoothing)
        # Training UA against each segment's own label (under mixup: the unpermuted one).
        return loss, len(idx), (yb, out.argmax(dim=-1))

    val_loss = None
    if val is not None:
        val_loss = (lambda: evaluate(model, val[0], val[1], batch=cfg.batch * 4, device=device,
                                     transform=transform, amp=amp and device.type == "cuda"))
    return run_epochs(model, opt, name=cfg.name, epochs=cfg.epochs, patience=cfg.patience, seed=cfg.seed,
                      device=device, epoch_batches=lambda gen: _batches(len(X), cfg.batch, gen),
                      batch_loss=batch_loss, val_loss=val_loss, checkpoint=checkpoint, amp=amp,
                      on_epoch=on_epoch, extra=extra, lr_hint=f"{cfg.name}_lr", scheduler=scheduler)


def _mixed_cross_entropy(out: torch.Tensor, target: torch.Tensor, lam: float, perm: torch.Tensor | None,
                         label_smoothing: float) -> torch.Tensor:
    """Cross-entropy against ``target``, or under mixup ``lam`` of it and ``1 - lam`` against ``target[perm]``."""
    loss = nn.functional.cross_entropy(out, target, label_smoothing=label_smoothing)
    if perm is None:
        return loss
    return lam * loss + (1 - lam) * nn.functional.cross_entropy(out, target[perm], label_smoothing=label_smoothing)


def stuck_at_chance(history: Sequence[dict], n_classes: int, tolerance: float = 0.01) -> str:
    """A message when a stage's training loss never fell below chance, else ''.

    Chance is ln(n_classes), the cross-entropy of a uniform prediction. A network whose loss
    sits there for its last half of epochs has collapsed to a constant output (e.g. dead
    ReLUs after a too-large first step): its fold's accuracy is chance, not a property of
    the model, and the run record says so.
    """
    import math

    losses = [h["loss"] for h in history if h.get("loss") is not None]
    if len(losses) < 2:
        return ""
    chance = math.log(n_classes)
    tail = losses[len(losses) // 2:]
    if min(tail) >= chance * (1 - tolerance):
        return (f"training loss stayed at chance (ln {n_classes} = {chance:.3f}) for epochs "
                f"{len(losses) - len(tail) + 1}-{len(losses)} (last {losses[-1]:.3f})")
    return ""


def predict_logits(model: nn.Module, X: torch.Tensor, *, batch: int, device: torch.device,
                   transform: Callable[[torch.Tensor], torch.Tensor], amp: bool = False) -> torch.Tensor:
    """``(M, C)`` float32 logits on CPU for ``X`` ``(M, ...)`` in eval mode."""
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            with autocast(device, amp):
                outs.append(model(transform(X[i:i + batch].to(device))).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def extract_fc7(cnn: nn.Module, X: torch.Tensor, *, batch: int, device: torch.device,
                transform: Callable[[torch.Tensor], torch.Tensor], amp: bool = False) -> torch.Tensor:
    """``(M, fc_dim)`` float32 FC7 features of ``X`` ``(M, ...)`` in eval mode (no dropout), kept on ``device``."""
    cnn.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            with autocast(device, amp):
                outs.append(cnn.fc7(transform(X[i:i + batch].to(device))).float())
    return torch.cat(outs)
