"""Shared base of the seed papers' whole-utterance systems (CRNN, CRNN-CTC, CRNN-MK, DCNN-BLSTMwA).

Per fold, from the fold's TRAINING utterances only:

1. ``val_fraction`` of them (stratified by class) are held out for early stopping; the
   rest are the *fit* utterances;
2. ``aug_copies`` augmented copies of each fit utterance are added (time shift, time and
   frequency masks on the log-mel) and, with ``balance``, the fit rows are oversampled to
   equal class counts. Neither ever touches a validation or test utterance;
3. the input normalization is fitted: mean and std per (channel, mel band) over every frame
   of the fit utterances (the originals, not the copies).

Inputs are the full-utterance melseg arrays ``(3, 60, T_i)`` (10 ms frames), of varying
length; training batches group utterances of similar length (padding is masked by the
models and never changes a result); training utterances longer than ``max_frames`` are
randomly cropped each time they are drawn; validation and test utterances are whole.
Checkpoints every epoch; a killed run resumes exactly (:mod:`serbench.deep.train`).

Where the values come from. The three papers are available to us as abstracts only
(``shared/papers``), which name the topologies but no hyper-parameter, so every
number below is **our choice** unless it says otherwise:

=====================  =================================  ==========================  ================
setting                paper profile                      fast (2-core CPU)           source
=====================  =================================  ==========================  ================
optimizer, lr          Adam 1e-3                          Adam 2e-3                   our choice
batch                  32                                 32                          our choice
epochs / stopping      <= 100, best val loss, patience 15 <= 25, val 10 %, patience 6  our choice
val_fraction           10 % of the TRAINING utterances    10 %                        as CNN+SRU's paper profile
grad_clip              5 (global L2 norm)                 5                           our choice (BLSTM)
max_frames (crnn*)     800 (8 s random crop in training)  300 (3 s)                   our choice
CRNN conv channels     16, 32, 64                         8, 16, 32                   our choice
CRNN-MK conv channels  32, 32, 64                         16, 16, 32                  our choice
BLSTM hidden           128 per direction                  64                          our choice
FC hidden, dropout     64, 0.3                            64, 0.3                     our choice
CRNN summary           mean                               mean                        our choice
CTC drop_db, decode    25 dB, posterior                   same                        our reading (crnn_ctc.py)
MK flags               all on, attention, smoothing 0.1   same                        Meyer et al. (named
                                                                                      in the abstract)
MK kernel widths       3, 7, 11, 15 frames                same                        our choice
DCNN image_size        227 (AlexNet input)                64                          AlexNet / ours
DCNN seg_frames, hop   64, 30 frames (0.64 s, 0.3 s)      same                        our choice (the
                                                                                      abstract gives none)
DCNN encoder           AlexNet FC7, frozen (--pretrained) ConvSegmentEncoder 16, 32   Zhang et al. /
                       else ConvSegmentEncoder, joint     -> 128, joint               ours
DCNN BLSTM, DNN        128, 2 x 256, dropout 0.3          64, 2 x 64                  our choice
DCNN augmentation      1 augmented copy, balanced classes same                        Zhang et al. name
                                                                                      both; methods ours
=====================  =================================  ==========================  ================

``tiny`` shrinks everything to seconds-long runs for tests and demos. ``serbench systems NAME``
prints every setting of a system with its value in each profile.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serbench.systems import deep_runtime as R
from serbench.systems.base import ModelParts, System, SystemOptionError, checkpoint, load_module, module_tensors
from serbench.systems.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Interval, Options, Settings, setting

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset, FoldOutput
    from serbench.experiments.harness import FoldContext

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class UtteranceSettings(Settings):
    """Training, batching and data settings shared by the four systems (values: see each system's module)."""

    epochs: int = setting(100, "upper bound; early stopping ends sooner when val_fraction > 0", check=AT_LEAST_ONE)
    batch: int = setting(32, "utterances per batch", check=AT_LEAST_ONE)
    lr: float = setting(0.001, "learning rate", check=POSITIVE)
    optimizer: str = setting("adam", "adam, or sgd with momentum", check=Options(*OPTIMIZERS))
    momentum: float = setting(0.9, "sgd only", check=Interval(0, 1, "left"))
    weight_decay: float = setting(0.0, "weight decay", check=NON_NEGATIVE)
    grad_clip: float = setting(5.0, "max global L2 norm of the gradients; 0 = no clipping", check=NON_NEGATIVE)
    val_fraction: float = setting(0.1, "share of the fold's TRAINING utterances held out for early stopping",
                                  check=Interval(0, 0.5, "left"))
    patience: int = setting(15, "epochs without validation improvement before stopping", check=AT_LEAST_ONE)
    bucket: int = setting(8, "batches whose utterances are sorted by length together (less padding)",
                          check=AT_LEAST_ONE)
    aug_copies: int = setting(0, "augmented copies of each training utterance; 0 = none", check=NON_NEGATIVE)
    aug_time_mask: int = setting(10, "max frames of the time mask of an augmented copy", check=NON_NEGATIVE)
    aug_freq_mask: int = setting(8, "max mel bands of the frequency mask", check=NON_NEGATIVE)
    aug_shift: int = setting(10, "max frames of the random time shift", check=NON_NEGATIVE)
    balance: bool = setting(False, "oversample training classes up to the largest")
    amp: bool = setting(True, "mixed precision; only ever used on CUDA")


#: Profile values shared by the four systems (our choices: the abstracts give no hyper-parameters).
FAST = {"epochs": 25, "lr": 0.002, "patience": 6}
TINY = {"epochs": 3, "batch": 4, "lr": 0.01, "val_fraction": 0.0, "bucket": 2}


@dataclass
class UtteranceModel:
    """A fold's fitted network and its input normalization."""

    net: Any
    norm: Any
    info: dict = field(default_factory=dict)


class UtteranceSystem(System):
    """A model reading whole log-mel utterances: subclasses build the network and its batch inputs."""

    kind = "deep"
    inputs = "melseg"
    table = "systems"
    preload = ("torch", "serbench.deep.utterance_trainer")

    def build(self, s: Any, n_classes: int, *, in_channels: int, n_mels: int) -> Any:
        """The ``nn.Module`` for settings ``s``."""
        raise NotImplementedError

    def batch_inputs(self, net: Any, s: Any, plan: Any, rt: "R.Runtime") -> Any:
        """The batch builder (:mod:`serbench.deep.batching`) for ``plan``."""
        from serbench.deep.batching import SpectrogramInputs

        return SpectrogramInputs(plan, max_frames=getattr(s, "max_frames", 0))

    def details(self, s: Any) -> dict:
        """What the settings mean for this system (run.json ``system_details``)."""
        return {}

    def describe(self, s: UtteranceSettings) -> dict:
        crop = getattr(s, "max_frames", None)
        aug = ("off" if not s.aug_copies else
               f"{s.aug_copies} augmented copy/copies of each fit utterance (time shift <= {s.aug_shift} frames, "
               f"time mask <= {s.aug_time_mask} frames, frequency mask <= {s.aug_freq_mask} bands), training rows only")
        return {
            "model": self.name,
            "normalization": "per-(channel, mel band) mean/std over every frame of the fold's fit utterances "
                             "(training speakers, validation utterances excluded, no augmented copies)",
            "early_stopping": (f"best validation loss on {s.val_fraction:.0%} of the training utterances "
                               f"(stratified), patience {s.patience}") if s.val_fraction > 0 else "off (fixed epochs)",
            "training_crop": self.crop_text(s) if crop is None else (
                f"training utterances longer than {crop} frames ({crop / 100:g} s) are randomly cropped to {crop} "
                "frames each time they are drawn" if crop else "off (whole utterances)"),
            "batching": (f"seeded shuffle, sorted by length within pools of {s.bucket} batches of {s.batch}; "
                         "padding masked by the model; evaluation on whole utterances sorted by length"),
            "augmentation": aug,
            "balancing": "training classes oversampled to the largest class (fit rows only)" if s.balance else "off",
            "optimizer": (f"{s.optimizer} lr {s.lr:g}" + (f" momentum {s.momentum:g}" if s.optimizer == "sgd" else "")
                          + (f", weight decay {s.weight_decay:g}" if s.weight_decay else "")
                          + (f", gradient norm clipped at {s.grad_clip:g}" if s.grad_clip else "")),
            "features": "melseg: 3 x 60 log-mel (static, delta, delta-delta), 10 ms frames, whole utterances",
            "system_details": self.details(s),
            "note": self.note(s),
        }

    def crop_text(self, s: Any) -> str:
        return "off"

    def note(self, s: Any) -> str:
        return ""

    def summarize(self, fold_timings: dict[str, dict]) -> dict:
        import numpy as np

        rates = [t["train_utterances_per_s"] for t in fold_timings.values() if t.get("train_utterances_per_s")]
        return {"train_utterances_per_s": float(np.mean(rates)) if rates else None}

    def _tensors(self, data: Dataset) -> list:
        from serbench.deep.batching import float_tensor

        return R._memo(("tensors", data.fingerprint), lambda: [float_tensor(m) for m in data.inputs])

    def fit(self, data: Dataset, rows: np.ndarray, s: UtteranceSettings, ctx: FoldContext) -> UtteranceModel:
        import numpy as np
        import torch

        from serbench.experiments.protocol import holdout_split, stage_seed

        from serbench.deep.batching import Augmentation, plan_fold
        from serbench.deep.train import epoch_logger
        from serbench.deep.utterance_trainer import train_system

        rt = R.Runtime.of(ctx, s.amp)
        fit, val = holdout_split(np.asarray(rows), data.y, s.val_fraction, stage_seed(ctx.seed, ctx.fold, "val"))
        aug = Augmentation(s.aug_copies, s.aug_time_mask, s.aug_freq_mask, s.aug_shift, s.balance)
        plan = plan_fold(list(data.inputs), data.y, fit, val, aug, tensors=self._tensors(data),
                         augment_seed=stage_seed(ctx.seed, ctx.fold, "augment"),
                         balance_seed=stage_seed(ctx.seed, ctx.fold, "balance"))
        timing: dict = {"n_train": int(len(rows)), "n_fit": int(len(fit)), "n_val": int(len(val)),
                        "n_train_rows": int(len(plan.train_rows))}
        torch.manual_seed(stage_seed(ctx.seed, ctx.fold, "model"))
        channels, n_mels = plan.shape
        net = self.build(s, data.n_classes, in_channels=channels, n_mels=n_mels).to(rt.device)
        t0 = time.perf_counter()
        inputs = self.batch_inputs(net, s, plan, rt)
        timing["inputs_s"] = time.perf_counter() - t0
        if hasattr(inputs, "counts"):
            timing["n_segments"] = int(inputs.counts.sum())
        res = train_system(net, inputs, plan.labels, plan.train_rows, plan.val_rows, s, device=rt.device,
                           seed=stage_seed(ctx.seed, ctx.fold, "train"), name=self.name,
                           checkpoint=checkpoint(ctx, "model"), amp=rt.amp,
                           on_epoch=epoch_logger(ctx.say, R.hook(ctx), "utterances"))
        timing.update({"epochs": res.epochs_run, "resumed_from": res.resumed_from, "train_s": res.train_s,
                       "train_utterances": res.samples,
                       "train_utterances_per_s": res.samples_per_s if res.samples else None,
                       "epoch_s": [h["seconds"] for h in res.history], "device": str(rt.device),
                       "amp": rt.amp, "torch_threads": rt.threads})
        return UtteranceModel(net, plan.norm, {"timings": timing, "curves": {self.name: R.curve(res.history)}})

    def predict(self, model: UtteranceModel, data: Dataset, rows: np.ndarray, s: UtteranceSettings,
                ctx: FoldContext) -> FoldOutput:
        from serbench.deep.batching import predict_plan
        from serbench.deep.utterance_trainer import predict_system
        from serbench.experiments.dataset import FoldOutput

        rt = R.Runtime.of(ctx, s.amp)
        plan = predict_plan(list(data.inputs), rows, model.norm, tensors=self._tensors(data))
        inputs = self.batch_inputs(model.net, s, plan, rt)
        probs, decided = predict_system(model.net, inputs, plan.test_rows, batch=2 * s.batch, device=rt.device,
                                        amp=rt.amp)
        return FoldOutput(probs.numpy(), decided.numpy())

    # ---------------------------------------------------------------- saving
    def export(self, model: UtteranceModel, s: UtteranceSettings) -> ModelParts:
        import numpy as np

        mean = np.ascontiguousarray(model.norm.mean[..., 0].cpu().numpy())    # (C, F)
        std = np.ascontiguousarray(model.norm.std[..., 0].cpu().numpy())
        return ModelParts(tensors={**module_tensors("net.", model.net), "norm.mean": mean, "norm.std": std},
                          meta={"in_channels": int(mean.shape[0]), "n_mels": int(mean.shape[1]),
                                **self.export_meta(model.net)},
                          normalization={"per_channel_band": "x -> (x - mean) / std per (channel, mel band)",
                                         "mean": mean.tolist(), "std": std.tolist()})

    def export_meta(self, net: Any) -> dict:
        """What :meth:`network` needs to rebuild ``net`` besides the settings (override where it varies)."""
        return {}

    def network(self, s: Any, n_classes: int, meta: dict) -> Any:
        """The untrained network a saved model's weights load into (default: :meth:`build`)."""
        return self.build(s, n_classes, in_channels=int(meta["in_channels"]), n_mels=int(meta["n_mels"]))

    def restore(self, parts: ModelParts, s: UtteranceSettings, labels, device: str = "cpu") -> UtteranceModel:
        import torch

        from serbench.deep.batching import BandNorm

        t = parts.tensors
        if "norm.mean" not in t or "norm.std" not in t or "in_channels" not in parts.meta:
            raise SystemOptionError(f"the saved {self.name} model lacks its input normalization")
        net = load_module(self.network(s, len(labels), parts.meta), t, "net.", f"{self.name} network").to(device)
        norm = BandNorm(torch.from_numpy(t["norm.mean"].copy()), torch.from_numpy(t["norm.std"].copy()))
        return UtteranceModel(net, norm)


@dataclass(frozen=True)
class RecurrentSettings(UtteranceSettings):
    """The CNN + BLSTM + FC topology shared by CRNN, CRNN-CTC and CRNN-MK."""

    max_frames: int = setting(800, "random crop of longer TRAINING utterances (frames of 10 ms); 0 = off",
                              check=NON_NEGATIVE)
    channels: tuple[int, ...] = setting((16, 32, 64), "conv channels per block", check=None)
    freq_pools: tuple[int, ...] = setting((2, 2, 2), "frequency pooling per block")
    time_pools: tuple[int, ...] = setting((2, 2, 1), "time pooling per block")
    hidden: int = setting(128, "BLSTM units per direction", check=AT_LEAST_ONE)
    lstm_layers: int = setting(1, "BLSTM layers", check=AT_LEAST_ONE)
    fc_hidden: int = setting(64, "FC hidden units", check=AT_LEAST_ONE)
    dropout: float = setting(0.3, "dropout", check=Interval(0, 1, "left"))

    def check(self) -> None:
        n = len(self.channels)
        if n == 0 or any(c < 1 for c in self.channels):
            raise self.bad("channels", "give one positive channel count per conv block, e.g. 16,32,64")
        for key in ("freq_pools", "time_pools"):
            pools = getattr(self, key)
            if len(pools) != n or any(p < 1 for p in pools):
                raise self.bad(key, f"give one pool factor >= 1 per conv block ({n} blocks, as channels)")
        need = 2 * math.prod(self.time_pools)
        if 0 < self.max_frames < max(1, need):
            raise self.bad("max_frames", f"keep at least {need} frames (2 output frames), or 0")


def recurrent_kwargs(s: RecurrentSettings) -> dict:
    """The constructor arguments the CRNN family shares."""
    return dict(channels=s.channels, freq_pools=s.freq_pools, time_pools=s.time_pools, hidden=s.hidden,
                lstm_layers=s.lstm_layers, fc_hidden=s.fc_hidden, dropout=s.dropout)


SUMMARIES = ("mean", "last", "attention")
#: The small network every tiny profile of the CRNN family uses.
TINY_RNN = {"max_frames": 40, "channels": (4, 8), "freq_pools": (4, 4), "time_pools": (2, 2), "hidden": 8,
            "fc_hidden": 8}

__all__ = ["UtteranceSettings", "RecurrentSettings", "UtteranceSystem", "UtteranceModel", "recurrent_kwargs",
           "FAST", "TINY", "TINY_RNN", "SUMMARIES"]
