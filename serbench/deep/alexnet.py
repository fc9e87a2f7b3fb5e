"""AlexNet (5 conv + 3 FC) with torchvision-compatible parameter names.

The module layout mirrors torchvision's ``alexnet`` so that its state dict keys and
shapes match exactly: ``features.{0,3,6,8,10}`` (convolutions), ``avgpool``
(``AdaptiveAvgPool2d((6, 6))``), ``classifier.{1,4,6}`` (FC6, FC7, FC8). ImageNet
weights therefore load from a local file with :func:`load_pretrained`. The code is
written from the AlexNet paper's architecture, not copied.

``width`` scales every conv and FC width (1.0 = the original network); it exists for
the CPU ``fast`` profile. Pretrained weights need ``width == 1``.

``batchnorm=True`` (training from scratch only) puts a ``BatchNorm2d`` before each conv
ReLU: the ReLU at ``features.{1,4,7,9,11}`` becomes ``Sequential(BatchNorm2d, ReLU)``, so
the conv and FC parameter names stay torchvision's and only ``features.<k>.0.*`` is added.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from serbench.errors import SerbenchError

#: Smallest square input for which the three max-pools still leave one pixel.
MIN_INPUT_SIZE = 63


class PretrainedError(SerbenchError):
    """A ``--pretrained`` weights file cannot be used with this AlexNet."""


def _w(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


class AlexNet(nn.Module):
    """AlexNet for ``(B, 3, S, S)`` images (S >= 63) -> ``(B, num_classes)`` logits.

    ``fc7(x)`` gives the ``(B, fc_dim)`` FC7 activations (after ReLU; 4096 at width 1),
    the segment feature the CNN+SRU model feeds to the SRU.
    """

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5, width: float = 1.0,
                 batchnorm: bool = False) -> None:
        super().__init__()
        if width <= 0:
            raise SerbenchError(f"cnn_width must be > 0, got {width}")
        c1, c2, c3, c4, c5 = (_w(n, width) for n in (64, 192, 384, 256, 256))
        self.width = float(width)
        self.batchnorm = bool(batchnorm)

        def act(channels: int) -> nn.Module:
            # At the index of torchvision's ReLU, so the conv indices (0, 3, 6, 8, 10) do not move.
            if not batchnorm:
                return nn.ReLU(inplace=True)
            return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.fc_dim = _w(4096, width)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),   # features.0
            act(c1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),              # features.3
            act(c2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),              # features.6
            act(c3),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),              # features.8
            act(c4),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),              # features.10
            act(c5),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        # Adaptive pooling keeps FC6's input at c5*6*6 whatever the image size,
        # so the ImageNet FC weights fit smaller CPU images too.
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(c5 * 6 * 6, self.fc_dim),                       # classifier.1 (FC6)
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(self.fc_dim, self.fc_dim),                      # classifier.4 (FC7)
            nn.ReLU(inplace=True),
            nn.Linear(self.fc_dim, num_classes),                      # classifier.6 (FC8)
        )
        self.init_weights()

    def init_weights(self) -> None:
        """He (fan-in, ReLU) initialization for conv/FC6/FC7, small normal for FC8, zero biases.

        PyTorch's default init shrinks the activations through 7 ReLU layers, so training
        from scratch (no ImageNet weights) barely moves for many epochs; He init keeps their
        scale. Pretrained weights overwrite all of this.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier[6].weight, 0.0, 0.01)

    @property
    def num_classes(self) -> int:
        return self.classifier[6].out_features

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise SerbenchError(
                f"AlexNet needs (B, 3, H, W) images with H, W >= {MIN_INPUT_SIZE}; got {tuple(x.shape)}"
                " (raise the image_size setting)")

    def fc7(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, fc_dim)`` FC7 activations (dropout active only in train mode)."""
        self._check(x)
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:6](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, num_classes)`` logits."""
        return self.classifier[6](self.fc7(x))

    def replace_head(self, num_classes: int) -> None:
        """A fresh FC8 for ``num_classes`` outputs (the emotions instead of ImageNet's 1000)."""
        old = self.classifier[6]
        new = nn.Linear(old.in_features, num_classes).to(old.weight.device)
        nn.init.normal_(new.weight, 0.0, 0.01)
        nn.init.zeros_(new.bias)
        self.classifier[6] = new


def load_pretrained(model: AlexNet, path: str | os.PathLike, *, num_classes: int | None = None) -> dict:
    """Load a torchvision-named AlexNet state dict from ``path`` into ``model``.

    Every conv, FC6 and FC7 tensor must be present with the shape of ``model``; FC8
    (``classifier.6``) is taken when its shape fits and otherwise replaced by a fresh
    layer of ``num_classes`` outputs (default: ``model.num_classes``). The file is read
    with ``torch.load(weights_only=True)``: it must hold a plain dict of tensors (a
    ``{"state_dict": {...}}`` wrapper is accepted). Returns ``{"path", "bytes", "head"}``,
    where ``head`` says whether FC8 came from the file or was re-initialized.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise PretrainedError(f"--pretrained {path}: no such file; give a local AlexNet state-dict file"
                              " (e.g. torchvision's alexnet-owt-7be5be79.pth) or leave it out to train from scratch")
    if model.batchnorm:
        raise PretrainedError(f"--pretrained {path}: ImageNet AlexNet has no batch normalization; build the"
                              " model with cnn_batchnorm=false (a run turns it off itself with --pretrained)")
    if model.width != 1.0:
        raise PretrainedError(f"--pretrained {path}: ImageNet weights need cnn_width=1 (the profile has"
                              f" cnn_width={model.width}); use --set cnn_width=1 or the paper profile")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable or unsafe file: say which and why
        raise PretrainedError(f"--pretrained {path}: cannot be read as a weights-only PyTorch state dict"
                              f" ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"--pretrained {path}: expected a dict of tensors (a state dict)")
    num_classes = num_classes or model.num_classes
    own = model.state_dict()
    body = {k for k in own if not k.startswith("classifier.6.")}
    missing = sorted(body - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in body & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''}")
        if wrong:
            parts.append("wrong shapes " + ", ".join(
                f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in wrong[:4]))
        raise PretrainedError(f"--pretrained {path}: not a torchvision-style AlexNet state dict: "
                              + "; ".join(parts))
    head_ok = all(k in state and tuple(state[k].shape) == (num_classes,) + tuple(own[k].shape[1:])
                  for k in ("classifier.6.weight", "classifier.6.bias"))
    if model.num_classes != num_classes:
        model.replace_head(num_classes)
    keep = {k: v for k, v in state.items() if k in body or head_ok}
    with torch.no_grad():
        result = model.load_state_dict(keep, strict=False)
    assert not result.unexpected_keys
    if not head_ok:
        # ImageNet's 1000-way FC8 is useless for emotions: a fresh layer, as the paper does.
        model.replace_head(num_classes)
    return {"path": str(path), "bytes": path.stat().st_size, "head": "loaded" if head_ok else "re-initialized"}
