"""How CNN+SRU and its ablations train and score, stage by stage (models and epoch loops: :mod:`serbench.deep`).

Stage 1 (:func:`fit_cnn`): a segment CNN on the training segments, each carrying its utterance's label.
Stage 2 (:func:`fit_head`, :func:`sru_on_fc7`): an SRU classifier on ``(U, N, D)`` sequences, the FC7
features of the frozen CNN (or, for the ``sru`` ablation, low-level statistics). Every stage draws its
seed from ``(run seed, fold, stage name)`` and checkpoints under the fold's checkpoint folder.

The functions record timings and training curves into ``info`` (a fold model's ``info`` dict:
``{"timings": {...}, "curves": {...}}``). Torch and numpy load inside them: the registry imports this
module to show the CLI's help.
"""
from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from serbench.systems import deep_runtime as R
from serbench.systems.base import checkpoint
from serbench.systems.builtin.cnn_sru_settings import CascadeSettings, cnn_epochs

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset
    from serbench.experiments.harness import FoldContext


def resolve(path: str):
    """``path`` with ``~`` expanded, absolute."""
    from pathlib import Path

    return Path(path).expanduser().resolve()


def batchnorm(s: CascadeSettings) -> bool:
    """Whether the CNN has batch normalization: ImageNet's AlexNet has none, so it is off with --pretrained."""
    return bool(s.cnn_batchnorm and not getattr(s, "pretrained", None))


def cnn_optimizer(params, s: CascadeSettings, fused: bool | None = None):
    """Stage 1's optimizer: the paper's SGD (with ``cnn_momentum``), Adam, or AdamW (decoupled weight decay);
    ``fused``: see :func:`serbench.deep.optim.make_optimizer`."""
    from serbench.deep.optim import make_optimizer

    return make_optimizer(s.cnn_optimizer, params, lr=s.cnn_lr, weight_decay=s.cnn_weight_decay,
                          momentum=s.cnn_momentum, fused=fused)


def augmenter(s: CascadeSettings):
    """The CNN's training batch transform: a random frequency shift (cnn_freq_shift), then the SpecAugment
    masks; None when neither is set."""
    from functools import partial

    from serbench.deep.specaugment import mask_augmenter, random_freq_shift

    most = int(round(s.cnn_freq_shift * s.image_size))
    steps = [step for step in (partial(random_freq_shift, most=most) if most else None,
                               mask_augmenter(s.spec_freq_masks, s.spec_freq_width, s.spec_time_masks,
                                              s.spec_time_width)) if step is not None]
    if not steps:
        return None

    def transform(x):
        for step in steps:
            x = step(x)
        return x
    return transform


def cnn_input(norm, s: CascadeSettings, offset: int | None = None):
    """Raw segment images -> CNN input: the time crop at ``offset`` (default: the segments themselves) of
    context images (cnn_time_shift), then the fold's normalization."""
    if not R.image_context(s):
        return norm
    from serbench.deep.specaugment import time_crop

    return lambda x: norm(time_crop(x, s.image_size, offset))


def test_offsets(s: CascadeSettings) -> list[int | None]:
    """The crop offsets whose probabilities a test utterance averages (cnn_test_crops)."""
    from serbench.deep.specaugment import crop_offsets

    context = R.image_context(s)
    return crop_offsets(context, s.cnn_test_crops) if context else [None]


test_offsets.__test__ = False     # not a pytest test, whatever its name


def softmax(head, x, s: CascadeSettings, rt: "R.Runtime", transform=None):
    """``(U, n_classes)`` probabilities of ``head`` on ``x``."""
    import torch

    from serbench.deep.train import predict_logits

    logits = predict_logits(head, x, batch=s.sru_batch * 4, device=rt.device,
                            transform=transform or (lambda v: v), amp=rt.amp)
    return torch.softmax(logits, dim=-1)


