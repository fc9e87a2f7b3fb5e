"""Settings of the four seed-paper systems as ``serbench deep`` profiles (``paper``, ``fast``, ``tiny``).

Every field can be overridden with ``--set key=value`` (or the ``overrides`` mapping of
:func:`serbench.deep.run.run_deep`); tuples are given comma-separated
(``--set channels=16,32,64``), booleans as true/false. Each system has its own settings
class, so ``run.json`` records exactly the settings the system uses and a setting of
another system is refused by name.

Where the values come from. The three papers are available to us as abstracts only
(``../shared/papers``), which name the topologies but no hyper-parameter, so every
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

``tiny`` shrinks everything to seconds-long runs for tests and demos.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Mapping

from serbench.deep.profiles import ProfileError, coerce_setting

OPTIMIZERS = ("adam", "sgd")
TRAIN_ENCODER = ("auto", "true", "false")


@dataclass(frozen=True)
class SystemSettings:
    """Training, batching and data settings shared by the four systems.

    ``max_frames``-style crops apply to training batches only; validation and test
    utterances are always seen whole.
    """

    name: str = "paper"             # the profile these settings started from
    epochs: int = 100               # upper bound; early stopping ends sooner when val_fraction > 0
    batch: int = 32                 # utterances per batch
    lr: float = 0.001
    optimizer: str = "adam"         # 'adam' or 'sgd' (with momentum)
    momentum: float = 0.9           # sgd only
    weight_decay: float = 0.0
    grad_clip: float = 5.0          # max global L2 norm of the gradients; 0 = no clipping
    val_fraction: float = 0.1       # share of the fold's TRAINING utterances held out for early stopping
    patience: int = 15              # epochs without validation improvement before stopping
    bucket: int = 8                 # batches whose utterances are sorted by length together (less padding)
    aug_copies: int = 0             # augmented copies of each training utterance (augment.py); 0 = none
    aug_time_mask: int = 10         # max frames of the time mask of an augmented copy
    aug_freq_mask: int = 8          # max mel bands of the frequency mask
    aug_shift: int = 10             # max frames of the random time shift
    balance: bool = False           # oversample training classes up to the largest (augment.balanced_indices)
    amp: bool = True                # mixed precision; only ever used on CUDA

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _RecurrentSettings(SystemSettings):
    """The CNN + BLSTM + FC topology shared by CRNN, CRNN-CTC and CRNN-MK."""

    max_frames: int = 800           # random crop of longer TRAINING utterances (frames of 10 ms); 0 = off
    channels: tuple[int, ...] = (16, 32, 64)
    freq_pools: tuple[int, ...] = (2, 2, 2)
    time_pools: tuple[int, ...] = (2, 2, 1)
    hidden: int = 128               # BLSTM units per direction
    lstm_layers: int = 1
    fc_hidden: int = 64
    dropout: float = 0.3


@dataclass(frozen=True)
class CRNNSettings(_RecurrentSettings):
    summary: str = "mean"           # 'mean', 'last' or 'attention' over the BLSTM outputs
    attn_dim: int = 64


@dataclass(frozen=True)
class CRNNCTCSettings(_RecurrentSettings):
    drop_db: float = 25.0           # emotional frames: within drop_db of the utterance's loudest frame
    decode: str = "posterior"       # 'posterior' or 'best_path' (crnn_ctc.decode)


@dataclass(frozen=True)
class CRNNMKSettings(_RecurrentSettings):
    channels: tuple[int, ...] = (32, 32, 64)
    summary: str = "attention"      # Meyer et al.'s learned summarization; 'mean' / 'last' to compare
    attn_dim: int = 64
    mk_multi_kernel: bool = True    # the four ablation flags of Meyer et al. (see crnn_mk.py)
    mk_enhanced_features: bool = True
    mk_effective_training: bool = True
    mk_kernel_widths: tuple[int, ...] = (3, 7, 11, 15)
    mk_label_smoothing: float = 0.1


@dataclass(frozen=True)
class DCNNSettings(SystemSettings):
    image_size: int = 227           # segment images are image_size x image_size (AlexNet: 227)
    seg_frames: int = 64            # window length in frames (0.64 s); shorter utterances: one window
    seg_hop: int = 30               # window hop in frames (overlap seg_frames - seg_hop)
    max_segments: int = 0           # random run of at most this many windows per TRAINING utterance; 0 = all
    train_encoder: str = "auto"     # auto: frozen AlexNet with --pretrained, else ConvSegmentEncoder trained jointly
    encoder_channels: tuple[int, ...] = (16, 32)   # ConvSegmentEncoder (no --pretrained)
    encoder_dim: int = 256
    hidden: int = 128
    lstm_layers: int = 1
    attn_dim: int = 64
    dnn_hidden: int = 256
    dnn_layers: int = 2
    dropout: float = 0.3
    aug_copies: int = 1
    balance: bool = True


_FAST = dict(name="fast", epochs=25, lr=0.002, patience=6)
_TINY = dict(name="tiny", epochs=3, batch=4, lr=0.01, val_fraction=0.0, bucket=2)
_TINY_RNN = dict(max_frames=40, channels=(4, 8), freq_pools=(4, 4), time_pools=(2, 2), hidden=8, fc_hidden=8)

#: ``SETTINGS[model][profile]``: the base settings before ``--set`` overrides.
SETTINGS: dict[str, dict[str, SystemSettings]] = {
    "crnn": {
        "paper": CRNNSettings(),
        "fast": CRNNSettings(**_FAST, max_frames=300, channels=(8, 16, 32), hidden=64),
        "tiny": CRNNSettings(**_TINY, **_TINY_RNN, attn_dim=8),
    },
    "crnn-ctc": {
        "paper": CRNNCTCSettings(),
        "fast": CRNNCTCSettings(**_FAST, max_frames=300, channels=(8, 16, 32), hidden=64),
        "tiny": CRNNCTCSettings(**_TINY, **_TINY_RNN),
    },
    "crnn-mk": {
        "paper": CRNNMKSettings(),
        "fast": CRNNMKSettings(**_FAST, max_frames=300, channels=(16, 16, 32), hidden=64),
        "tiny": CRNNMKSettings(**_TINY, **{**_TINY_RNN, "channels": (4, 8)}, attn_dim=8,
                               mk_kernel_widths=(3, 7)),
    },
    "dcnn-blstm-att": {
        "paper": DCNNSettings(),
        "fast": DCNNSettings(**_FAST, image_size=64, encoder_dim=128, hidden=64, dnn_hidden=64),
        "tiny": DCNNSettings(**_TINY, image_size=16, seg_frames=16, seg_hop=8, encoder_channels=(4,),
                             encoder_dim=8, hidden=8, attn_dim=8, dnn_hidden=8),
    },
}


def get_settings(model: str, profile: str, overrides: Mapping[str, object] | None = None) -> SystemSettings:
    """The settings of ``model`` under ``profile`` with ``overrides`` applied and checked."""
    if model not in SETTINGS:
        raise ProfileError(f"--model {model!r}: no system settings; choose one of {', '.join(SETTINGS)}")
    try:
        base = SETTINGS[model][profile]
    except KeyError:
        raise ProfileError(f"--profile {profile!r}: unknown; choose one of {', '.join(SETTINGS[model])}") from None
    known = {f.name for f in fields(base) if f.name != "name"}
    changes = {}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ProfileError(f"--set {key}: not a setting of --model {model}; its settings: "
                               f"{', '.join(sorted(known))}")
        changes[key] = coerce_setting(key, type(getattr(base, key)), value)
    settings = dataclasses.replace(base, **changes)
    validate(model, settings)
    return settings


def validate(model: str, s: SystemSettings) -> None:
    """Raise :class:`ProfileError` naming the ``--set`` key of the first bad value."""
    def bad(key: str, what: str) -> ProfileError:
        return ProfileError(f"--set {key}={getattr(s, key)!r}: {what}")

    for key in ("epochs", "batch", "patience", "bucket"):
        if getattr(s, key) < 1:
            raise bad(key, "must be >= 1")
    for key in ("lr",):
        if not getattr(s, key) > 0:
            raise bad(key, "must be > 0")
    for key in ("weight_decay", "grad_clip", "momentum"):
        if getattr(s, key) < 0:
            raise bad(key, "must be >= 0")
    for key in ("aug_copies", "aug_time_mask", "aug_freq_mask", "aug_shift"):
        if getattr(s, key) < 0:
            raise bad(key, "must be >= 0")
    if s.optimizer not in OPTIMIZERS:
        raise bad("optimizer", f"choose one of {', '.join(OPTIMIZERS)}")
    if not 0.0 <= s.val_fraction < 0.5:
        raise bad("val_fraction", "must be in [0, 0.5)")
    if not 0.0 <= getattr(s, "dropout", 0.0) < 1.0:
        raise bad("dropout", "must be in [0, 1)")
    for key in ("hidden", "lstm_layers", "attn_dim", "fc_hidden", "dnn_hidden", "dnn_layers", "encoder_dim",
                "seg_frames", "seg_hop"):
        if hasattr(s, key) and getattr(s, key) < 1:
            raise bad(key, "must be >= 1")
    for key in ("max_frames", "max_segments"):
        if hasattr(s, key) and getattr(s, key) < 0:
            raise bad(key, "must be >= 0 (0 = no crop)")
    if isinstance(s, _RecurrentSettings):
        n = len(s.channels)
        if n == 0 or any(c < 1 for c in s.channels):
            raise bad("channels", "give one positive channel count per conv block, e.g. 16,32,64")
        for key in ("freq_pools", "time_pools"):
            if len(getattr(s, key)) != n or any(p < 1 for p in getattr(s, key)):
                raise bad(key, f"give one pool factor >= 1 per conv block ({n} blocks, as channels)")
        if 0 < s.max_frames < max(1, 2 * _prod(s.time_pools)):
            raise bad("max_frames", f"keep at least {2 * _prod(s.time_pools)} frames (2 output frames), or 0")
    if hasattr(s, "summary"):
        from serbench.deep.systems.crnn import Summary, SystemInputError

        try:
            Summary.parse(s.summary)
        except SystemInputError:
            raise bad("summary", "choose mean, last or attention") from None
    if isinstance(s, CRNNCTCSettings):
        from serbench.deep.systems.crnn_ctc import DECODE_METHODS

        if not s.drop_db > 0:
            raise bad("drop_db", "must be > 0 dB")
        if s.decode not in DECODE_METHODS:
            raise bad("decode", f"choose one of {', '.join(DECODE_METHODS)}")
    if isinstance(s, CRNNMKSettings):
        if not s.mk_kernel_widths or any(w < 1 or w % 2 == 0 for w in s.mk_kernel_widths):
            raise bad("mk_kernel_widths", "give odd frame counts, e.g. 3,7,11,15")
        if s.mk_multi_kernel and s.channels[0] < len(s.mk_kernel_widths):
            raise bad("channels", f"the first block needs >= {len(s.mk_kernel_widths)} channels "
                                  "(one per kernel width)")
        if not 0.0 <= s.mk_label_smoothing < 1.0:
            raise bad("mk_label_smoothing", "must be in [0, 1)")
    if isinstance(s, DCNNSettings):
        if s.image_size < 8:
            raise bad("image_size", "must be >= 8 (63 or more with --pretrained AlexNet)")
        if s.train_encoder not in TRAIN_ENCODER:
            raise bad("train_encoder", f"choose one of {', '.join(TRAIN_ENCODER)}")
        if not s.encoder_channels or any(c < 1 for c in s.encoder_channels):
            raise bad("encoder_channels", "give positive channel counts, e.g. 16,32")


def _prod(values: tuple[int, ...]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
