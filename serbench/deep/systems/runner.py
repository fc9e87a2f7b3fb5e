"""Train and evaluate the seed-paper systems under a protocol, into the results store.

``serbench deep --model crnn | crnn-ctc | crnn-mk | dcnn-blstm-att`` (and
:func:`serbench.deep.run.run_deep` with those models) ends up in :func:`run_system`.
The run is laid out, recorded and resumed exactly as CNN+SRU's: ``<runs>/<corpus>/<system>/
<run_id>/`` with ``predictions.parquet`` and ``run.json`` (config = every setting used).

Per fold, from the fold's TRAINING utterances only (:func:`plan_fold`):

1. ``val_fraction`` of them (stratified by class) are held out for early stopping; the
   rest are the *fit* utterances;
2. ``aug_copies`` augmented copies of each fit utterance are added
   (:func:`~serbench.deep.systems.augment.augment_training_set`: time shift, time and
   frequency masks on the log-mel) and, with ``balance``, the fit rows are oversampled to
   equal class counts (:func:`~serbench.deep.systems.augment.balanced_indices`). Neither
   ever touches a validation or test utterance;
3. the input normalization is fitted: mean and std per (channel, mel band) over every frame
   of the fit utterances (the originals, not the copies) (:func:`fit_band_stats`).

Inputs are the full-utterance melseg arrays ``(3, 60, T_i)`` (10 ms frames), of varying
length. Training batches are drawn in a seeded random order, then sorted by length within
pools of ``bucket`` batches so that a batch holds utterances of similar length (less
padding, which costs CPU time but never changes a result: the models mask it). A training
utterance longer than ``max_frames`` is randomly cropped to ``max_frames`` consecutive
frames each time it is drawn (CRNN systems; DCNN-BLSTMwA: ``max_segments`` consecutive
windows); validation and test utterances are always whole.

Checkpoints: after every epoch ``<run>.partial/checkpoints/<fold>/model.pt`` holds the
weights, optimizer, early-stopping state and every random state (global torch RNG for
dropout, the batch-order/crop generator, CUDA RNG); a killed run re-run with the same
command skips finished folds and continues the interrupted one from its last epoch, with
predictions identical to an uninterrupted run on CPU. Seeds per fold and stage come from
:func:`~serbench.deep.run.stage_seed`, so a fold's result does not depend on which folds
ran before it.

DCNN-BLSTMwA segments every utterance into windows of ``seg_frames`` frames with hop
``seg_hop`` (:func:`segment_windows`: a variable number per utterance), resizes each to
``image_size`` square (bilinear) and encodes it: with ``--pretrained`` by the FC7 layer of
the ImageNet AlexNet, frozen as in Zhang et al. (its features are computed once per fold,
augmented copies included, and the BLSTM, attention and DNN train on them); without
weights a frozen random CNN would give meaningless features, so the small
:class:`~serbench.deep.systems.dcnn_blstm_att.ConvSegmentEncoder` is trained jointly
(``train_encoder=auto``; recorded in run.json).
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from serbench.deep import data as D
from serbench.deep.alexnet import MIN_INPUT_SIZE, AlexNet, load_pretrained
from serbench.deep.run import (
    FROM_SCRATCH, SPKNORM_SUFFIX, DeepRunError, RunResult, finish_run, inputs_fingerprint, json_records, load_inputs,
    resolve_device, run_folds, seed_all, stage_seed, val_split,
)
from serbench.deep.systems.crnn import CRNN, Summary
from serbench.deep.systems.crnn_ctc import CRNNCTC
from serbench.deep.systems.crnn_mk import CRNNMK
from serbench.deep.systems.dcnn_blstm_att import ConvSegmentEncoder, DCNNBLSTMAtt, FeatureExtractor
from serbench.deep.systems.inputs import (
    FeatureInputs, FoldPlan, Inputs, SegmentInputs, SpectrogramInputs, float_tensor, length_batches, plan_fold,
    sorted_batches,
)
from serbench.deep.systems.settings import (
    CRNNCTCSettings, CRNNMKSettings, CRNNSettings, DCNNSettings, SystemSettings, get_settings,
)
from serbench.deep.train import EpochHook, StageResult, autocast, epoch_logger, run_epochs
from serbench.experiments.protocol import resolve_protocol

SYSTEMS = ("crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att")
Log = Callable[[str], None]


# ---------------------------------------------------------------- names

def system_name_for(model: str, settings: SystemSettings) -> str:
    """The results-store name: the model name, plus the ablation suffixes of CRNN-MK.

    CRNN-MK with any of its four ablation flags off is a different system (e.g.
    ``crnn-mk-nomk-mean``, as :attr:`CRNNMK.variant`), so that the reports, which take the
    latest run per system name, keep the full model and each ablation apart.
    """
    if not isinstance(settings, CRNNMKSettings):
        return model
    parts = [model]
    if not settings.mk_multi_kernel:
        parts.append("nomk")
    summary = Summary.parse(settings.summary)
    if summary is not Summary.ATTENTION:
        parts.append(summary.value)
    if not settings.mk_enhanced_features:
        parts.append("noenh")
    if not settings.mk_effective_training:
        parts.append("nols")
    return "-".join(parts)


# ---------------------------------------------------------------- models

def system_details(model: str, settings: SystemSettings, pretrained: str | None = None) -> dict:
    """What the settings of ``model`` mean, for run.json (JSON-safe; no model is built)."""
    s = settings
    if isinstance(s, CRNNCTCSettings):
        return {
            "loss": "CTC (blank + one token per emotion)",
            "frame_split": (f"an output frame is emotional when its energy (the max over the input frames it "
                            f"covers of 10 log10 of the summed mel power of the RAW static log-mel) is within "
                            f"{s.drop_db:g} dB of the utterance's loudest frame; CTC target = the utterance's "
                            f"label once per run of emotional frames, blank elsewhere"),
            "decode": {"posterior": "posterior decoding: argmax of the non-blank posteriors summed over frames",
                       "best_path": "best path, majority vote over emitted tokens (posterior decoding on ties "
                                    "and empty paths)"}[s.decode],
            "scores": "softmax(logits) = each emotion's share of the non-blank posterior mass summed over frames",
        }
    if isinstance(s, CRNNMKSettings):
        return {"variant": system_name_for(model, s), "multi_kernel": s.mk_multi_kernel,
                "kernel_widths": list(s.mk_kernel_widths) if s.mk_multi_kernel else None,
                "summary": Summary.parse(s.summary).value, "enhanced_features": s.mk_enhanced_features,
                "effective_training": s.mk_effective_training,
                "label_smoothing": s.mk_label_smoothing if s.mk_effective_training else 0.0,
                "input": ("static, delta, delta-delta log-mel, each band z-scored per utterance"
                          if s.mk_enhanced_features else "static log-mel channel only")}
    if isinstance(s, DCNNSettings):
        if pretrained:
            train_enc = s.train_encoder == "true"
            encoder = (f"AlexNet FC7 (4096-d) with ImageNet weights from {pretrained}, "
                       + ("fine-tuned jointly" if train_enc else "frozen (features computed once per fold)"))
        else:
            train_enc = True
            encoder = (f"ConvSegmentEncoder (conv {','.join(map(str, s.encoder_channels))} -> {s.encoder_dim}-d), "
                       f"trained jointly from scratch (no --pretrained weights)")
        return {"encoder": encoder, "train_encoder": train_enc,
                "segments": (f"windows of {s.seg_frames} frames, hop {s.seg_hop} (a variable number per "
                             f"utterance; a shorter utterance is one window), each resized bilinearly to "
                             f"{s.image_size}x{s.image_size}")}
    assert isinstance(s, CRNNSettings)
    return {"summary": Summary.parse(s.summary).value, "loss": "cross-entropy"}


def build_system(model: str, settings: SystemSettings, n_classes: int, *, in_channels: int = 3, n_mels: int = 60,
                 pretrained: str | Path | None = None) -> nn.Module:
    """The ``nn.Module`` of ``model`` for ``settings`` (``pretrained``: AlexNet weights for DCNN-BLSTMwA)."""
    s = settings
    if model in ("crnn", "crnn-ctc", "crnn-mk"):
        common = dict(n_mels=n_mels, channels=s.channels, freq_pools=s.freq_pools, time_pools=s.time_pools,
                      hidden=s.hidden, lstm_layers=s.lstm_layers, fc_hidden=s.fc_hidden, dropout=s.dropout)
    if model == "crnn":
        assert isinstance(s, CRNNSettings)
        return CRNN(n_classes, in_channels=in_channels, summary=s.summary, attn_dim=s.attn_dim, **common)
    if model == "crnn-ctc":
        assert isinstance(s, CRNNCTCSettings)
        return CRNNCTC(n_classes, in_channels=in_channels, drop_db=s.drop_db, decode_method=s.decode, **common)
    if model == "crnn-mk":
        assert isinstance(s, CRNNMKSettings)
        return CRNNMK(n_classes, multi_kernel=s.mk_multi_kernel, summary=s.summary,
                      enhanced_features=s.mk_enhanced_features, effective_training=s.mk_effective_training,
                      kernel_widths=s.mk_kernel_widths, label_smoothing=s.mk_label_smoothing, attn_dim=s.attn_dim,
                      **common)
    if model == "dcnn-blstm-att":
        assert isinstance(s, DCNNSettings)
        if pretrained:
            alex = AlexNet(n_classes, width=1.0)
            load_pretrained(alex, pretrained, num_classes=n_classes)
            encoder: nn.Module = FeatureExtractor(alex, "fc7", alex.fc_dim)
            train_enc = s.train_encoder == "true"
        else:
            if s.train_encoder == "false":
                raise DeepRunError("--set train_encoder=false without --pretrained: a frozen random CNN gives "
                                   "meaningless features; give --pretrained alexnet.pth or use train_encoder=auto")
            encoder = ConvSegmentEncoder(s.encoder_dim, s.encoder_channels, in_channels=in_channels)
            train_enc = True
        return DCNNBLSTMAtt(encoder, n_classes, train_encoder=train_enc, hidden=s.hidden, lstm_layers=s.lstm_layers,
                            attn_dim=s.attn_dim, dnn_hidden=s.dnn_hidden, dnn_layers=s.dnn_layers, dropout=s.dropout)
    raise DeepRunError(f"--model {model!r}: not one of the systems {', '.join(SYSTEMS)}")


def make_inputs(model: str, net: nn.Module, settings: SystemSettings, plan: FoldPlan, *, device: torch.device,
                amp: bool = False) -> Inputs:
    """The batch builder for ``model`` (frozen DCNN encoder: features cached once)."""
    s = settings
    if model == "dcnn-blstm-att":
        assert isinstance(s, DCNNSettings) and isinstance(net, DCNNBLSTMAtt)
        kw = dict(seg_frames=s.seg_frames, seg_hop=s.seg_hop, image_size=s.image_size, max_segments=s.max_segments)
        if net.train_encoder:
            return SegmentInputs(plan, **kw)
        return FeatureInputs(plan, net, device=device, amp=amp, **kw)
    return SpectrogramInputs(plan, max_frames=getattr(s, "max_frames", 0), energy=(model == "crnn-ctc"))


# ---------------------------------------------------------------- training and prediction

def _optimizer(params: list, s: SystemSettings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)


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
                 val_rows: np.ndarray, settings: SystemSettings, *, device: torch.device, seed: int,
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
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], s)
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


# ---------------------------------------------------------------- a fold, a run

def run_fold(fold, mels: Sequence[np.ndarray], y: np.ndarray, manifest: pd.DataFrame, labels: list[str], *,
             model: str, settings: SystemSettings, device: torch.device, amp: bool, pretrained, seed: int,
             ckpt_dir: Path, hook: EpochHook | None = None, log: Log | None = None,
             tensors: Sequence[torch.Tensor] | None = None) -> tuple[pd.DataFrame, dict]:
    """Train on ``fold.train`` only and predict ``fold.test``: (store predictions, timings)."""
    log = log or (lambda _m: None)
    s = settings
    t_fold = time.perf_counter()
    fit, val = val_split(np.asarray(fold.train), y, s.val_fraction, stage_seed(seed, fold.name, "val"))
    test = np.asarray(fold.test)
    plan = plan_fold(mels, y, fit, val, test, s, seed=seed, fold=fold.name, tensors=tensors)
    timing: dict = {"n_train": int(len(fold.train)), "n_fit": int(len(fit)), "n_val": int(len(val)),
                    "n_train_rows": int(len(plan.train_rows))}
    torch.manual_seed(stage_seed(seed, fold.name, "model"))
    channels, n_mels = plan.shape
    net = build_system(model, s, len(labels), in_channels=channels, n_mels=n_mels, pretrained=pretrained)
    net.to(device)
    t0 = time.perf_counter()
    inputs = make_inputs(model, net, s, plan, device=device, amp=amp)
    timing["inputs_s"] = time.perf_counter() - t0
    if isinstance(inputs, SegmentInputs):
        timing["n_segments"] = int(inputs.counts.sum())

    stage_log = epoch_logger(log, hook, "utterances")

    res = train_system(net, inputs, plan.labels, plan.train_rows, plan.val_rows, s, device=device,
                       seed=stage_seed(seed, fold.name, "train"), name=model, checkpoint=ckpt_dir / "model.pt",
                       amp=amp, on_epoch=stage_log)
    timing.update({"epochs": res.epochs_run, "resumed_from": res.resumed_from, "train_s": res.train_s,
                   "train_utterances": res.samples,
                   "train_utterances_per_s": res.samples_per_s if res.samples else None,
                   "epoch_s": [h["seconds"] for h in res.history]})
    t0 = time.perf_counter()
    probs, decided = predict_system(net, inputs, plan.test_rows, batch=2 * s.batch, device=device, amp=amp)
    timing["predict_s"] = time.perf_counter() - t0
    rows = manifest.iloc[test]
    probs_np = probs.numpy()
    preds = pd.DataFrame({
        "utterance_id": rows["utterance_id"].astype(str).to_numpy(),
        "speaker": rows["speaker"].astype(str).to_numpy(),
        "fold": str(fold.name),
        "true": rows["emotion"].astype(str).to_numpy(),
        "predicted": np.asarray(labels)[decided.numpy()],
    })
    for j, lab in enumerate(labels):
        preds[f"score_{lab}"] = probs_np[:, j]
    timing["wall_s"] = time.perf_counter() - t_fold
    return preds, timing


def _describe(model: str, s: SystemSettings, details: dict) -> dict:
    """The human-readable parts of run.json's config (what the settings mean for this run)."""
    crop = getattr(s, "max_frames", None)
    if isinstance(s, DCNNSettings):
        crop_text = (f"training utterances keep a random run of at most {s.max_segments} windows"
                     if s.max_segments else "off (every window of every utterance)")
    else:
        crop_text = (f"training utterances longer than {crop} frames ({crop / 100:g} s) are randomly cropped to "
                     f"{crop} frames each time they are drawn" if crop else "off (whole utterances)")
    aug = ("off" if not s.aug_copies else
           f"{s.aug_copies} augmented copy/copies of each fit utterance (time shift <= {s.aug_shift} frames, "
           f"time mask <= {s.aug_time_mask} frames, frequency mask <= {s.aug_freq_mask} bands), training rows only")
    return {
        "normalization": "per-(channel, mel band) mean/std over every frame of the fold's fit utterances "
                         "(training speakers, validation utterances excluded, no augmented copies)",
        "early_stopping": (f"best validation loss on {s.val_fraction:.0%} of the training utterances "
                           f"(stratified), patience {s.patience}") if s.val_fraction > 0 else "off (fixed epochs)",
        "training_crop": crop_text,
        "batching": (f"seeded shuffle, sorted by length within pools of {s.bucket} batches of {s.batch}; "
                     "padding masked by the model; evaluation on whole utterances sorted by length"),
        "augmentation": aug,
        "balancing": ("training classes oversampled to the largest class (fit rows only)" if s.balance else "off"),
        "optimizer": (f"{s.optimizer} lr {s.lr:g}" + (f" momentum {s.momentum:g}" if s.optimizer == "sgd" else "")
                      + (f", weight decay {s.weight_decay:g}" if s.weight_decay else "")
                      + (f", gradient norm clipped at {s.grad_clip:g}" if s.grad_clip else "")),
        "system_details": details,
    }