def stage1(data: Dataset, s: CascadeSettings, ctx: FoldContext, stage: str, *, batch: int) -> tuple[Any, Any]:
    """A fresh segment CNN (seeded; ImageNet weights with ``--pretrained``) and its training config."""
    import torch

    from serbench.deep.alexnet import load_pretrained
    from serbench.deep.models import build_cnn
    from serbench.deep.specaugment import random_time_crop
    from serbench.deep.train import StageConfig
    from serbench.experiments.protocol import stage_seed

    seed = stage_seed(ctx.seed, ctx.fold, stage)
    torch.manual_seed(seed)
    cnn = build_cnn(data.n_classes, width=s.cnn_width, dropout=s.dropout, batchnorm=batchnorm(s))
    pretrained = getattr(s, "pretrained", None)
    if pretrained:
        load_pretrained(cnn, resolve(pretrained), num_classes=data.n_classes)
    cfg = StageConfig(stage, cnn_epochs(s), batch, seed=seed, patience=s.patience,
                      optimizer=lambda p: cnn_optimizer(p, s), schedule=s.cnn_schedule,
                      label_smoothing=s.cnn_label_smoothing, mixup_alpha=s.cnn_mixup,
                      augment=augmenter(s),
                      crop=(lambda x: random_time_crop(x, s.image_size)) if R.image_context(s) else None)
    return cnn, cfg


def record_cnn(info: dict, res, stage: str, n_classes: int, ctx: FoldContext, *, segments_per_sample: int) -> None:
    """A trained CNN stage's timings, collapse warning and curve in ``info`` (summed over the K CNNs of a
    cross-fitted fold)."""
    from serbench.deep.train import stuck_at_chance

    timing = info["timings"]
    collapsed = stuck_at_chance(res.history, n_classes)
    if collapsed:
        ctx.say(f"WARNING: {collapsed}; this fold's CNN predicts (nearly) one class. Lower cnn_lr "
                "(--set cnn_lr=...) and re-run with --no-resume")
    timing["cnn_collapsed"] = "; ".join(filter(None, [timing.get("cnn_collapsed"), collapsed])) or None
    timing["cnn_final_loss"] = res.history[-1]["loss"] if res.history else None
    timing["cnn_resumed_from"] = res.resumed_from
    for key, value in (("cnn_epochs", res.epochs_run), ("cnn_train_s", res.train_s),
                       ("cnn_segments", res.samples * segments_per_sample)):
        timing[key] = (timing.get(key) or 0) + value
    timing["cnn_segments_per_s"] = (timing["cnn_segments"] / timing["cnn_train_s"]
                                    if timing["cnn_segments"] and timing["cnn_train_s"] else None)
    info["curves"][stage] = R.curve(res.history)


def fit_cnn(info: dict, data: Dataset, utts: np.ndarray, val: np.ndarray, s: CascadeSettings, ctx: FoldContext,
            rt: "R.Runtime", stage: str) -> tuple[Any, Any]:
    """Stage 1 on the segments of ``utts`` (early stopping on ``val``): ``(cnn, normalizer)``."""
    import torch

    from serbench.deep import data as D
    from serbench.deep.train import epoch_logger, train_stage

    images = R.segment_images(data, s, rt)
    n = s.segments
    rows_fit, rows_val = R.segment_rows(utts, n), R.segment_rows(val, n)
    norm = D.Normalizer.fit(images[rows_fit.to(images.device)])       # training segments only
    cnn, cfg = stage1(data, s, ctx, stage, batch=s.cnn_batch)
    cnn.to(rt.device)
    y = torch.as_tensor(data.y, dtype=torch.long)
    ys_fit = y[utts].repeat_interleave(n)                          # each segment: its utterance's label
    val_data = (images[rows_val.to(images.device)], y[val].repeat_interleave(n)) if len(val) else None
    res = train_stage(cnn, images[rows_fit.to(images.device)], ys_fit, cfg, device=rt.device,
                      transform=cnn_input(norm, s), checkpoint=checkpoint(ctx, stage), amp=rt.amp, val=val_data,
                      on_epoch=epoch_logger(ctx.say, R.hook(ctx), "segments"))
    record_cnn(info, res, stage, data.n_classes, ctx, segments_per_sample=1)
    return cnn, norm


