"""``run_deep``: CNN+SRU (or an ablation) under the corpus' LOSO protocol, into the results store.

Per fold, on the training speakers only: fit the input normalization, fine-tune the
segment CNN (stage 1), freeze it and train the SRU on the FC7 features of the N segments
(stage 2); then predict the held-out speaker's utterances. Each stage checkpoints every
epoch under ``<run>.partial/checkpoints/<fold>/``; re-running the same command resumes
the partial run: finished folds are skipped, an interrupted stage continues from its
last checkpoint, and the result equals an uninterrupted run (bit-identical on CPU).
"""
from __future__ import annotations

import hashlib
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GroupKFold

from serbench.deep import data as D
from serbench.deep.alexnet import load_pretrained
from serbench.deep.models import MODELS, build_cnn, build_sru, cnn_utterance_probs
from serbench.deep.profiles import Profile, get_profile
from serbench.deep.train import EpochHook, StageConfig, epoch_logger, extract_fc7, predict_logits, train_stage
from serbench.errors import SerbenchError

Log = Callable[[str], None]
FROM_SCRATCH = "from scratch"


class DeepRunError(SerbenchError):
    """Bad options for a deep run (model, segments, device)."""


@dataclass
class RunResult:
    """What :func:`run_deep` produced: the run folder, its system name and WA/UA summary."""

    run_dir: Path
    system: str
    summary: dict                  # serbench.experiments.metrics.summarize(predictions)
    predictions: pd.DataFrame
    config: dict
    timings: dict
    resumed: bool = False
    excluded: list = field(default_factory=list)

    @property
    def pretrained(self) -> str:
        return self.config["pretrained"]


SPKNORM_SUFFIX = "-spknorm"


def system_name(model: str, segments: int, speaker_norm: bool = False) -> str:
    """The results-store system name, e.g. ``cnn-sru-N5`` or ``cnn-sru-N5-spknorm``."""
    return f"{model}-N{segments}" + (SPKNORM_SUFFIX if speaker_norm else "")