def run_system(corpus: str, root: str | Path, *, model: str, profile: str = "fast", device: str = "auto",
               pretrained: str | Path | None = None, seed: int = 0, cache: str | Path | None = None,
               runs: str | Path | None = None, overrides: Mapping[str, object] | None = None, jobs: int = 1,
               emotions: Sequence[str] | None = None, resume: bool = True, on_epoch: EpochHook | None = None,
               log: Log | None = None, command: str | None = None, protocol: str | None = None,
               segments: int | None = None, speaker_norm: bool = False) -> RunResult:
    """Train and evaluate one of :data:`SYSTEMS` under ``protocol`` (default: the corpus' own).

    Arguments as :func:`serbench.deep.run.run_deep`; ``overrides`` are the system's settings
    (:mod:`serbench.deep.systems.settings`). ``segments`` is not used by these systems (they
    read whole utterances) and is ignored with a log line. Writes
    ``<runs>/<corpus>/<system>/<run_id>/`` and returns a :class:`~serbench.deep.run.RunResult`.
    """
    log = log or (lambda _msg: None)
    if model not in SYSTEMS:
        raise DeepRunError(f"--model {model!r}: not one of the systems {', '.join(SYSTEMS)}")
    s = get_settings(model, profile, overrides)
    if segments is not None:
        log(f"--segments {segments} ignored: {model} reads whole, variable-length utterances")
    dev = resolve_device(device)
    amp = bool(s.amp and dev.type == "cuda")
    if pretrained is not None and model != "dcnn-blstm-att":
        log(f"--pretrained {pretrained} ignored: {model} has no ImageNet CNN")
        pretrained = None
    if pretrained and not Path(pretrained).expanduser().is_file():
        raise DeepRunError(f"--pretrained {pretrained}: no such file")
    if pretrained and isinstance(s, DCNNSettings) and s.image_size < MIN_INPUT_SIZE:
        raise DeepRunError(f"--set image_size={s.image_size}: AlexNet (--pretrained) needs at least "
                           f"{MIN_INPUT_SIZE} pixels; the paper uses 227")
    if not pretrained and isinstance(s, DCNNSettings) and s.train_encoder == "false":
        raise DeepRunError("--set train_encoder=false without --pretrained: a frozen random CNN gives meaningless "
                           "features; give --pretrained alexnet.pth or use train_encoder=auto")
    pretrained_label = str(Path(pretrained).expanduser().resolve()) if pretrained else FROM_SCRATCH
    prot = resolve_protocol(corpus, protocol)
    system = system_name_for(model, s) + (SPKNORM_SUFFIX if speaker_norm else "")

    t_start = time.perf_counter()
    mels, manifest, excluded = load_inputs(corpus, root, cache=cache, jobs=jobs, emotions=emotions,
                                           speaker_norm=speaker_norm)
    labels = sorted(manifest["emotion"].astype(str).unique())
    y = D.label_indices(manifest["emotion"], labels).numpy()
    folds = prot.folds(manifest, corpus)
    t_data = time.perf_counter() - t_start
    if excluded is not None and len(excluded):
        log(f"{len(excluded)} utterance(s) without usable features are left out (listed in run.json 'excluded')")

    details = system_details(model, s, pretrained_label if pretrained else None)
    config = {
        "model": model, "system": system, "segments": None, "profile": s.name, "settings": s.as_dict(),
        "speaker_norm": bool(speaker_norm),
        "pretrained": pretrained_label, "device": str(dev), "amp": amp, "seed": int(seed),
        "protocol": prot.name, "features": "melseg: 3 x 60 log-mel (static, delta, delta-delta), 10 ms frames, "
                                           "whole utterances",
        "n_utterances": int(len(manifest)), **_describe(model, s, details),
    }
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    from serbench.experiments.store import RunStore

    store = RunStore(runs)
    writer = store.start_run(corpus, system, config, labels, command, kind="deep", seed=int(seed),
                             fingerprint=inputs_fingerprint(manifest["utterance_id"].astype(str).tolist(), mels),
                             resume=resume, extra={"excluded": json_records(excluded)})
    done = set(writer.finished_folds())
    if writer.resumed:
        log(f"resuming {writer.path} ({len(done)}/{len(folds)} folds finished)")
    log(f"{system} on {corpus}: {len(manifest)} utterances, {len(folds)} folds ({prot.name}), profile {s.name}, "
        f"device {dev}{' (AMP)' if amp else ''}"
        + (f", {details['encoder']}" if model == "dcnn-blstm-att" else ""))

    seed_all(seed)
    tensors = [float_tensor(m) for m in mels]

    def fold_fn(fold, ckpt_dir: Path, hook):
        return run_fold(fold, mels, y, manifest, labels, model=model, settings=s, device=dev, amp=amp,
                        pretrained=pretrained, seed=int(seed), ckpt_dir=ckpt_dir, hook=hook, log=log, tensors=tensors)

    fold_timings = run_folds(writer, folds, fold_fn, on_epoch=on_epoch, log=log)
    rates = [t["train_utterances_per_s"] for t in fold_timings.values() if t.get("train_utterances_per_s")]
    timings = {
        "load_features_s": t_data, "total_s": time.perf_counter() - t_start, "folds": fold_timings,
        "fold_wall_s_mean": float(np.mean([t["wall_s"] for t in fold_timings.values()])),
        "train_utterances_per_s": float(np.mean(rates)) if rates else None,
        "device": str(dev), "torch_threads": torch.get_num_threads(),
        "note": "per-fold times count only the process that ran the fold's last part",
    }
    return finish_run(writer, system, config, timings, excluded)
