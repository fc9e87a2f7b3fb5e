"""``ssl-probe``: a SUPERB-style probe of a frozen self-supervised upstream's pooled layers.

Input: an SSL feature set (:mod:`serbench.features.ssl`): per utterance, the mean and std over time of
every hidden state, ``L`` blocks of ``2 * hidden`` columns. Per fold, on the training speakers only:
each column is standardized with the training rows' statistics, the blocks are summed with softmax
weights (one learned weight per layer, as SUPERB's weighted sum), and a small MLP (one hidden layer,
ReLU, dropout) classifies the sum. Trained with AdamW for a fixed number of epochs (no early stopping,
so no validation split is taken from the training speakers); the learned layer weights are recorded
per fold. ``fast`` is sized for CPUs, ``tiny`` trains in a second, ``paper`` follows SUPERB's emotion
recognition probe (hidden 256, lr 1e-4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from serbench.systems.base import ModelParts, System, SystemOptionError
from serbench.systems.naming import Naming, flag, text
from serbench.systems.registry import register
from serbench.systems.settings import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Settings, setting

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset, FoldOutput
    from serbench.experiments.harness import FoldContext


@dataclass(frozen=True)
class ProbeSettings(Settings):
    feature: str | None = setting(None, "the self-supervised upstream set whose pooled layers the probe reads",
                                  flag="--feature")
    hidden: int = setting(256, "width of the MLP's hidden layer", check=AT_LEAST_ONE)
    epochs: int = setting(100, "training epochs (fixed: no early stopping)", check=AT_LEAST_ONE)
    lr: float = setting(1e-4, "AdamW learning rate", check=POSITIVE)
    weight_decay: float = setting(1e-2, "AdamW weight decay", check=NON_NEGATIVE)
    dropout: float = setting(0.1, "dropout before the output layer", check=FRACTION)
    batch: int = setting(32, "utterances per step", check=AT_LEAST_ONE)

    PROFILES = {"paper": {}, "fast": {"hidden": 128, "epochs": 60, "lr": 1e-3},
                "tiny": {"hidden": 16, "epochs": 15, "lr": 3e-3}}

    def check(self) -> None:
        from serbench.features.ssl import is_ssl

        if self.feature is not None and not is_ssl(self.feature):
            raise self.bad("feature", "ssl-probe reads a self-supervised upstream's layers (`serbench models`); "
                                      "for the functional sets use `serbench baseline`")


@dataclass
class FittedProbe:
    net: Any
    mean: Any
    scale: Any
    info: dict


def _build(n_layers: int, width: int, hidden: int, n_classes: int, dropout: float):
    import torch
    from torch import nn

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_logits = nn.Parameter(torch.zeros(n_layers))
            self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, n_classes))

        def forward(self, x):  # (B, L, W) -> (B, C)
            w = torch.softmax(self.layer_logits, 0)
            return self.mlp((x * w[None, :, None]).sum(1))

    return Probe()


@register
class SSLProbe(System):
    name = "ssl-probe"
    kind = "deep"
    inputs = "features"
    table = "systems"
    order = 60
    settings_class = ProbeSettings
    naming = Naming(prefix=(text("feature"),), suffix=(flag("speaker_norm", "spknorm"),))
    summary = "SUPERB-style probe: softmax-weighted sum of an SSL upstream's pooled layers + MLP (--feature NAME)"
    paper = "Yang et al. 2021 (SUPERB) weighted-sum probe; EmoBox (Ma et al. 2024) for the upstreams"

    def settings(self, profile: str | None = None, overrides: dict | None = None) -> Settings:
        overrides = dict(overrides or {})
        if overrides.get("feature"):
            from serbench.features.registry import FeatureSetError, get_feature_set

            try:
                overrides["feature"] = get_feature_set(overrides["feature"]).name
            except FeatureSetError:
                pass
        s = self.settings_class.build(profile, overrides, system=self.name)
        if s.feature is None:
            from serbench.features.ssl import UPSTREAMS

            raise SystemOptionError(f"{self.name} needs --feature: one of {', '.join(u.name for u in UPSTREAMS)}")
        return s

    def describe(self, s: Settings) -> dict:
        from serbench.features.ssl import provenance

        return {"upstream": provenance(s.feature),
                "probe": "per-column z-score (training rows) -> softmax-weighted sum of the layer blocks -> "
                         "Linear-ReLU-Dropout-Linear, AdamW, fixed epochs"}

    def check_data(self, data: Dataset, s: Settings) -> None:
        from serbench.features.ssl import check_layer_data

        check_layer_data(data, s.feature, "auto")

    def _tensor(self, data: Dataset, rows: np.ndarray, model: FittedProbe, n_layers: int, device):
        """The standardized rows as float32 ``(rows, layers, width)``, built one layer block at a time (a
        float64 copy of one block of the rows at most, never of every column)."""
        import numpy as np
        import torch

        from serbench.features.ssl import layer_blocks

        out = None
        for k, (a, b) in enumerate(layer_blocks(data.inputs.shape[1], n_layers)):
            Z = (np.asarray(data.inputs[rows, a:b], dtype=np.float64) - model.mean[a:b]) / model.scale[a:b]
            if out is None:
                out = torch.empty((len(Z), n_layers, b - a), dtype=torch.float32)
            out[:, k] = torch.from_numpy(Z.astype(np.float32))
        return out.to(device)

    @staticmethod
    def _statistics(data: Dataset, rows: np.ndarray, n_layers: int):
        """Per column mean and std (ddof 0) of the training rows, one layer block at a time."""
        import numpy as np

        from serbench.features.ssl import layer_blocks

        means, stds = [], []
        for a, b in layer_blocks(data.inputs.shape[1], n_layers):
            X = np.asarray(data.inputs[rows, a:b], dtype=np.float64)
            means.append(X.mean(0))
            stds.append(X.std(0))
        return np.concatenate(means), np.concatenate(stds)

    def fit(self, data: Dataset, rows: np.ndarray, s: Settings, ctx: FoldContext) -> FittedProbe:
        import numpy as np
        import torch

        from serbench.systems.deep_runtime import Runtime

        rt = Runtime.of(ctx, amp=False)
        n_layers = int(data.meta.get("layer_blocks") or 0)
        if n_layers < 1:
            raise SystemOptionError(f"{self.name}: the dataset does not say how its columns split into layers "
                                    "(run it through `serbench deep --model ssl-probe --feature NAME`)")
        mean, scale = self._statistics(data, rows, n_layers)
        scale[scale < 1e-12] = 1.0     # a constant column carries nothing; keep it at zero, not NaN
        torch.manual_seed(int(ctx.seed))
        net = _build(n_layers, len(mean) // n_layers, s.hidden, data.n_classes, s.dropout).to(rt.device)
        model = FittedProbe(net, mean, scale, {})
        x = self._tensor(data, rows, model, n_layers, rt.device)
        y = torch.as_tensor(data.y[rows], dtype=torch.long, device=rt.device)
        opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        gen = torch.Generator().manual_seed(int(ctx.seed))
        curve = []
        net.train()
        for _ in range(s.epochs):
            order = torch.randperm(len(y), generator=gen).to(rt.device)
            total = 0.0
            for i in range(0, len(y), s.batch):
                idx = order[i:i + s.batch]
                loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            curve.append({"loss": total / len(y)})
        net.eval()
        weights = torch.softmax(net.layer_logits.detach(), 0).cpu().numpy()
        model.info = {"layer_weights": {f"L{i:02d}": float(w) for i, w in enumerate(weights)},
                      "top_layer": int(np.argmax(weights)), "n_train": int(len(rows)),
                      "curves": {"probe": curve}}
        return model

    def predict(self, model: FittedProbe, data: Dataset, rows: np.ndarray, s: Settings,
                ctx: FoldContext) -> FoldOutput:
        import numpy as np
        import torch

        from serbench.experiments.dataset import FoldOutput

        device = next(model.net.parameters()).device
        n_layers = int(model.net.layer_logits.shape[0])
        with torch.no_grad():
            logits = model.net(self._tensor(data, rows, model, n_layers, device))
        return FoldOutput(torch.softmax(logits, 1).cpu().numpy().astype(np.float64))

    def export(self, model: FittedProbe, s: Settings) -> ModelParts:
        import numpy as np

        from serbench.systems.base import module_tensors

        n_layers = int(model.net.layer_logits.shape[0])
        return ModelParts(tensors={**module_tensors("probe.", model.net), "mean": np.asarray(model.mean),
                                   "scale": np.asarray(model.scale)},
                          meta={"layers": n_layers, "n_features": int(len(model.mean))},
                          normalization={"standardize": "x -> (x - mean) / scale, fitted on every training row"})

    def restore(self, parts: ModelParts, s: Settings, labels: Sequence[str], device: str = "cpu") -> FittedProbe:
        import numpy as np

        from serbench.systems.base import load_module

        n_layers, width = int(parts.meta["layers"]), int(parts.meta["n_features"])
        net = _build(n_layers, width // n_layers, s.hidden, len(labels), s.dropout)
        load_module(net, {k: v for k, v in parts.tensors.items() if k.startswith("probe.")}, "probe.", self.name)
        return FittedProbe(net.to(device), np.asarray(parts.tensors["mean"]), np.asarray(parts.tensors["scale"]),
                           {})