def load_inputs(corpus: str, root: str | Path, *, cache=None, jobs: int = 1, emotions: Sequence[str] | None = None,
                speaker_norm: bool = False) -> tuple[list[np.ndarray], pd.DataFrame, pd.DataFrame]:
    """The melseg arrays of every usable utterance (:func:`serbench.deep.data.load_melseg`).

    With ``speaker_norm`` each speaker's log-mel arrays are z-scored with that speaker's own
    frame statistics (:func:`serbench.deep.data.speaker_normalize_mels`, label-free, like the
    baselines' ``--speaker-norm``); the system name then ends in ``-spknorm``.
    """
    mels, manifest, excluded = D.load_melseg(corpus, root, cache=cache, jobs=jobs, emotions=emotions)
    if speaker_norm:
        mels = D.speaker_normalize_mels(mels, manifest["speaker"].astype(str).tolist())
    return mels, manifest, excluded


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is an error naming --device."""
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeepRunError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise DeepRunError(f"--device {device!r}: choose auto, cpu or cuda")
    return torch.device(name)


def stage_seed(seed: int, fold: str, stage: str) -> int:
    """A stable per-(fold, stage) seed, so a fold's result does not depend on which folds ran before it."""
    digest = hashlib.sha256(f"{seed}/{fold}/{stage}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _segment_rows(utts: np.ndarray, n: int) -> torch.Tensor:
    """Utterance positions ``(U,)`` -> their segment rows ``(U*N,)`` in the utterance-major image tensor."""
    return torch.as_tensor((np.asarray(utts)[:, None] * n + np.arange(n)).ravel(), dtype=torch.long)


def val_split(train: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's TRAINING utterances into (fit, val), stratified by class; val is empty at 0."""
    if fraction <= 0:
        return train, train[:0]
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y[train]):
        members = train[y[train] == c]
        k = int(round(fraction * len(members)))
        if 0 < k < len(members):
            val.extend(rng.choice(members, size=k, replace=False).tolist())
    val = np.array(sorted(val), dtype=train.dtype)
    return np.setdiff1d(train, val), val


def inputs_fingerprint(ids: Sequence[str], mels: Sequence[np.ndarray]) -> str:
    from serbench.experiments.store import fingerprint

    shapes = np.array([m.shape for m in mels], dtype=np.int64)
    sums = np.array([float(np.sum(m, dtype=np.float64)) for m in mels])
    return fingerprint(np.asarray(ids, dtype=str), shapes, sums)


def run_deep(
    corpus: str,
    root: str | Path,
    *,
    segments: int | None = None,
    model: str = "cnn-sru",
    profile: str = "fast",
    device: str = "auto",
    pretrained: str | Path | None = None,
    seed: int = 0,
    cache: str | Path | None = None,
    runs: str | Path | None = None,
    overrides: Mapping[str, object] | None = None,
    jobs: int = 1,
    emotions: Sequence[str] | None = None,
    resume: bool = True,
    on_epoch: EpochHook | None = None,
    log: Log | None = None,
    command: str | None = None,
    protocol: str | None = None,
    speaker_norm: bool = False,
) -> RunResult:
    """Train and evaluate ``model`` with ``segments`` segments per utterance under LOSO.

    ``profile`` ('paper' | 'fast' | 'tiny') with ``overrides`` gives every setting;
    ``pretrained`` is a local torchvision-named AlexNet state dict (None: from scratch).
    ``on_epoch`` gets ``{"fold", "stage", "epoch", "loss", "val_loss"}`` after each epoch's
    checkpoint (an exception from it stops the run like a kill; the next call resumes).
    Writes ``<runs>/<corpus>/<model>-N<segments>/<run_id>/`` and returns a :class:`RunResult`.
    ``protocol`` ('loso' | 'loso-session'; None: the corpus' default) picks the folds.
    ``speaker_norm`` z-scores each speaker's log-mel with its own statistics (off by default,
    as in the paper; the system name gets ``-spknorm``).

    The seed-paper systems (``crnn``, ``crnn-ctc``, ``crnn-mk``, ``dcnn-blstm-att``) read
    whole utterances: they go to :func:`serbench.deep.systems.runner.run_system`, take their
    settings from :mod:`serbench.deep.systems.settings`, ignore ``segments`` and are stored
    as ``<runs>/<corpus>/<model>/``.
    """
    from serbench.deep.systems.runner import SYSTEMS, run_system
    from serbench.experiments.protocol import resolve_protocol

    if model in SYSTEMS:
        return run_system(corpus, root, model=model, profile=profile, device=device, pretrained=pretrained,
                          seed=seed, cache=cache, runs=runs, overrides=overrides, jobs=jobs, emotions=emotions,
                          resume=resume, on_epoch=on_epoch, log=log, command=command, protocol=protocol,
                          segments=segments, speaker_norm=speaker_norm)
    log = log or (lambda _msg: None)
    if model not in MODELS:
        raise DeepRunError(f"--model {model!r}: choose one of {', '.join(MODELS + SYSTEMS)}")
    if segments is None:
        raise DeepRunError(f"--segments is required for --model {model}: give N from 1 to 5 (the paper's range)")
    if isinstance(segments, bool) or int(segments) != segments or not 1 <= segments <= 20:
        raise DeepRunError(f"--segments {segments!r}: give an integer from 1 to 20 (the paper uses 1..5)")
    segments = int(segments)
    prof = get_profile(profile, overrides)
    dev = resolve_device(device)
    amp = bool(prof.amp and dev.type == "cuda")
    uses_cnn = model in ("cnn-sru", "cnn")
    if pretrained is not None and not uses_cnn:
        # A grid passes one --pretrained to every deep model; the SRU ablation has no CNN to load it into.
        log(f"--pretrained {pretrained} ignored: the 'sru' model has no CNN")
        pretrained = None
    pretrained_label = str(Path(pretrained).expanduser().resolve()) if pretrained else FROM_SCRATCH
    if pretrained and not Path(pretrained).expanduser().is_file():
        raise DeepRunError(f"--pretrained {pretrained}: no such file")
    if prof.sru_crossfit and model != "cnn-sru":
        raise DeepRunError(f"setting sru_crossfit={prof.sru_crossfit}: only --model cnn-sru has an SRU on CNN features")
    # A cross-fitted cascade is a different training method: stored and tabulated under its own name.
    variant = f"{model}-xfit{prof.sru_crossfit}" if prof.sru_crossfit else model
    system = system_name(variant, segments, speaker_norm)

    t_start = time.perf_counter()
    mels, manifest, excluded = load_inputs(corpus, root, cache=cache, jobs=jobs, emotions=emotions,
                                           speaker_norm=speaker_norm)
    labels = sorted(manifest["emotion"].astype(str).unique())
    y_all = D.label_indices(manifest["emotion"], labels)
    y_np = y_all.numpy()
    from serbench.experiments.store import RunStore

    protocol = resolve_protocol(corpus, protocol)
    folds = protocol.folds(manifest, corpus)
    t_data = time.perf_counter() - t_start
    if excluded is not None and len(excluded):
        log(f"{len(excluded)} utterance(s) without usable features are left out (listed in run.json 'excluded')")

    config = {
        "model": variant, "segments": segments, "profile": prof.name, "settings": prof.as_dict(),
        "pretrained": pretrained_label, "device": str(dev), "amp": amp, "seed": int(seed),
        "protocol": protocol.name, "features": "melseg", "n_utterances": int(len(manifest)),
        "speaker_norm": bool(speaker_norm),
        "cnn_decision": "mean of segment softmax probabilities" if model == "cnn" else None,
        "sru_input": {"cnn-sru": "FC7 features of the N segments (CNN frozen)" + (
                          f"; cross-fitted over {prof.sru_crossfit} groups of training speakers: SRU k learns "
                          f"from group k's FC7 under CNN k, trained on the other groups; test = mean of the "
                          f"{prof.sru_crossfit} SRUs' probabilities" if prof.sru_crossfit else ""),
                      "sru": "per-segment mean and std of the 3x60 log-mel frames (360-d)"}.get(model),
        "sru_pool": prof.sru_pool if model != "cnn" else None,
        "normalization": "per-channel mean/std of the training fold's inputs",
        "early_stopping": (f"best validation loss on {prof.val_fraction:.0%} of the training utterances, "
                           f"patience {prof.patience}") if prof.val_fraction > 0 else "off (fixed epochs)",
    }
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    store = RunStore(runs)
    writer = store.start_run(corpus, system, config, labels, command, kind="deep", seed=int(seed),
                             fingerprint=inputs_fingerprint(manifest["utterance_id"].astype(str).tolist(), mels),
                             resume=resume,
                             extra={"excluded": json_records(excluded)})
    done = set(writer.finished_folds())
    if writer.resumed:
        log(f"resuming {writer.path} ({len(done)}/{len(folds)} folds finished)")
    cnn_note = ("no CNN (SRU on low-level log-mel statistics)" if not uses_cnn
                else f"CNN fine-tuned from {pretrained_label}" if pretrained else "CNN trained from scratch")
    log(f"{system} on {corpus}: {len(manifest)} utterances, {len(folds)} folds, profile {prof.name}, "
        f"device {dev}{' (AMP)' if amp else ''}, {cnn_note}")

    seed_all(seed)
    inputs: torch.Tensor
    t0 = time.perf_counter()
    todo = [f for f in folds if f.name not in done]
    if todo:
        if uses_cnn:
            # Resized once for all folds (deterministic, nothing fitted); kept on the device
            # when it fits in half its free memory (the rest is for the model and the fold's copies).
            store_dev = _data_device(dev, len(mels) * segments * 3 * prof.image_size ** 2 * 4, log)
            inputs = D.segment_tensor(mels, segments, prof.image_size, device=dev, store=store_dev)
        else:
            inputs = D.lowlevel_sequences(mels, segments).to(dev)
    t_inputs = time.perf_counter() - t0

    def fold_fn(fold, ckpt_dir: Path, hook):
        return _run_fold(fold, inputs, y_all, y_np, manifest, labels, model=model, n=segments, prof=prof, dev=dev,
                         amp=amp, pretrained=pretrained, seed=int(seed), ckpt_dir=ckpt_dir, hook=hook, log=log)

    fold_timings = run_folds(writer, folds, fold_fn, on_epoch=on_epoch, log=log, rate_key="cnn_segments_per_s",
                             rate_label="CNN {:.1f} segments/s")
    cnn_rates = [t["cnn_segments_per_s"] for t in fold_timings.values() if t.get("cnn_segments_per_s")]
    timings = {
        "load_features_s": t_data, "make_inputs_s": t_inputs, "total_s": time.perf_counter() - t_start,
        "folds": fold_timings,
        "fold_wall_s_mean": float(np.mean([t["wall_s"] for t in fold_timings.values()])),
        "cnn_train_segments_per_s": float(np.mean(cnn_rates)) if cnn_rates else None,
        "cnn_collapsed_folds": sorted(k for k, t in fold_timings.items() if t.get("cnn_collapsed")),
        "device": str(dev), "torch_threads": torch.get_num_threads(),
        "note": "per-fold times count only the process that ran the fold's last part",
    }
    return finish_run(writer, system, config, timings, excluded)


def run_folds(writer, folds: Sequence, fold_fn: Callable, *, on_epoch: EpochHook | None, log: Log,
              rate_key: str | None = None, rate_label: str = "") -> dict[str, dict]:
    """Run ``fold_fn(fold, ckpt_dir, hook) -> (predictions, timing)`` for every fold the partial
    run ``writer`` has not finished, storing each fold as soon as it is done.

    A fold's checkpoints live in ``<run>.partial/checkpoints/<fold>/`` until its predictions
    are stored. Returns the timings of every fold (finished earlier or now), by fold name.
    """
    done = set(writer.finished_folds())
    fold_timings: dict[str, dict] = {}
    ckpt_root = writer.path / "checkpoints"
    for k, fold in enumerate(folds):
        where = f"fold {k + 1}/{len(folds)} {fold.name}"
        if fold.name in done:
            fold_timings[fold.name] = writer.fold_info(fold.name).get("timings", {})
            log(f"{where}: finished earlier, skipped")
            continue
        log(f"{where}: train {len(fold.train)}, test {len(fold.test)}")
        hook = None
        if on_epoch is not None:
            hook = (lambda ev, _f=fold.name: on_epoch({"fold": _f, **ev}))
        preds, timing = fold_fn(fold, ckpt_root / safe_name(fold.name), hook)
        writer.write_fold(fold.name, preds, {"timings": timing})
        shutil.rmtree(ckpt_root / safe_name(fold.name), ignore_errors=True)  # the fold is stored; free the disk
        fold_timings[fold.name] = timing
        wa = float(np.mean(preds["true"] == preds["predicted"]))
        rate = timing.get(rate_key) if rate_key else None
        log(f"{where}: WA {wa:.3f}, {timing['wall_s']:.0f} s" + (", " + rate_label.format(rate) if rate else ""))
    shutil.rmtree(ckpt_root, ignore_errors=True)
    return fold_timings


def finish_run(writer, system: str, config: dict, timings: dict, excluded: pd.DataFrame | None) -> RunResult:
    """Mark the partial run complete and return its :class:`RunResult` (metrics from the stored predictions)."""
    from serbench.experiments.metrics import summarize
    from serbench.experiments.store import load_run

    final = writer.finish(timings=timings)
    _, preds = load_run(final, _warn=False)
    return RunResult(run_dir=final, system=system, summary=summarize(preds), predictions=preds,
                     config=config, timings=timings, resumed=writer.resumed, excluded=json_records(excluded))


def _data_device(dev: torch.device, nbytes: int, log: Log) -> torch.device:
    """``dev`` if ``nbytes`` of inputs fit in half of its free memory, else the CPU (batches are then copied)."""
    if dev.type != "cuda":
        return dev
    free, _ = torch.cuda.mem_get_info(dev)
    if nbytes <= free // 2:
        return dev
    log(f"segment images ({nbytes / 2**30:.1f} GiB) do not fit on {dev}; kept in CPU memory")
    return torch.device("cpu")


def json_records(df: pd.DataFrame | None) -> list[dict]:
    """Rows as JSON-safe dicts (pandas' NA -> None)."""
    if df is None or df.empty:
        return []
    return [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()} for row in df.to_dict("records")]


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "fold"


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


