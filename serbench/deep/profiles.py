"""Training profiles: the paper's settings, a CPU-sized ``fast`` one, and ``tiny`` for tests.

Every field can be overridden (``--set key=value`` on the command line, or the
``overrides`` mapping of :func:`serbench.deep.run.run_deep`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Mapping

from serbench.errors import SerbenchError


CNN_OPTIMIZERS = ("sgd", "adam")


class ProfileError(SerbenchError):
    """An unknown profile name, setting name, or a bad setting value."""


@dataclass(frozen=True)
class Profile:
    """All settings of a deep run. ``cnn_*`` = stage 1 (segment CNN), ``sru_*`` = stage 2."""

    name: str
    image_size: int = 227           # segments resized (bilinear) to image_size x image_size
    cnn_width: float = 1.0          # AlexNet width multiplier (1 = AlexNet; pretrained needs 1)
    cnn_epochs: int = 400
    cnn_batch: int = 30
    cnn_lr: float = 0.001
    cnn_optimizer: str = "sgd"      # the paper's SGD, or 'adam' (not in the paper; for training from scratch)
    cnn_momentum: float = 0.9       # not stated in the paper; plain SGD with lr 1e-3 barely moves from scratch
    cnn_weight_decay: float = 0.0
    dropout: float = 0.5
    sru_hidden: int = 4096
    sru_epochs: int = 100
    sru_batch: int = 30
    sru_lr: float = 0.001
    sru_init_std: float = 0.01      # "the weight and bias are set as 0.01 and 0.1"
    sru_init_bias: float = 0.1
    sru_pool: str = "last"          # 'last' hidden state (the paper's utterance output) or 'mean'
    sru_crossfit: int = 0           # 0: the paper (SRU on the FC7 of the CNN's own training utterances);
                                    # K >= 2: cross-fitted over K training-speaker groups (cnn-sru-xfitK)
    val_fraction: float = 0.0       # share of TRAINING utterances held out for early stopping (0 = off)
    patience: int = 20              # epochs without validation improvement before stopping
    amp: bool = True                # mixed precision; only ever used on CUDA

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    # Jiang et al.: SGD lr 1e-3, dropout 0.5, <= 400 epochs, batch 30, 227x227;
    # SRU Adam lr 1e-3, hidden 4096, <= 100 epochs, batch 30. "Up to" -> early stopping
    # on 10 % of the training utterances (training speakers only).
    "paper": Profile(name="paper", val_fraction=0.1, patience=30),
    # 2-core CPU. A segment holds 60 mel bands x ~20-60 frames, so 64 x 64 keeps about its
    # native resolution (227 only upsamples); quarter-width AlexNet (FC7 = 1024) is ~5x
    # cheaper per segment than half width. Fixed epochs, no early stopping. cnn_lr 0.002:
    # 0.005 (with momentum 0.9, from scratch) collapsed to a constant output on CASIA at
    # N = 4 for two seeds (training loss stuck at ln 6 from epoch 2), 0.002 and 0.001 did not.
    "fast": Profile(name="fast", image_size=64, cnn_width=0.25, cnn_epochs=30, cnn_lr=0.002,
                    sru_hidden=512, sru_epochs=30, val_fraction=0.0),
    # Seconds per fold; 4 epochs at lr 0.003 is what the demo corpus needs to learn
    # (2 epochs at 0.01 stayed near chance: 34 % UA, one fold collapsed; this: 63 %).
    "tiny": Profile(name="tiny", image_size=67, cnn_width=0.125, cnn_epochs=4, cnn_batch=16, cnn_lr=0.003,
                    sru_hidden=32, sru_epochs=3, sru_batch=16, val_fraction=0.0),
}


def coerce_setting(name: str, typ: type, value: object) -> object:
    """``value`` (a ``--set`` string or a Python value) converted to ``typ`` (bool, int, float,
    str, or tuple of ints written ``16,32,64``); a value that does not fit names the setting."""
    if isinstance(value, str):
        v = value.strip()
        try:
            if typ is bool:
                if v.lower() in ("1", "true", "yes", "on"):
                    return True
                if v.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(v)
            if typ is tuple:
                return tuple(int(p) for p in v.replace(" ", "").split(",") if p)
            return typ(v)
        except ValueError:
            kind = "comma-separated list of integers" if typ is tuple else typ.__name__
            raise ProfileError(f"--set {name}={value!r}: expected a {kind}") from None
    if typ is tuple and isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                              for v in value):
        return tuple(value)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is str and isinstance(value, bool):      # e.g. train_encoder given as a Python bool
        return str(value).lower()
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ProfileError(f"--set {name}={value!r}: expected a {typ.__name__}")
    return value


def get_profile(name: str, overrides: Mapping[str, object] | None = None) -> Profile:
    """The profile ``name`` with ``overrides`` applied (strings are converted to the field type)."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ProfileError(f"--profile {name!r}: unknown; choose one of {', '.join(PROFILES)}") from None
    types = {f.name: f.type for f in fields(Profile) if f.name != "name"}
    pytypes = {"int": int, "float": float, "str": str, "bool": bool}
    changes = {}
    for key, value in (overrides or {}).items():
        if key not in types:
            raise ProfileError(f"--set {key}: unknown setting; known: {', '.join(sorted(types))}")
        changes[key] = coerce_setting(key, pytypes[str(types[key])], value)
    prof = dataclasses.replace(base, **changes)
    _validate(prof)
    return prof


def _validate(p: Profile) -> None:
    from serbench.deep.alexnet import MIN_INPUT_SIZE

    if p.image_size < MIN_INPUT_SIZE:
        raise ProfileError(f"setting image_size={p.image_size}: AlexNet needs at least {MIN_INPUT_SIZE}")
    for key in ("cnn_epochs", "sru_epochs", "cnn_batch", "sru_batch", "sru_hidden", "patience"):
        if getattr(p, key) < 1:
            raise ProfileError(f"setting {key}={getattr(p, key)}: must be >= 1")
    for key in ("cnn_lr", "sru_lr", "cnn_width"):
        if getattr(p, key) <= 0:
            raise ProfileError(f"setting {key}={getattr(p, key)}: must be > 0")
    if not 0.0 <= p.dropout < 1.0:
        raise ProfileError(f"setting dropout={p.dropout}: must be in [0, 1)")
    if not 0.0 <= p.val_fraction < 0.5:
        raise ProfileError(f"setting val_fraction={p.val_fraction}: must be in [0, 0.5)")
    if p.sru_crossfit < 0 or p.sru_crossfit == 1:
        raise ProfileError(f"setting sru_crossfit={p.sru_crossfit}: 0 (off, the paper) or K >= 2 speaker groups")
    if p.cnn_optimizer not in CNN_OPTIMIZERS:
        raise ProfileError(f"setting cnn_optimizer={p.cnn_optimizer!r}: choose {' or '.join(CNN_OPTIMIZERS)}")
    if p.sru_pool not in ("last", "mean"):
        raise ProfileError(f"setting sru_pool={p.sru_pool!r}: choose 'last' or 'mean'")


def parse_sets(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["key=value", ...]`` (the CLI's ``--set``) -> dict; a malformed item names itself."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ProfileError(f"--set {item!r}: expected key=value, e.g. --set cnn_epochs=20")
        out[key.strip()] = value
    return out
