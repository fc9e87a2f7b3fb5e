"""CNN+SRU (Jiang et al.) and the two ablations of its Table III: ``cnn`` and ``sru``.

Per fold, on the training speakers only: fit the input normalization, train the segment CNN (stage 1;
each segment carries its utterance's label), freeze it and train the SRU on the FC7 features of the N
segments (stage 2); then predict the held-out speaker. Each stage checkpoints (``<run>.partial/
checkpoints/<fold>/``): a killed run, re-run with the same command, skips finished folds and continues
the interrupted stage, bit-identically on CPU.

* ``cnn-sru``: the cascade; stored as ``cnn-sru-N<segments>``. Beyond the paper: ``--set sru_crossfit=K``
  trains K CNNs on K speaker groups of the fold and SRU k on the FC7 of the group CNN k never saw (the test
  decision averages the K SRUs; ``cnn-sru-xfitK-N*``); ``sru_residual`` makes stage 2 a correction added to
  the mean of the frozen CNN's segment logits; ``sru_fuse=w`` decides by ``(1 - w)`` x the cascade's
  probabilities + ``w`` x the mean of its own CNNs' segment softmaxes, a variant stored under its own name
  (``cnn-sru-fuse75-N3`` for ``fast``'s 0.75) whose run record and tables say so.
* ``--set ensemble=k`` (all three) trains k models per fold, each from its own seed, and averages their
  test probabilities; the first is the single model itself.
* ``cnn``: stage 1 alone; an utterance's decision is the mean of its segments' softmax.
* ``sru``: stage 2 alone on low-level features: per segment the mean and standard deviation over time of
  the 3 x 60 log-mel channels, a ``(N, 360)`` sequence per utterance.

Settings and profiles: :mod:`.cnn_sru_settings`; the stages: :mod:`.cnn_sru_training`; the models and
epoch loops: :mod:`serbench.deep`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serbench.systems import deep_runtime as R
from serbench.systems.base import ModelParts, System, SystemOptionError, load_module, module_tensors
from serbench.systems.builtin import cnn_sru_training as T
from serbench.systems.builtin.cnn_sru_settings import (
    FROM_SCRATCH, CascadeSettings, CNNSettings, cnn_epochs,
)
from serbench.systems.naming import Naming, flag, member_stage, number, percent
from serbench.systems.registry import register

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset, FoldOutput
    from serbench.experiments.harness import FoldContext


@dataclass
class CascadeModel:
    """A fold's fitted stages: (CNN, normalizer) pairs and their SRU heads, one per ensemble member and
    cross-fitted group (one of each in the paper's recipe); predictions average over them."""

    cnns: list = field(default_factory=list)
    heads: list = field(default_factory=list)
    sru_norm: Any = None
    info: dict = field(default_factory=dict)


def _early_stopping(s: CascadeSettings) -> str:
    if s.val_speakers:
        return (f"best validation loss on {s.val_speakers} held-out training speaker(s), patience {s.patience}")
    if s.val_fraction > 0:
        return f"best validation loss on {s.val_fraction:.0%} of the training utterances, patience {s.patience}"
    return "off (fixed epochs)"


def _stats(norm) -> tuple:
    import numpy as np

    return (np.ascontiguousarray(norm.mean.detach().cpu().numpy()),
            np.ascontiguousarray(norm.std.detach().cpu().numpy()))


class _Cascade(System):
    """Shared machinery of cnn-sru, cnn and sru."""

    kind = "deep"
    inputs = "melseg"
    table = "cnn-sru"
    settings_class = CascadeSettings
    naming = Naming(suffix=(number("segments", "N"), flag("speaker_norm", "spknorm")))
    paper = "Jiang et al., speech emotion recognition with a deep CNN and a Simple Recurrent Unit"
    uses_cnn = True
    uses_sru = True
    preload = ("torch", "serbench.deep.train")

    #: Settings of the stage 2 on CNN features, which only cnn-sru has.
    CASCADE_ONLY = ("sru_crossfit", "sru_residual", "sru_fuse")

    def settings(self, profile: str | None = None, overrides: dict | None = None) -> CascadeSettings:
        s = super().settings(profile, overrides)
        if self.uses_cnn and self.uses_sru:
            return s
        # A profile's stage-2 choice (fast's sru_residual) means nothing to an ablation; a --set of one is
        # refused by check_data.
        defaults = {k: s.fields()[k].default for k in self.CASCADE_ONLY}
        return s.replace(**{k: v for k, v in defaults.items() if k not in (overrides or {})})

    def check_data(self, data: Dataset, s: CascadeSettings) -> None:
        # The ablations have no SRU on CNN features; cnn-sru overrides this.
        for key in self.CASCADE_ONLY:
            if getattr(s, key):
                raise SystemOptionError(f"--set {key}={getattr(s, key)}: only --model cnn-sru has an SRU on CNN "
                                        "features")

    # ---------------------------------------------------------------- description
    def describe(self, s: CascadeSettings) -> dict:
        pretrained = getattr(s, "pretrained", None)
        return {
            "model": self.name, "segments": s.segments,
            "pretrained": (str(T.resolve(pretrained)) if pretrained else FROM_SCRATCH) if self.uses_cnn else None,
            "cnn_decision": "mean of segment softmax probabilities" if self.name == "cnn" else None,
            "time_shifts": (f"training segments shifted by up to +-{s.cnn_time_shift:g} of their width; test "
                            f"probabilities averaged over {len(T.test_offsets(s))} shift(s)")
                           if self.uses_cnn and R.image_context(s) else None,
            "freq_shifts": (f"training segments moved by up to +-{s.cnn_freq_shift:g} of their height in "
                            "mel rows") if self.uses_cnn and s.cnn_freq_shift else None,
            "ensemble": (f"{s.ensemble} models per fold from their own seeds; test probabilities averaged"
                         if s.ensemble > 1 else None),
            "sru_input": self._sru_input(s),
            "decision": self._decision(s),
            "sru_pool": "last" if self.uses_sru else None,
            "normalization": "per-channel mean/std of the training fold's inputs",
            "early_stopping": _early_stopping(s),
            "cnn_epochs": cnn_epochs(s) if self.uses_cnn else None,
            "cnn_batchnorm": T.batchnorm(s) if self.uses_cnn else None,
            "note": self.note(s),
        }

    def _sru_input(self, s: CascadeSettings) -> str | None:
        return None

    def _decision(self, s: CascadeSettings) -> str | None:
        """How a test utterance's probabilities are made, where that departs from the paper (else None);
        the reports print it under every table with this run."""
        return None

    def note(self, s: CascadeSettings) -> str:
        pretrained = getattr(s, "pretrained", None)
        if not self.uses_cnn:
            return "no CNN (SRU on low-level log-mel statistics)"
        cnn = f"CNN fine-tuned from {T.resolve(pretrained)}" if pretrained else "CNN trained from scratch"
        decision = self._decision(s)
        return f"{cnn}; decision: {decision}" if decision else cnn

    def summarize(self, fold_timings: dict[str, dict]) -> dict:
        import numpy as np

        rates = [t["cnn_segments_per_s"] for t in fold_timings.values() if t.get("cnn_segments_per_s")]
        return {"cnn_train_segments_per_s": float(np.mean(rates)) if rates else None,
                "cnn_collapsed_folds": sorted(k for k, t in fold_timings.items() if t.get("cnn_collapsed"))}

    # ---------------------------------------------------------------- training
    def _holdout(self, data: Dataset, rows: np.ndarray, s: CascadeSettings, ctx: FoldContext):
        """``(fit, val)``: the training rows and those held out for early stopping (training speakers only)."""
        from serbench.experiments.protocol import holdout_split, speaker_holdout, stage_seed

        seed = stage_seed(ctx.seed, ctx.fold, "val")
        return (speaker_holdout(rows, data.speakers, s.val_speakers, seed) if s.val_speakers
                else holdout_split(rows, data.y, s.val_fraction, seed))

    def fit(self, data: Dataset, rows: np.ndarray, s: CascadeSettings, ctx: FoldContext) -> CascadeModel:
        rt = R.Runtime.of(ctx, s.amp)
        fit, val = self._holdout(data, rows, s, ctx)
        timing: dict = {"n_train": int(len(rows)), "n_fit": int(len(fit)), "n_val": int(len(val))}
        model = CascadeModel(info={"timings": timing, "curves": {}})
        for member in range(s.ensemble):
            self._fit(model, data, fit, val, s, ctx, rt, member_stage("", member))
        if s.ensemble > 1:
            timing["ensemble"] = s.ensemble
        timing["device"] = str(rt.device)
        timing["amp"] = rt.amp             # what ran: the amp setting only applies on CUDA
        timing["torch_threads"] = rt.threads
        return model

    def _fit(self, model: CascadeModel, data: Dataset, fit: np.ndarray, val: np.ndarray, s: CascadeSettings,
             ctx: FoldContext, rt: "R.Runtime", tag: str = "") -> None:
        """Train one ensemble member, appending its stages to ``model``; ``tag`` ends its stage names (and so
        its seeds and checkpoints): empty for the first member."""
        raise NotImplementedError

    # ---------------------------------------------------------------- prediction
    def predict(self, model: CascadeModel, data: Dataset, rows: np.ndarray, s: CascadeSettings,
                ctx: FoldContext) -> FoldOutput:
        import torch

        from serbench.deep.models import cnn_utterance_probs
        from serbench.deep.train import predict_logits
        from serbench.experiments.dataset import FoldOutput

        rt = R.Runtime.of(ctx, s.amp)
        probs, cnn_probs = [], []
        for (cnn, norm), head in zip(model.cnns, model.heads):
            for offset in T.test_offsets(s):
                feats = T.fc7(model.info, cnn, norm, data, rows, s, rt, offset=offset)
                probs.append(T.softmax(head, feats, s, rt))
                if s.sru_fuse:      # the CNN's own decision is its FC8 on these FC7: no second CNN pass
                    logits = predict_logits(cnn.classifier[6], feats.reshape(-1, feats.shape[-1]),
                                            batch=s.cnn_batch * 4, device=rt.device, transform=lambda v: v,
                                            amp=rt.amp)
                    cnn_probs.append(cnn_utterance_probs(logits, s.segments))
        out = torch.stack(probs).mean(0).double()
        if s.sru_fuse:
            out = (1 - s.sru_fuse) * out + s.sru_fuse * torch.stack(cnn_probs).mean(0).double()
        return FoldOutput(out.cpu().numpy())

    # ---------------------------------------------------------------- saving
    def export(self, model: CascadeModel, s: CascadeSettings) -> ModelParts:
        tensors: dict = {}
        stats: dict = {}
        for i, (cnn, norm) in enumerate(model.cnns):
            tensors.update(module_tensors(f"cnn{i}.", cnn))
            tensors[f"cnn{i}_norm.mean"], tensors[f"cnn{i}_norm.std"] = _stats(norm)
            stats[f"cnn{i}"] = {"mean": norm.mean.tolist(), "std": norm.std.tolist()}
        for i, head in enumerate(model.heads):
            tensors.update(module_tensors(f"sru{i}.", head))
        if model.sru_norm is not None:
            tensors["sru_norm.mean"], tensors["sru_norm.std"] = _stats(model.sru_norm)
            stats["sru"] = {"mean": model.sru_norm.mean.tolist(), "std": model.sru_norm.std.tolist()}
        return ModelParts(tensors=tensors, normalization={"per_channel": "x -> (x - mean) / std", **stats},
                          meta={"n_cnns": len(model.cnns), "n_heads": len(model.heads),
                                "head_input": int(model.heads[0].sru.input_size) if model.heads else None})

    def restore(self, parts: ModelParts, s: CascadeSettings, labels, device: str = "cpu") -> CascadeModel:
        import torch

        from serbench.deep import data as D
        from serbench.deep.models import SRUClassifier, build_cnn

        t, meta, n_classes = parts.tensors, parts.meta, len(labels)
        norm = (lambda key: D.Normalizer(torch.from_numpy(t[f"{key}.mean"].copy()),
                                         torch.from_numpy(t[f"{key}.std"].copy())))
        model = CascadeModel(info={"timings": {}, "curves": {}})   # predict adds its timings here
        try:
            for i in range(int(meta.get("n_cnns") or 0)):
                cnn = build_cnn(n_classes, width=s.cnn_width, dropout=s.dropout, batchnorm=T.batchnorm(s))
                model.cnns.append((load_module(cnn, t, f"cnn{i}.", f"CNN {i}").to(device), norm(f"cnn{i}_norm")))
            for i in range(int(meta.get("n_heads") or 0)):
                skip = torch.nn.Linear(int(meta["head_input"]), n_classes) if s.sru_residual else None
                head = SRUClassifier(int(meta["head_input"]), n_classes, hidden=s.sru_hidden,
                                     init_std=s.sru_init_std, init_bias=s.sru_init_bias, skip=skip)
                model.heads.append(load_module(head, t, f"sru{i}.", f"SRU {i}").to(device))
            if "sru_norm.mean" in t:
                model.sru_norm = norm("sru_norm")
        except KeyError as exc:
            raise SystemOptionError(f"the saved {self.name} model lacks {exc.args[0]}") from None
        if (self.uses_cnn and not model.cnns) or (self.uses_sru and not model.heads):
            raise SystemOptionError(f"the saved {self.name} model lacks a stage ({len(model.cnns)} CNN(s), "
                                    f"{len(model.heads)} SRU(s))")
        return model


@register
class CNNSRU(_Cascade):
    name = "cnn-sru"
    order = 20
    summary = "CNN (AlexNet) on N log-mel segments + SRU over their FC7 features (Jiang et al.)"
    settings_class = CNNSettings
    # A fused decision is not the paper's system: it gets its own stored name (cnn-sru-fuse75-N3).
    naming = Naming(suffix=(number("sru_crossfit", "xfit", omit=0), percent("sru_fuse", "fuse", omit=0.0),
                            number("segments", "N"), flag("speaker_norm", "spknorm")))

    def _sru_input(self, s: CascadeSettings) -> str:
        k = s.sru_crossfit
        residual = ("; the SRU's output corrects the mean of the CNN's segment logits (FC8, frozen)"
                    if s.sru_residual else "")
        return "FC7 features of the N segments (CNN frozen)" + residual + (
            f"; cross-fitted over {k} groups of training speakers: SRU k learns from group k's FC7 under CNN k, "
            f"trained on the other groups; test = mean of the {k} SRUs' probabilities" if k else "")

    def _decision(self, s: CascadeSettings) -> str | None:
        if not s.sru_fuse:
            return None
        return (f"{1 - s.sru_fuse:g} x the cascade's probabilities + {s.sru_fuse:g} x the mean of its own CNNs' "
                f"segment softmax (sru_fuse={s.sru_fuse:g}; the paper: the cascade's alone)")

    def check_data(self, data: Dataset, s: CascadeSettings) -> None:
        import numpy as np

        k = s.sru_crossfit
        if k:
            n_spk = len(np.unique(data.speakers))
            if n_spk - 1 < k:   # a LOSO fold trains on all speakers but one
                raise SystemOptionError(f"--set sru_crossfit={k} needs at least {k} training speakers per fold; "
                                        f"{data.corpus} has {n_spk} speakers (use sru_crossfit=0 or a smaller K)")

    def _fit(self, model, data, fit, val, s, ctx, rt, tag="") -> None:
        if not s.sru_crossfit:
            # The paper: the SRU learns from the FC7 of the same utterances the CNN was trained on.
            cnn, norm = T.fit_cnn(model.info, data, fit, val, s, ctx, rt, f"cnn{tag}")
            model.cnns.append((cnn, norm))
            model.heads.append(T.sru_on_fc7(model.info, cnn, norm, data, fit, val, s, ctx, rt, f"sru{tag}"))
            return
        # Cross-fitted stage 2 (not in the paper): K speaker groups of the fit utterances; CNN k trains on
        # the other groups, SRU k on group k's FC7 from CNN k (features of utterances that CNN never saw,
        # like the test ones); the test decision averages the K SRUs.
        from sklearn.model_selection import GroupKFold

        k = s.sru_crossfit
        speakers = data.speakers[fit]
        if len(set(speakers)) < k:
            raise SystemOptionError(f"--set sru_crossfit={k} needs at least {k} training speakers; fold {ctx.fold} "
                                    f"has {len(set(speakers))} (use --set sru_crossfit=0 or a smaller K)")
        for i, (cnn_idx, sru_idx) in enumerate(GroupKFold(n_splits=k).split(fit, groups=speakers)):
            cnn, norm = T.fit_cnn(model.info, data, fit[cnn_idx], val, s, ctx, rt, f"cnn{i}{tag}")
            model.cnns.append((cnn, norm))
            model.heads.append(T.sru_on_fc7(model.info, cnn, norm, data, fit[sru_idx], val, s, ctx, rt,
                                            f"sru{i}{tag}"))
        model.info["timings"]["sru_crossfit"] = k


@register
class CNNOnly(_Cascade):
    name = "cnn"
    order = 21
    summary = "the CNN of CNN+SRU alone: mean of its segments' softmax (Table III ablation)"
    settings_class = CNNSettings
    uses_sru = False

    def _fit(self, model, data, fit, val, s, ctx, rt, tag="") -> None:
        model.cnns.append(T.fit_cnn(model.info, data, fit, val, s, ctx, rt, f"cnn{tag}"))

    def predict(self, model, data, rows, s, ctx) -> FoldOutput:
        import torch

        from serbench.deep.models import cnn_utterance_probs
        from serbench.deep.train import predict_logits
        from serbench.experiments.dataset import FoldOutput

        rt = R.Runtime.of(ctx, s.amp)
        images = R.segment_images(data, s, rt)
        x = images[R.segment_rows(rows, s.segments).to(images.device)]
        probs = [cnn_utterance_probs(predict_logits(cnn, x, batch=s.cnn_batch * 4, device=rt.device,
                                                    transform=T.cnn_input(norm, s, offset), amp=rt.amp), s.segments)
                 for cnn, norm in model.cnns for offset in T.test_offsets(s)]
        return FoldOutput(torch.stack(probs).mean(0).double().cpu().numpy())


@register
class SRUOnly(_Cascade):
    name = "sru"
    order = 22
    summary = "the SRU of CNN+SRU alone, on per-segment log-mel statistics (Table III ablation)"
    settings_class = CascadeSettings
    uses_cnn = False

    def _sru_input(self, s: CascadeSettings) -> str:
        return "per-segment mean and std of the 3x60 log-mel frames (360-d)"

    def _fit(self, model, data, fit, val, s, ctx, rt, tag="") -> None:
        import torch

        from serbench.deep import data as D

        seqs = R.lowlevel(data, s, rt)
        # The same for every ensemble member: it depends on the training rows only.
        model.sru_norm = D.Normalizer.fit_last(seqs[torch.as_tensor(fit, device=seqs.device)])
        y = torch.as_tensor(data.y, dtype=torch.long)
        sel = (lambda idx: seqs[torch.as_tensor(idx, dtype=torch.long, device=seqs.device)])
        model.heads.append(T.fit_head(model.info, sel(fit), y[fit], sel(val) if len(val) else None, y[val],
                                      seqs.shape[-1], data.n_classes, s, ctx, rt, f"sru{tag}",
                                      transform=model.sru_norm))

    def predict(self, model, data, rows, s, ctx) -> FoldOutput:
        import torch

        from serbench.experiments.dataset import FoldOutput

        rt = R.Runtime.of(ctx, s.amp)
        seqs = R.lowlevel(data, s, rt)
        x = seqs[torch.as_tensor(rows, dtype=torch.long, device=seqs.device)]
        probs = torch.stack([T.softmax(head, x, s, rt, transform=model.sru_norm) for head in model.heads]).mean(0)
        return FoldOutput(probs.double().cpu().numpy())