def _run_fold(fold, inputs: torch.Tensor, y_all: torch.Tensor, y_np: np.ndarray, manifest: pd.DataFrame,
              labels: list[str], *, model: str, n: int, prof: Profile, dev: torch.device, amp: bool,
              pretrained, seed: int, ckpt_dir: Path, hook, log: Log) -> tuple[pd.DataFrame, dict]:
    """One fold: fit on ``fold.train`` utterances only, predict ``fold.test``. Returns (predictions, timings)."""
    t_fold = time.perf_counter()
    n_classes = len(labels)
    fit, val = val_split(np.asarray(fold.train), y_np, prof.val_fraction, stage_seed(seed, fold.name, "val"))
    timing: dict = {"n_train": int(len(fold.train)), "n_fit": int(len(fit)), "n_val": int(len(val))}

    stage_log = epoch_logger(log, hook, "samples")

    def add_timing(key: str, value: float) -> None:
        timing[key] = (timing.get(key) or 0) + value

    def fit_cnn(utts: np.ndarray, stage: str):
        """Stage 1 on the segments of ``utts`` (early stopping on ``val``); returns (cnn, norm)."""
        rows_fit, rows_val = _segment_rows(utts, n), _segment_rows(val, n)
        norm = D.Normalizer.fit(inputs[rows_fit.to(inputs.device)])       # training segments only
        s = stage_seed(seed, fold.name, stage)
        torch.manual_seed(s)
        cnn = build_cnn(n_classes, prof)
        if pretrained:
            load_pretrained(cnn, pretrained, num_classes=n_classes)
        cnn.to(dev)
        cfg = StageConfig(stage, prof.cnn_epochs, prof.cnn_batch, seed=s, patience=prof.patience,
                          optimizer=lambda p: cnn_optimizer(p, prof))
        ys_fit = y_all[utts].repeat_interleave(n)                          # each segment: its utterance's label
        val_data = (inputs[rows_val.to(inputs.device)], y_all[val].repeat_interleave(n)) if len(val) else None
        res = train_stage(cnn, inputs[rows_fit.to(inputs.device)], ys_fit, cfg, device=dev, transform=norm,
                          checkpoint=ckpt_dir / f"{stage}.pt", amp=amp, val=val_data, on_epoch=stage_log)
        collapsed = stuck_at_chance(res.history, n_classes)
        if collapsed:
            log(f"  WARNING: {collapsed}; this fold's CNN predicts (nearly) one class. Lower cnn_lr "
                f"(--set cnn_lr=...) and re-run with --no-resume")
        timing["cnn_collapsed"] = "; ".join(filter(None, [timing.get("cnn_collapsed"), collapsed])) or None
        timing["cnn_final_loss"] = res.history[-1]["loss"] if res.history else None
        timing["cnn_resumed_from"] = res.resumed_from
        for key, value in (("cnn_epochs", res.epochs_run), ("cnn_train_s", res.train_s), ("cnn_segments", res.samples)):
            add_timing(key, value)    # summed over the K CNNs of a cross-fitted fold
        timing["cnn_segments_per_s"] = (timing["cnn_segments"] / timing["cnn_train_s"]
                                        if timing["cnn_segments"] and timing["cnn_train_s"] else None)
        return cnn, norm

    def stage2(cnn, norm, sru_utts: np.ndarray, stage: str) -> tuple[torch.Tensor, dict]:
        """Stage 2: CNN frozen; the SRU on the FC7 of ``sru_utts``; test probabilities."""
        for p in cnn.parameters():
            p.requires_grad_(False)
        test = np.asarray(fold.test)
        utts = np.concatenate([sru_utts, val, test])
        t_fc7 = time.perf_counter()
        feats = extract_fc7(cnn, inputs[_segment_rows(utts, n).to(inputs.device)], batch=prof.cnn_batch * 4,
                            device=dev, transform=norm, amp=amp).reshape(len(utts), n, -1)
        add_timing("fc7_s", time.perf_counter() - t_fc7)
        pos = {int(u): i for i, u in enumerate(utts)}
        take = (lambda idx: feats[[pos[int(u)] for u in idx]])
        return _train_sru(take(sru_utts), y_all[sru_utts], take(val) if len(val) else None, y_all[val],
                          take(test), feats.shape[-1], n_classes, prof, dev, amp,
                          stage_seed(seed, fold.name, stage), ckpt_dir / f"{stage}.pt", stage_log,
                          transform=lambda x: x, name=stage)

    if model == "cnn" or (model == "cnn-sru" and prof.sru_crossfit == 0):
        cnn, norm = fit_cnn(fit, "cnn")
        t0 = time.perf_counter()
        if model == "cnn":
            logits = predict_logits(cnn, inputs[_segment_rows(np.asarray(fold.test), n).to(inputs.device)],
                                    batch=prof.cnn_batch * 4, device=dev, transform=norm, amp=amp)
            probs = cnn_utterance_probs(logits, n)
        else:   # the paper: the SRU learns from the FC7 of the same utterances the CNN was trained on
            probs, sres = stage2(cnn, norm, fit, "sru")
            timing.update(sres)
        timing["predict_s"] = time.perf_counter() - t0
    elif model == "cnn-sru":
        # Cross-fitted stage 2 (not in the paper): K speaker groups of the fit utterances; CNN k
        # trains on the other groups, SRU k on group k's FC7 from CNN k (features of utterances
        # that CNN never saw, like the test ones); the test decision averages the K SRUs.
        speakers = manifest["speaker"].astype(str).to_numpy()[fit]
        k = prof.sru_crossfit
        if len(set(speakers)) < k:
            raise DeepRunError(f"sru_crossfit={k} needs at least {k} training speakers; fold {fold.name} has "
                               f"{len(set(speakers))} (use --set sru_crossfit=0 or a smaller K)")
        t0 = time.perf_counter()
        all_probs = []
        for i, (cnn_idx, sru_idx) in enumerate(GroupKFold(n_splits=k).split(fit, groups=speakers)):
            cnn, norm = fit_cnn(fit[cnn_idx], f"cnn{i}")
            probs_i, sres = stage2(cnn, norm, fit[sru_idx], f"sru{i}")
            all_probs.append(probs_i)
            for key in ("sru_epochs", "sru_train_s"):
                add_timing(key, sres[key])
        probs = torch.stack(all_probs).mean(0)
        timing["sru_crossfit"] = k
        timing["predict_s"] = time.perf_counter() - t0
    else:  # 'sru' on low-level sequences (U, N, 360)
        seqs = inputs
        norm = D.Normalizer.fit_last(seqs[torch.as_tensor(fit, device=seqs.device)])
        test = np.asarray(fold.test)
        sel = (lambda idx: seqs[torch.as_tensor(idx, dtype=torch.long, device=seqs.device)])
        probs, sres = _train_sru(sel(fit), y_all[fit], sel(val) if len(val) else None, y_all[val], sel(test),
                                 seqs.shape[-1], n_classes, prof, dev, amp, stage_seed(seed, fold.name, "sru"),
                                 ckpt_dir / "sru.pt", stage_log, transform=norm)
        timing.update(sres)

    test = np.asarray(fold.test)
    rows = manifest.iloc[test]
    probs_np = probs.cpu().double().numpy()
    preds = pd.DataFrame({
        "utterance_id": rows["utterance_id"].astype(str).to_numpy(),
        "speaker": rows["speaker"].astype(str).to_numpy(),
        "fold": str(fold.name),
        "true": rows["emotion"].astype(str).to_numpy(),
        "predicted": np.asarray(labels)[probs_np.argmax(axis=1)],
    })
    for j, lab in enumerate(labels):
        preds[f"score_{lab}"] = probs_np[:, j]
    timing["wall_s"] = time.perf_counter() - t_fold
    return preds, timing


