"""The settings of CNN+SRU and its ablations: :class:`CascadeSettings`, its profiles, :func:`cnn_epochs`.

``cnn_*`` settings are stage 1 (the segment CNN), ``sru_*`` stage 2 (the SRU). ``paper`` is Jiang et
al.'s recipe; ``fast`` (2-core CPU, the CNN from scratch) departs from it where a measurement on
inner-validation speakers (training speakers only) said so. Why each value, with the figures, and the
levers measured and left out: ``recipes/jiang2019-notes.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from serbench.systems import deep_runtime as R
from serbench.systems.settings import (
    AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Interval, Options, Settings, setting,
)

FROM_SCRATCH = "from scratch"
CNN_OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class CascadeSettings(Settings):
    """All settings of CNN+SRU and its ablations. ``cnn_*`` = stage 1 (segment CNN), ``sru_*`` = stage 2."""

    segments: int | None = setting(None, "segments per utterance N, 1 to 20 (the paper: 1..5)", check=Interval(1, 20),
                                   flag="--segments")
    image_size: int = setting(227, "segments resized (bilinear) to image_size x image_size", check=Interval(63, None))
    cnn_width: float = setting(1.0, "AlexNet width multiplier (1 = AlexNet; ImageNet weights need 1)", check=POSITIVE)
    cnn_epochs: int = setting(400, "stage 1 epochs (upper bound with early stopping); see cnn_budget",
                              check=AT_LEAST_ONE)
    cnn_budget: float = setting(0.0, "> 0: stage 1 sees this many segments per training utterance, i.e. "
                                     "round(cnn_budget / N) epochs, so every N gets the same optimizer steps "
                                     "(Table II compares N fairly); 0: cnn_epochs at every N", check=NON_NEGATIVE)
    cnn_batchnorm: bool = setting(False, "batch normalization before each conv ReLU (from scratch only; off "
                                         "with --pretrained, ImageNet's AlexNet has none)")
    cnn_batch: int = setting(30, "stage 1 batch size (segments)", check=AT_LEAST_ONE)
    cnn_lr: float = setting(0.001, "stage 1 learning rate", check=POSITIVE)
    cnn_optimizer: str = setting("sgd", "the paper's sgd, or adam / adamw (decoupled weight decay; not in the "
                                        "paper)", check=Options(*CNN_OPTIMIZERS))
    cnn_schedule: str = setting("constant", "stage 1 learning rate per step: constant (the paper), cosine, or "
                                            "onecycle (warm-up over 30 %, then cosine decay)",
                                check=Options("constant", "cosine", "onecycle"))
    cnn_label_smoothing: float = setting(0.0, "stage 1 label smoothing", check=FRACTION)
    cnn_mixup: float = setting(0.0, "mixup alpha on stage 1 training batches (0 = off)", check=NON_NEGATIVE)
    spec_freq_masks: int = setting(0, "SpecAugment mel-band masks per training segment", check=Interval(0, 10))
    spec_freq_width: float = setting(0.0, "largest band mask, as a fraction of the image height",
                                     check=Interval(0, 0.5))
    spec_time_masks: int = setting(0, "SpecAugment time masks per training segment", check=Interval(0, 10))
    spec_time_width: float = setting(0.0, "largest time mask, as a fraction of the image width",
                                     check=Interval(0, 0.5))
    cnn_time_shift: float = setting(0.0, "> 0: each training segment is cut at a random time shift of up to "
                                         "+-this fraction of its width, over the real neighbouring frames (drawn "
                                         "afresh per batch); validation and test see the segments themselves",
                                    check=Interval(0, 0.5))
    cnn_freq_shift: float = setting(0.0, "> 0: each training segment moves up or down by a random number of mel "
                                         "rows, up to this fraction of the image height (edge rows repeat), drawn "
                                         "afresh per batch: a stand-in for another speaker's vocal tract and pitch",
                                    check=Interval(0, 0.25))
    cnn_test_crops: int = setting(1, "shifts averaged at test time: 1 = the segments themselves; k > 1: k shifts "
                                     "evenly spread over +-cnn_time_shift, probabilities averaged (cnn, cnn-sru)",
                                  check=Interval(1, 9))
    cnn_momentum: float = setting(0.9, "sgd momentum (not stated in the paper; plain SGD at 1e-3 barely moves "
                                       "from scratch)", check=Interval(0, 1, "left"))
    cnn_weight_decay: float = setting(0.0, "stage 1 weight decay", check=NON_NEGATIVE)
    dropout: float = setting(0.5, "dropout of FC6/FC7", check=FRACTION)
    sru_hidden: int = setting(4096, "SRU hidden size", check=AT_LEAST_ONE)
    sru_epochs: int = setting(100, "stage 2 epochs (upper bound with early stopping)", check=AT_LEAST_ONE)
    sru_batch: int = setting(30, "stage 2 batch size (utterances)", check=AT_LEAST_ONE)
    sru_lr: float = setting(0.001, "stage 2 Adam learning rate", check=POSITIVE)
    sru_init_std: float = setting(0.01, "SRU initial weight std ('the weight and bias are set as 0.01 and 0.1')",
                                  check=POSITIVE)
    sru_init_bias: float = setting(0.1, "SRU initial gate bias", check=Interval())
    sru_input_dropout: float = setting(0.0, "dropout on the SRU's input features while it trains", check=FRACTION)
    sru_weight_decay: float = setting(0.0, "stage 2 (Adam) weight decay", check=NON_NEGATIVE)
    sru_crossfit: int = setting(0, "0: the paper (SRU on the FC7 of the CNN's own training utterances); K >= 2: "
                                   "cross-fitted over K training-speaker groups (cnn-sru only)", check=NON_NEGATIVE)
    ensemble: int = setting(1, "models per fold, each trained from its own seed on the same training utterances "
                               "(both stages); test probabilities averaged over them (1 = the paper)",
                            check=Interval(1, 9))
    sru_residual: bool = setting(False, "the SRU learns a correction added to the mean of its frozen CNN's segment "
                                        "logits (FC8), starting from that decision (not in the paper, whose SRU "
                                        "reads FC7 alone; cnn-sru only)")
    sru_fuse: float = setting(0.0, "weight w of the CNNs' own decision in cnn-sru's: (1 - w) x the cascade's "
                                   "probabilities + w x the mean of its CNNs' segment softmaxes (0 = the paper; "
                                   "cnn-sru only; stored as cnn-sru-fuse<100w>-N*)", check=Interval(0, 1, "left"))
    val_fraction: float = setting(0.0, "share of TRAINING utterances held out for early stopping (0 = off)",
                                  check=Interval(0, 0.5, "left"))
    val_speakers: int = setting(0, "> 0: hold out this many TRAINING speakers instead (early stopping on speakers "
                                   "the model never saw, like the test speaker)", check=NON_NEGATIVE)
    patience: int = setting(20, "epochs without validation improvement before stopping", check=AT_LEAST_ONE)
    amp: bool = setting(True, "mixed precision; only ever used on CUDA")

    PROFILES = {
        # Jiang et al.: SGD lr 1e-3, dropout 0.5, <= 400 epochs, batch 30, 227x227; SRU Adam lr 1e-3, hidden
        # 4096, <= 100 epochs, batch 30; "up to" -> early stopping on 10 % of the training utterances.
        "paper": {"val_fraction": 0.1, "patience": 30},
        # 2-core CPU, from scratch; each value chosen on inner-validation speakers (recipes/jiang2019-notes.md):
        "fast": {"image_size": 96,                # at 64 the conv stack ends at 1 x 1: FC6 sees no layout
                 "cnn_width": 0.25,               # 0.5: no better for 3x the time; 0.125 underfits
                 "cnn_epochs": 30, "cnn_budget": 300.0,    # the same segments seen at every N
                 "cnn_batchnorm": True, "cnn_optimizer": "adamw", "cnn_lr": 0.001, "cnn_weight_decay": 0.05,
                 "cnn_schedule": "onecycle",      # with the budget, the largest gain over the paper's SGD
                 "cnn_time_shift": 0.25, "cnn_test_crops": 3,   # shifts over real neighbouring frames
                 "cnn_freq_shift": 0.05,          # +-5 % of the height, in mel rows
                 "ensemble": 2,                   # two seeds per fold; a third cost 27 % for +0.1 on validation
                 "sru_hidden": 512, "sru_epochs": 30,
                 "sru_residual": True,            # the SRU corrects its frozen CNN's decision
                 "sru_fuse": 0.75,                # 0.25 x the cascade + 0.75 x its CNN; stored as cnn-sru-fuse75-N*
                 "val_fraction": 0.0},            # no early stopping
        # Seconds per fold; 4 epochs at lr 0.003 is what the demo corpus needs to learn (2 epochs at 0.01
        # stayed near chance: 34 % UA, one fold collapsed; this: 63 %).
        "tiny": {"image_size": 67, "cnn_width": 0.125, "cnn_epochs": 4, "cnn_batch": 16, "cnn_lr": 0.003,
                 "sru_hidden": 32, "sru_epochs": 3, "sru_batch": 16, "val_fraction": 0.0},
    }

    #: Removed after measurement (recipes/jiang2019-notes.md), at the value every profile had: a bundle or run
    #: record that holds one of them at this value is read as if it did not (Settings.drop_retired).
    RETIRED: ClassVar[Mapping[str, Any]] = {
        "cnn_gain": 0.0, "cnn_envelope": 0.0, "cnn_adversary": 0.0,
        "sru_fc7_views": 0, "sru_joint": False, "sru_pool": "last",
    }

    @classmethod
    def build(cls, profile=None, overrides=None, *, system: str = ""):
        s = super().build(profile, overrides, system=system)
        given = overrides or {}
        if "cnn_epochs" in given and "cnn_budget" not in given and s.cnn_budget:
            # An explicit epoch count means epochs: it replaces the profile's budget.
            s = s.replace(cnn_budget=0.0)
        return s

    def check(self) -> None:
        if self.segments is None:
            raise self.bad("segments", "give the number of segments N (1 to 20; the paper runs 1 to 5)")
        if self.val_speakers and self.val_fraction:
            raise self.bad("val_speakers", "hold out speakers or utterances, not both: set val_fraction=0")
        if self.cnn_test_crops > 1 and R.image_context(self) == 0:
            raise self.bad("cnn_test_crops", "test-time shifts need a shift: set cnn_time_shift > 0 (at least "
                                             "half a pixel of image_size)")
        if self.sru_crossfit == 1:
            raise self.bad("sru_crossfit", "0 (off, the paper) or K >= 2 speaker groups")


@dataclass(frozen=True)
class CNNSettings(CascadeSettings):
    """Settings of the systems with a CNN: ImageNet weights may be given."""

    pretrained: str | None = setting(None, "local torchvision-named AlexNet state dict (ImageNet); none: the CNN "
                                           "trains from scratch", flag="--pretrained")

    def check(self) -> None:
        super().check()
        if self.pretrained is not None:
            from pathlib import Path

            if not Path(self.pretrained).expanduser().is_file():
                raise self.bad("pretrained", "no such file; give a local AlexNet state dict or leave it out to "
                                             "train from scratch")


def cnn_epochs(s: CascadeSettings) -> int:
    """Stage 1 epochs at ``s.segments``: ``round(cnn_budget / N)`` (at least 1) with a budget, else ``cnn_epochs``."""
    if s.cnn_budget > 0:
        return max(1, int(round(s.cnn_budget / s.segments)))
    return s.cnn_epochs