def fit_head(info: dict, x_fit, y_fit, x_val, y_val, input_size: int, n_classes: int, s: CascadeSettings,
             ctx: FoldContext, rt: "R.Runtime", stage: str, transform, skip=None) -> Any:
    """Stage 2: an SRU classifier on ``(U, N, D)`` sequences (``skip``: see
    :class:`serbench.deep.models.SRUClassifier`)."""
    import torch

    from serbench.deep.models import SRUClassifier
    from serbench.deep.optim import make_optimizer
    from serbench.deep.train import StageConfig, epoch_logger, train_stage
    from serbench.experiments.protocol import stage_seed

    seed = stage_seed(ctx.seed, ctx.fold, stage)
    torch.manual_seed(seed)
    head = SRUClassifier(input_size, n_classes, hidden=s.sru_hidden, init_std=s.sru_init_std,
                         init_bias=s.sru_init_bias, input_dropout=s.sru_input_dropout, skip=skip).to(rt.device)
    cfg = StageConfig(stage, s.sru_epochs, s.sru_batch, seed=seed, patience=s.patience,
                      optimizer=lambda p: make_optimizer("adam", p, lr=s.sru_lr, weight_decay=s.sru_weight_decay))
    res = train_stage(head, x_fit, y_fit, cfg, device=rt.device, transform=transform,
                      checkpoint=checkpoint(ctx, stage), amp=rt.amp,
                      val=(x_val, y_val) if x_val is not None else None,
                      on_epoch=epoch_logger(ctx.say, R.hook(ctx), "utterances"))
    timing = info["timings"]
    timing["sru_epochs"] = (timing.get("sru_epochs") or 0) + res.epochs_run
    timing["sru_train_s"] = (timing.get("sru_train_s") or 0) + res.train_s
    timing["sru_resumed_from"] = res.resumed_from
    info["curves"][stage] = R.curve(res.history)
    return head


def fc7(info: dict, cnn, norm, data: Dataset, utts: np.ndarray, s: CascadeSettings, rt: "R.Runtime",
        offset: int | None = None):
    """``(U, N, fc_dim)`` FC7 features of ``utts`` (CNN frozen, eval mode; ``offset``: the time crop of
    context images, default the segments themselves)."""
    from serbench.deep.train import extract_fc7

    images = R.segment_images(data, s, rt)
    for p in cnn.parameters():
        p.requires_grad_(False)
    t0 = time.perf_counter()
    x = images[R.segment_rows(utts, s.segments).to(images.device)]
    feats = extract_fc7(cnn, x, batch=s.cnn_batch * 4, device=rt.device, transform=cnn_input(norm, s, offset),
                        amp=rt.amp)
    timing = info["timings"]
    timing["fc7_s"] = (timing.get("fc7_s") or 0) + time.perf_counter() - t0
    return feats.reshape(-1, s.segments, feats.shape[-1])


def sru_on_fc7(info: dict, cnn, norm, data: Dataset, utts: np.ndarray, val: np.ndarray, s: CascadeSettings,
               ctx: FoldContext, rt: "R.Runtime", stage: str) -> Any:
    """Stage 2 of the cascade: an SRU on the FC7 of ``utts`` under the frozen ``cnn`` (with sru_residual, a
    correction to a frozen copy of the CNN's FC8)."""
    import torch

    y = torch.as_tensor(data.y, dtype=torch.long)
    x_fit = fc7(info, cnn, norm, data, utts, s, rt)
    x_val = fc7(info, cnn, norm, data, val, s, rt) if len(val) else None
    skip = copy.deepcopy(cnn.classifier[6]) if s.sru_residual else None     # the CNN's FC8
    return fit_head(info, x_fit, y[utts], x_val, y[val], x_fit.shape[-1], data.n_classes, s, ctx, rt, stage,
                    transform=lambda x: x, skip=skip)