def cnn_optimizer(params, prof: Profile) -> torch.optim.Optimizer:
    """Stage 1's optimizer: the paper's SGD (with ``cnn_momentum``) or Adam (``cnn_optimizer=adam``)."""
    if prof.cnn_optimizer == "adam":
        return torch.optim.Adam(params, lr=prof.cnn_lr, weight_decay=prof.cnn_weight_decay)
    return torch.optim.SGD(params, lr=prof.cnn_lr, momentum=prof.cnn_momentum, weight_decay=prof.cnn_weight_decay)


def _train_sru(x_fit, y_fit, x_val, y_val, x_test, input_size, n_classes, prof: Profile, dev, amp, seed: int,
               ckpt: Path, stage_log, *, transform, name: str = "sru") -> tuple[torch.Tensor, dict]:
    """Stage 2: SRU classifier on ``(U, N, D)`` sequences; returns test probabilities ``(U_test, C)``."""
    torch.manual_seed(seed)
    head = build_sru(input_size, n_classes, prof).to(dev)
    cfg = StageConfig(name, prof.sru_epochs, prof.sru_batch, seed=seed, patience=prof.patience,
                      optimizer=lambda p: torch.optim.Adam(p, lr=prof.sru_lr))
    res = train_stage(head, x_fit, y_fit, cfg, device=dev, transform=transform, checkpoint=ckpt, amp=amp,
                      val=(x_val, y_val) if x_val is not None else None, on_epoch=stage_log)
    logits = predict_logits(head, x_test, batch=prof.sru_batch * 4, device=dev, transform=transform, amp=amp)
    return torch.softmax(logits, dim=-1), {"sru_epochs": res.epochs_run, "sru_resumed_from": res.resumed_from,
                                           "sru_train_s": res.train_s}
