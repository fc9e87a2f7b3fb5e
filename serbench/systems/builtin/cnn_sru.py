"""CNN+SRU (Jiang et al.) and the two ablations of its Table III: ``cnn`` and ``sru``.

Per fold, on the training speakers only: fit the input normalization, fine-tune the
segment CNN (stage 1; each segment carries its utterance's label), freeze it and train the
SRU on the FC7 features of the N segments (stage 2); then predict the held-out speaker.
Each stage checkpoints every epoch (``<run>.partial/checkpoints/<fold>/``): a killed run,
re-run with the same command, skips finished folds and continues the interrupted stage,
bit-identically on CPU.

* ``cnn-sru``: the cascade; stored as ``cnn-sru-N<segments>``. ``--set sru_crossfit=K``
  (not in the paper) trains K CNNs on K speaker groups of the fold and SRU k on the FC7 of
  the group CNN k never saw; the test decision averages the K SRUs (``cnn-sru-xfitK-N*``).
* ``--set sru_residual=true`` (``fast``; not in the paper): stage 2's output is a correction added
  to the mean of the frozen CNN's segment logits, so the cascade starts from its CNN's decision.
* ``--set sru_fuse=w`` (``fast``: 0.75; not in the paper): the decision is ``(1 - w)`` x the cascade's
  probabilities + ``w`` x the mean of its own CNNs' segment softmaxes (the CNN ablation's decision on
  the same CNNs); run records and tables say so.
* ``--set ensemble=k`` (all three; ``fast``: 2) trains k models per fold, each from its own seed,
  and averages their test probabilities; the first is the single model itself.
* ``cnn``: stage 1 alone; an utterance's decision is the mean of its segments' softmax.
* ``sru``: stage 2 alone on low-level features: per segment the mean and standard deviation
  over time of the 3 x 60 log-mel channels, a ``(N, 360)`` sequence per utterance.

Models and training loops are in :mod:`serbench.deep` (AlexNet, SRU, the epoch loop).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serbench.systems import deep_runtime as R
from serbench.systems.base import ModelParts, System, SystemOptionError, checkpoint, load_module, module_tensors
from serbench.systems.naming import Naming, flag, member_stage, number
from serbench.systems.registry import register
from serbench.systems.settings import (
    AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Interval, Options, Settings, setting,
)

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset, FoldOutput
    from serbench.experiments.harness import FoldContext

FROM_SCRATCH = "from scratch"
#: The paper's segment counts (Tables I and II).
PAPER_SEGMENTS: tuple[int, ...] = (1, 2, 3, 4, 5)
CNN_OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class CascadeSettings(Settings):
    """All settings of CNN+SRU and its ablations. ``cnn_*`` = stage 1 (segment CNN), ``sru_*`` = stage 2."""

    segments: int | None = setting(None, "segments per utterance N (the paper: 1..5)", check=Interval(1, 20),
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
    cnn_gain: float = setting(0.0, "> 0: each training segment's static log-mel channel moves by a random level "
                                   "of up to +-this many training standard deviations, drawn afresh per batch: a "
                                   "stand-in for another recording level or a louder or quieter speaker",
                              check=Interval(0, 2))
    cnn_envelope: float = setting(0.0, "> 0: each training segment's static log-mel channel gets a random smooth "
                                       "curve over the mel rows added (a tilt and a bow, each up to +-this many "
                                       "training standard deviations), drawn afresh per batch: a stand-in for "
                                       "another speaker's voice quality or microphone", check=Interval(0, 2))
    cnn_adversary: float = setting(0.0, "> 0: a speaker classifier on FC7 learns to tell the fold's training "
                                        "speakers apart while the CNN, through its gradient reversed and scaled "
                                        "by this weight, learns to hide them (speaker-adversarial; not in the "
                                        "paper)", check=Interval(0, 10))
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
    sru_fc7_views: int = setting(0, "0: the SRU learns from the FC7 of the clean training segments (the paper); "
                                    "k >= 1: from k noisy views of each (CNN dropout on, the training masks and "
                                    "shifts drawn afresh), closer to what an unseen speaker's segments give",
                                 check=Interval(0, 8))
    sru_pool: str = setting("last", "'last' hidden state (the paper's utterance output) or 'mean'",
                            check=Options("last", "mean"))
    sru_crossfit: int = setting(0, "0: the paper (SRU on the FC7 of the CNN's own training utterances); K >= 2: "
                                   "cross-fitted over K training-speaker groups (cnn-sru only)", check=NON_NEGATIVE)
    ensemble: int = setting(1, "models per fold, each trained from its own seed on the same training utterances "
                               "(both stages); test probabilities averaged over them (1 = the paper)",
                            check=Interval(1, 9))
    sru_joint: bool = setting(False, "train the CNN and the SRU together, end to end on whole utterances, from the "
                                     "start (not in the paper, whose SRU learns after the CNN; cnn-sru only)")
    sru_residual: bool = setting(False, "the SRU learns a correction added to the mean of its frozen CNN's segment "
                                        "logits (FC8), starting from that decision (not in the paper, whose SRU "
                                        "reads FC7 alone; cnn-sru only)")
    sru_fuse: float = setting(0.0, "weight w of the CNNs' own decision in cnn-sru's: (1 - w) x the cascade's "
                                   "probabilities + w x the mean of its CNNs' segment softmaxes (0 = the paper; "
                                   "cnn-sru only)", check=Interval(0, 1, "left"))
    val_fraction: float = setting(0.0, "share of TRAINING utterances held out for early stopping (0 = off)",
                                  check=Interval(0, 0.5, "left"))
    val_speakers: int = setting(0, "> 0: hold out this many TRAINING speakers instead (early stopping on speakers "
                                   "the model never saw, like the test speaker)", check=NON_NEGATIVE)
    patience: int = setting(20, "epochs without validation improvement before stopping", check=AT_LEAST_ONE)
    amp: bool = setting(True, "mixed precision; only ever used on CUDA")

    PROFILES = {
        # Jiang et al.: SGD lr 1e-3, dropout 0.5, <= 400 epochs, batch 30, 227x227; SRU Adam lr 1e-3,
        # hidden 4096, <= 100 epochs, batch 30. "Up to" -> early stopping on 10 % of the training
        # utterances (training speakers only).
        # First GPU run (one H200, the AlexNet from scratch, CASIA N = 5): CNN+SRU 34.8, SRU 33.2
        # UA; early stopping ended stage 1 at 53-64 epochs (docs/cnn-sru-recipe.md).
        "paper": {"val_fraction": 0.1, "patience": 30},
        # 2-core CPU. A segment holds 60 mel bands x ~20-60 frames, so 64 x 64 kept about its native
        # resolution (227 only upsamples; now 96, see image_size below); quarter-width AlexNet (FC7 = 1024)
        # is ~5x cheaper per segment than half width. No early stopping.
        # Stage 1 from scratch: a budget of segments per training utterance (the same optimizer steps at
        # every N: first 150, now 300, see below), batch norm, AdamW (lr 1e-3, weight decay 0.05)
        # with a one-cycle schedule. Chosen on inner-validation speakers (training speakers only) against
        # the earlier SGD recipe (30 epochs, lr 0.002, momentum 0.9): CNN ablation UA +22.3 on EMO-DB-2s
        # (N = 3, 10 folds), +1.9 on CASIA (N = 5, 4 folds); CNN+SRU +10.5 / -1.2.
        # Then random time shifts of the training segments (+-25 % of their width, over the real neighbouring
        # frames) and the mean over 3 shifts at test, against that recipe on the same inner-validation
        # speakers: CNN +2.1 (EMO-DB-2s) / +2.4 (CASIA), CNN+SRU +9.1 / +4.7. Against +-25 %, +-50 % was
        # worse for CNN+SRU on both (-1.8 / -2.7) and for the CNN on EMO-DB-2s (-4.3; CASIA +0.1). The 3 test
        # shifts were neutral on CASIA (CNN+SRU -0.2, CNN +0.1 against 1).
        # Then an ensemble of 3 seeds per fold, measured as the mean of seeds 0-2's probabilities on the same
        # inner-validation speakers: CNN+SRU +2.5 (EMO-DB-2s) / +0.6 (CASIA) over the mean single seed, CNN
        # +1.8 / +0.3, for 3x the training time. Single seeds spread by 0.7 / 2.4 (CNN+SRU) and 1.2 / 4.9
        # (CNN) UA points.
        # Then a budget of 300 segments per training utterance instead of 150 (60 epochs at N = 5, 100 at
        # N = 3; 300 divides by every N of Table II, so every N sees the same segments), one seed against
        # the mean of seeds 0-2 at 150 on the same inner-validation speakers: CNN+SRU +3.8 (EMO-DB-2s,
        # beyond the 0.7 seed spread) / +1.2 (CASIA), CNN +5.2 / +3.0; against seed 0 alone +3.8 / -0.3 and
        # +5.7 / +0.3. For 2x the training time (fold times: docs/cnn-sru-recipe.md; --workers 2 runs two
        # folds at once). A peak lr of 3e-3 instead of 1e-3 gained nothing (CNN+SRU -1.3 / +0.2, CNN -0.5 /
        # +0.9, within the spread). A budget of 600 overfit (training loss 0.03-0.15; val CNN+SRU -2.1 /
        # -3.4, CNN 0.0 / -0.2 against the mean of seeds 0-2 at 300).
        # Then random frequency shifts of the training segments (+-5 % of their height, in mel rows), one
        # seed against the mean of seeds 0-2 without them on the same inner-validation speakers: CNN+SRU
        # +3.6 (EMO-DB-2s, 3x the seeds' spread) / -0.1 (CASIA, inside its 3.9 spread), CNN +3.6 / -1.5;
        # +-10 % on CASIA -1.1 / +0.2, on EMO-DB-2s (one seed against +-5 %) CNN+SRU +0.9, CNN -0.9.
        # Then stage 2 as a correction to its frozen CNN (sru_residual), on the very same CNNs: CNN+SRU
        # +2.6 (EMO-DB-2s, now level with its CNN instead of 2.4 under it) / -0.3 (CASIA, inside the spread).
        # The full protocol with both, run after the choice: CNN+SRU 72.3 (EMO-DB-2s) / 38.8 (CASIA), CNN
        # 72.1 / 38.2, against 63.6 / 34.9 and 66.4 / 37.4 without them.
        # Random levels (cnn_gain=0.4) and spectral envelopes (cnn_envelope=0.25) on top, one seed: CNN+SRU
        # -2.8 / -1.7 on EMO-DB-2s (beyond its spread), +1.1 / +1.2 on CASIA (inside it): not here.
        # A speaker adversary on FC7 (cnn_adversary=0.5), one seed: CNN+SRU -2.0 (EMO-DB-2s) / -1.1 (CASIA),
        # CNN +0.2 / +0.2; at 1.5 CNN+SRU +0.3 / +0.3, CNN -0.5 / +0.8 (EMO-DB-2s: mean of seeds 0 and 1;
        # CASIA: seed 0) while its head sat near chance: not here.
        # Early stopping on one held-out training speaker (val_speakers=1), one seed: CNN+SRU -7.8 / -7.5,
        # CNN -12.1 / -9.1: not here.
        # At 64 x 64 the conv stack ends at 1 x 1 (96: 2 x 2, 128: 3 x 3), so FC6 sees no time-frequency
        # layout. image_size=96 against 64, seeds 0 and 1 on the same inner-validation speakers: CNN+SRU
        # +2.3 / +1.1 (EMO-DB-2s) and +0.4 / +2.4 (CASIA), CNN +3.3 / +4.0 and +1.6 / +3.0: a gain in all
        # eight, the EMO-DB-2s CNN's 4.6x its seed spread. 128, one seed: CNN+SRU +2.2 / +0.7, CNN +5.9 /
        # +1.2, for 2.4x the stage-1 time of 64 (96: 1.5x; bench_deep, AVX2 CPU, fused optimizer and
        # channels-last convs, which made stage 1 1.4x faster, so 96 now costs about what 64 did before).
        # Full protocol at 96, run after the choice: CNN+SRU 72.9 (EMO-DB-2s) / 35.8 (CASIA), CNN 75.5 /
        # 38.3, against 72.3 / 38.8 and 72.1 / 38.2 at 64.
        # Stage-2 levers on the 96 CNNs (inner-validation speakers, seeds 0 and 1, each on the very CNNs of
        # its run): mean pooling, 10 epochs, input dropout, weight decay, noisy FC7 views. Only weight decay
        # lifts the cascade above its CNN on EMO-DB-2s (+0.2 / +1.1), and it loses on CASIA at both seeds
        # (-1.7 / -2.4 against CNN+SRU). Mean pooling passes the rule above (EMO-DB-2s +1.3 / +1.4,
        # CASIA +1.8 / -2.2) but lost on CASIA at 64 twice (-2.9 / -3.3). A fused decision, 0.25 x CNN+SRU +
        # 0.75 x CNN, is above both on EMO-DB-2s (+2.7 / +3.4 over CNN+SRU) and above the CNN on CASIA (+0.9 /
        # +2.1; -0.7 / -1.3 under CNN+SRU, inside CASIA's seed spread of 2.4-3.9): the only stage-2 variant
        # above the CNN on both corpora at both seeds, and it passes the rule above against CNN+SRU, so
        # sru_fuse=0.75 is here (the tables print the fused decision under every CNN+SRU row). Mean pooling is
        # not: it lost on CASIA at 64 twice. Its full protocol from the stored full-i96 predictions (seen before
        # the choice, docs/cnn-sru-recipe.md "Stage 2 at 96"): CNN+SRU 76.0 (EMO-DB-2s) / 37.7 (CASIA).
        # A third seed, after the choice: against the cascade +1.3 (EMO-DB-2s) / -2.5 (CASIA), against the
        # CNN -0.2 / +2.6; over three seeds +1.2 / -2.5 and +0.5 / +0.8. Kept; the trade is documented there.
        # Then two seeds per fold instead of three, for the cost: on the same inner-validation speakers the
        # third seed added +0.1 (EMO-DB-2s) / -0.1 (CASIA) to the fused decision (every pair of seeds 0-2
        # against all three), and a CASIA N = 5 `serbench deep` run (--workers 2, AVX2 2-core CPU) took
        # 41.9 minutes instead of 53.3. Full protocol after the choice: CNN+SRU 73.5 (EMO-DB-2s) / 39.0
        # (CASIA), CNN 73.5 / 38.0, against 76.0 / 37.7 and 75.5 / 38.3 with three seeds: on EMO-DB-2s' test
        # speakers the third seed was worth 1.6-2.5 points, which validation had not shown (not used to choose).
        # The width (cnn_width=0.25, inherited from the first CPU profile) against 0.5 and 0.125, one seed on
        # the same inner-validation speakers: 0.5 fits further and validates no better (EMO-DB-2s inside the
        # range of four 0.25 runs; CASIA's fused decision 31.7 against 33.2-34.2) for about 3x the stage-1
        # time; 0.125 underfits and is under every 0.25 run on both corpora (by 0.8-9.5 points). 0.25 stays.
        # Every lever measured, and why the others are not here: docs/cnn-sru-recipe.md.
        "fast": {"image_size": 96, "cnn_width": 0.25, "cnn_epochs": 30, "cnn_budget": 300.0, "cnn_batchnorm": True,
                 "cnn_optimizer": "adamw", "cnn_lr": 0.001, "cnn_weight_decay": 0.05, "cnn_schedule": "onecycle",
                 "cnn_time_shift": 0.25, "cnn_freq_shift": 0.05, "cnn_test_crops": 3, "ensemble": 2,
                 "sru_hidden": 512, "sru_epochs": 30, "sru_residual": True, "sru_fuse": 0.75, "val_fraction": 0.0},
        # Seconds per fold; 4 epochs at lr 0.003 is what the demo corpus needs to learn (2 epochs at 0.01
        # stayed near chance: 34 % UA, one fold collapsed; this: 63 %).
        "tiny": {"image_size": 67, "cnn_width": 0.125, "cnn_epochs": 4, "cnn_batch": 16, "cnn_lr": 0.003,
                 "sru_hidden": 32, "sru_epochs": 3, "sru_batch": 16, "val_fraction": 0.0},
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
            raise self.bad("segments", "give the number of segments N, from 1 to 5 (the paper's range)")
        if self.val_speakers and self.val_fraction:
            raise self.bad("val_speakers", "hold out speakers or utterances, not both: set val_fraction=0")
        if self.sru_joint and self.sru_crossfit:
            raise self.bad("sru_joint", "a jointly trained cascade has one CNN; use sru_crossfit=0")
        if self.sru_joint and self.cnn_adversary:
            raise self.bad("cnn_adversary", "the speaker adversary trains the two-stage cascade's CNN; use "
                                            "sru_joint=false")
        if self.sru_joint and self.sru_residual:
            raise self.bad("sru_residual", "a correction to a frozen CNN needs the two-stage cascade; use "
                                           "sru_joint=false")
        if self.sru_joint and self.sru_fuse:
            raise self.bad("sru_fuse", "a jointly trained cascade has no separate CNN decision; use sru_joint=false")
        if self.cnn_test_crops > 1 and R.image_context(self) == 0:
            raise self.bad("cnn_test_crops", "test-time shifts need a shift: set cnn_time_shift > 0 (at least "
                                             "half a pixel of image_size)")
        if self.sru_crossfit == 1:
            raise self.bad("sru_crossfit", "0 (off, the paper) or K >= 2 speaker groups")


def cnn_epochs(s: CascadeSettings) -> int:
    """Stage 1 epochs at ``s.segments``: ``round(cnn_budget / N)`` (at least 1) with a budget, else ``cnn_epochs``."""
    if s.cnn_budget > 0:
        return max(1, int(round(s.cnn_budget / s.segments)))
    return s.cnn_epochs


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


@dataclass
class CascadeModel:
    """A fold's fitted stages: (CNN, normalizer) pairs and their SRU heads, one per ensemble member and
    cross-fitted group (one of each in the paper's recipe); predictions average over them."""

    cnns: list = field(default_factory=list)
    heads: list = field(default_factory=list)
    sru_norm: Any = None
    info: dict = field(default_factory=dict)


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
    CASCADE_ONLY = ("sru_crossfit", "sru_joint", "sru_residual", "sru_fuse")

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
            "pretrained": (str(_resolve(pretrained)) if pretrained else FROM_SCRATCH) if self.uses_cnn else None,
            "cnn_decision": "mean of segment softmax probabilities" if self.name == "cnn" else None,
            "time_shifts": (f"training segments shifted by up to +-{s.cnn_time_shift:g} of their width; test "
                            f"probabilities averaged over {len(_test_offsets(s))} shift(s)")
                           if self.uses_cnn and R.image_context(s) else None,
            "freq_shifts": (f"training segments moved by up to +-{s.cnn_freq_shift:g} of their height in "
                            "mel rows") if self.uses_cnn and s.cnn_freq_shift else None,
            "levels": (f"random level of up to +-{s.cnn_gain:g} training std on the static channel of training "
                       "segments") if self.uses_cnn and s.cnn_gain else None,
            "envelopes": (f"random spectral tilt and bow of up to +-{s.cnn_envelope:g} training std on the "
                          "static channel of training segments") if self.uses_cnn and s.cnn_envelope else None,
            "speaker_adversary": (f"a speaker classifier on FC7 over the fold's training speakers, its gradient "
                                  f"into the CNN reversed and scaled by {s.cnn_adversary:g}")
                                 if self.uses_cnn and s.cnn_adversary else None,
            "ensemble": (f"{s.ensemble} models per fold from their own seeds; test probabilities averaged"
                         if s.ensemble > 1 else None),
            "sru_input": self._sru_input(s),
            "decision": self._decision(s),
            "sru_pool": s.sru_pool if self.uses_sru else None,
            "normalization": "per-channel mean/std of the training fold's inputs",
            "early_stopping": _early_stopping(s),
            "cnn_epochs": cnn_epochs(s) if self.uses_cnn else None,
            "cnn_batchnorm": _batchnorm(s) if self.uses_cnn else None,
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
        cnn = f"CNN fine-tuned from {_resolve(pretrained)}" if pretrained else "CNN trained from scratch"
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

    def _fit_cnn(self, model: CascadeModel, data: Dataset, utts: np.ndarray, val: np.ndarray, s: CascadeSettings,
                 ctx: FoldContext, rt: "R.Runtime", stage: str) -> tuple[Any, Any]:
        """Stage 1 on the segments of ``utts`` (early stopping on ``val``): (cnn, normalizer)."""
        import torch

        from serbench.deep import data as D
        from serbench.deep.train import epoch_logger, train_stage

        images = R.segment_images(data, s, rt)
        n = s.segments
        rows_fit, rows_val = R.segment_rows(utts, n), R.segment_rows(val, n)
        norm = D.Normalizer.fit(images[rows_fit.to(images.device)])       # training segments only
        cnn, cfg = _stage1(data, s, ctx, stage, batch=s.cnn_batch)
        cnn.to(rt.device)
        y = torch.as_tensor(data.y, dtype=torch.long)
        ys_fit = y[utts].repeat_interleave(n)                          # each segment: its utterance's label
        val_data = (images[rows_val.to(images.device)], y[val].repeat_interleave(n)) if len(val) else None
        net, groups = _adversary(cnn, data.speakers[utts], s, ctx, stage)
        res = train_stage(net.to(rt.device), images[rows_fit.to(images.device)], ys_fit, cfg, device=rt.device,
                          transform=_input(norm, s),
                          checkpoint=checkpoint(ctx, stage), amp=rt.amp, val=val_data,
                          on_epoch=epoch_logger(ctx.say, R.hook(ctx), "segments"),
                          groups=None if groups is None else groups.repeat_interleave(n))
        _record_cnn(model, res, stage, data.n_classes, ctx, segments_per_sample=1)
        return cnn, norm

    def _fit_head(self, model: CascadeModel, x_fit, y_fit, x_val, y_val, input_size: int, n_classes: int,
                  s: CascadeSettings, ctx: FoldContext, rt: "R.Runtime", stage: str, transform, skip=None) -> Any:
        """Stage 2: an SRU classifier on ``(U, N, D)`` sequences (``skip``: see :class:`SRUClassifier`)."""
        import torch

        from serbench.experiments.protocol import stage_seed

        from serbench.deep.models import SRUClassifier
        from serbench.deep.optim import make_optimizer
        from serbench.deep.train import StageConfig, epoch_logger, train_stage

        seed = stage_seed(ctx.seed, ctx.fold, stage)
        torch.manual_seed(seed)
        head = SRUClassifier(input_size, n_classes, hidden=s.sru_hidden, pool=s.sru_pool,
                             init_std=s.sru_init_std, init_bias=s.sru_init_bias,
                             input_dropout=s.sru_input_dropout, skip=skip).to(rt.device)
        cfg = StageConfig(stage, s.sru_epochs, s.sru_batch, seed=seed, patience=s.patience,
                          optimizer=lambda p: make_optimizer("adam", p, lr=s.sru_lr, weight_decay=s.sru_weight_decay))
        res = train_stage(head, x_fit, y_fit, cfg, device=rt.device, transform=transform,
                          checkpoint=checkpoint(ctx, stage), amp=rt.amp,
                          val=(x_val, y_val) if x_val is not None else None,
                          on_epoch=epoch_logger(ctx.say, R.hook(ctx), "utterances"))
        timing = model.info["timings"]
        timing["sru_epochs"] = (timing.get("sru_epochs") or 0) + res.epochs_run
        timing["sru_train_s"] = (timing.get("sru_train_s") or 0) + res.train_s
        timing["sru_resumed_from"] = res.resumed_from
        model.info["curves"][stage] = R.curve(res.history)
        return head

    def _fc7(self, model: CascadeModel, cnn, norm, data: Dataset, utts: np.ndarray, s: CascadeSettings,
             rt: "R.Runtime", views: int = 0, offset: int | None = None):
        """``(U, N, fc_dim)`` FC7 features of ``utts`` (CNN frozen, eval mode; ``offset``: the time crop of
        context images, default the segments themselves); with ``views`` >= 1, ``(views * U, N, fc_dim)`` noisy
        training views (:func:`serbench.deep.train.extract_fc7`; random time shifts too with cnn_time_shift)."""
        import torch

        from serbench.deep.specaugment import random_time_crop
        from serbench.deep.train import extract_fc7

        images = R.segment_images(data, s, rt)
        for p in cnn.parameters():
            p.requires_grad_(False)
        t0 = time.perf_counter()
        x = images[R.segment_rows(utts, s.segments).to(images.device)]
        if views:
            masks = _augmenter(s)

            def noise(xb):
                xb = random_time_crop(xb, s.image_size)
                return masks(xb) if masks is not None else xb

            feats = torch.cat([extract_fc7(cnn, x, batch=s.cnn_batch * 4, device=rt.device, transform=norm,
                                           amp=rt.amp, dropout=True, augment=noise) for _ in range(views)])
        else:
            feats = extract_fc7(cnn, x, batch=s.cnn_batch * 4, device=rt.device, transform=_input(norm, s, offset),
                                amp=rt.amp)
        timing = model.info["timings"]
        timing["fc7_s"] = (timing.get("fc7_s") or 0) + time.perf_counter() - t0
        return feats.reshape(-1, s.segments, feats.shape[-1])

    def _sru_on_fc7(self, model: CascadeModel, cnn, norm, data: Dataset, utts: np.ndarray, val: np.ndarray,
                    s: CascadeSettings, ctx: FoldContext, rt: "R.Runtime", stage: str) -> Any:
        import torch

        from serbench.experiments.protocol import stage_seed

        y = torch.as_tensor(data.y, dtype=torch.long)
        if s.sru_fc7_views:
            # Its own seed: a fold resumed after stage 1 draws the same views as an uninterrupted one.
            torch.manual_seed(stage_seed(ctx.seed, ctx.fold, f"{stage}-views"))
        x_fit = self._fc7(model, cnn, norm, data, utts, s, rt, views=s.sru_fc7_views)
        y_fit = y[utts].repeat(max(1, s.sru_fc7_views))              # views are stacked view-major
        x_val = self._fc7(model, cnn, norm, data, val, s, rt) if len(val) else None
        skip = copy.deepcopy(cnn.classifier[6]) if s.sru_residual else None     # the CNN's FC8
        return self._fit_head(model, x_fit, y_fit, x_val, y[val], x_fit.shape[-1], data.n_classes, s, ctx, rt,
                              stage, transform=lambda x: x, skip=skip)

    # ---------------------------------------------------------------- prediction
    def predict(self, model: CascadeModel, data: Dataset, rows: np.ndarray, s: CascadeSettings,
                ctx: FoldContext) -> FoldOutput:
        import torch

        from serbench.experiments.dataset import FoldOutput

        from serbench.deep.models import cnn_utterance_probs
        from serbench.deep.train import predict_logits

        rt = R.Runtime.of(ctx, s.amp)
        probs, cnn_probs = [], []
        for (cnn, norm), head in zip(model.cnns, model.heads):
            for offset in _test_offsets(s):
                feats = self._fc7(model, cnn, norm, data, rows, s, rt, offset=offset)
                probs.append(_softmax(head, feats, s, rt))
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
                cnn = build_cnn(n_classes, width=s.cnn_width, dropout=s.dropout, batchnorm=_batchnorm(s))
                model.cnns.append((load_module(cnn, t, f"cnn{i}.", f"CNN {i}").to(device), norm(f"cnn{i}_norm")))
            for i in range(int(meta.get("n_heads") or 0)):
                skip = torch.nn.Linear(int(meta["head_input"]), n_classes) if s.sru_residual else None
                head = SRUClassifier(int(meta["head_input"]), n_classes, hidden=s.sru_hidden, pool=s.sru_pool,
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


def _stage1(data: Dataset, s: CascadeSettings, ctx: FoldContext, stage: str, *, batch: int) -> tuple[Any, Any]:
    """A fresh segment CNN (seeded; ImageNet weights with ``--pretrained``) and its training config."""
    import torch

    from serbench.deep.alexnet import load_pretrained
    from serbench.deep.models import build_cnn
    from serbench.deep.specaugment import random_time_crop
    from serbench.deep.train import StageConfig
    from serbench.experiments.protocol import stage_seed

    seed = stage_seed(ctx.seed, ctx.fold, stage)
    torch.manual_seed(seed)
    cnn = build_cnn(data.n_classes, width=s.cnn_width, dropout=s.dropout, batchnorm=_batchnorm(s))
    pretrained = getattr(s, "pretrained", None)
    if pretrained:
        load_pretrained(cnn, _resolve(pretrained), num_classes=data.n_classes)
    cfg = StageConfig(stage, cnn_epochs(s), batch, seed=seed, patience=s.patience,
                      optimizer=lambda p: cnn_optimizer(p, s), schedule=s.cnn_schedule,
                      label_smoothing=s.cnn_label_smoothing, mixup_alpha=s.cnn_mixup,
                      augment=_augmenter(s),
                      crop=(lambda x: random_time_crop(x, s.image_size)) if R.image_context(s) else None)
    return cnn, cfg


def _adversary(cnn, speakers: np.ndarray, s: CascadeSettings, ctx: FoldContext, stage: str):
    """``(model to train, speaker index per utterance)``: the CNN inside a speaker adversary with cnn_adversary
    (the CNN itself is trained in place), else ``(cnn, None)``."""
    if not s.cnn_adversary:
        return cnn, None
    import numpy as np
    import torch

    from serbench.deep.adversary import SpeakerAdversarial
    from serbench.experiments.protocol import stage_seed

    names, codes = np.unique(np.asarray(speakers), return_inverse=True)
    if len(names) < 2:
        ctx.say(f"  {stage}: one training speaker, no speaker adversary (cnn_adversary needs two or more)")
        return cnn, None
    # Its own seed: the CNN's initial weights stay those of a run without the adversary.
    torch.manual_seed(stage_seed(ctx.seed, ctx.fold, f"{stage}-adversary"))
    net = SpeakerAdversarial(cnn, len(names), weight=s.cnn_adversary)
    return net, torch.as_tensor(codes, dtype=torch.long)


def _augmenter(s: CascadeSettings):
    """The CNN's training batch transform (stage 1 and the noisy FC7 views): a random frequency shift
    (cnn_freq_shift), a random level (cnn_gain) and spectral envelope (cnn_envelope), then the SpecAugment
    masks; None when none is set."""
    from functools import partial

    from serbench.deep.specaugment import mask_augmenter, random_envelope, random_freq_shift, random_gain

    most = int(round(s.cnn_freq_shift * s.image_size))
    steps = [step for step in (partial(random_freq_shift, most=most) if most else None,
                               partial(random_gain, most=s.cnn_gain) if s.cnn_gain else None,
                               partial(random_envelope, most=s.cnn_envelope) if s.cnn_envelope else None,
                               mask_augmenter(s.spec_freq_masks, s.spec_freq_width, s.spec_time_masks,
                                              s.spec_time_width)) if step is not None]
    if not steps:
        return None

    def transform(x):
        for step in steps:
            x = step(x)
        return x
    return transform


def _input(norm, s: CascadeSettings, offset: int | None = None):
    """Raw segment images -> CNN input: the time crop at ``offset`` (default: the segments themselves) of
    context images (cnn_time_shift), then the fold's normalization."""
    if not R.image_context(s):
        return norm
    from serbench.deep.specaugment import time_crop

    return lambda x: norm(time_crop(x, s.image_size, offset))


def _test_offsets(s: CascadeSettings) -> list[int | None]:
    """The crop offsets whose probabilities a test utterance averages (cnn_test_crops)."""
    from serbench.deep.specaugment import crop_offsets

    context = R.image_context(s)
    return crop_offsets(context, s.cnn_test_crops) if context else [None]


def _record_cnn(model: CascadeModel, res, stage: str, n_classes: int, ctx: FoldContext, *,
                segments_per_sample: int) -> None:
    """A trained CNN stage's timings, collapse warning and curve in the fold record (summed over the K CNNs of
    a cross-fitted fold)."""
    from serbench.deep.train import stuck_at_chance

    timing = model.info["timings"]
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
    model.info["curves"][stage] = R.curve(res.history)


def _batchnorm(s: CascadeSettings) -> bool:
    # ImageNet's AlexNet has no batch normalization: with --pretrained the setting is off.
    return bool(s.cnn_batchnorm and not getattr(s, "pretrained", None))


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


def _softmax(head, x, s: CascadeSettings, rt: "R.Runtime", transform=None):
    import torch

    from serbench.deep.train import predict_logits

    logits = predict_logits(head, x, batch=s.sru_batch * 4, device=rt.device,
                            transform=transform or (lambda v: v), amp=rt.amp)
    return torch.softmax(logits, dim=-1)


def cnn_optimizer(params, s: CascadeSettings, fused: bool | None = None):
    """Stage 1's optimizer: the paper's SGD (with ``cnn_momentum``), Adam, or AdamW (decoupled weight decay);
    ``fused``: see :func:`serbench.deep.optim.make_optimizer`."""
    from serbench.deep.optim import make_optimizer

    return make_optimizer(s.cnn_optimizer, params, lr=s.cnn_lr, weight_decay=s.cnn_weight_decay,
                          momentum=s.cnn_momentum, fused=fused)


def _resolve(path: str):
    from pathlib import Path

    return Path(path).expanduser().resolve()


@register
class CNNSRU(_Cascade):
    name = "cnn-sru"
    order = 20
    summary = "CNN (AlexNet) on N log-mel segments + SRU over their FC7 features (Jiang et al.)"
    settings_class = CNNSettings
    naming = Naming(suffix=(number("sru_crossfit", "xfit", omit=0), flag("sru_joint", "joint"),
                            number("segments", "N"), flag("speaker_norm", "spknorm")))

    def _sru_input(self, s: CascadeSettings) -> str:
        if s.sru_joint:
            return "FC7 features of the N segments; CNN and SRU trained together end to end on utterances"
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
        if s.sru_joint:
            self._fit_joint(model, data, fit, val, s, ctx, rt, tag)
            return
        if not s.sru_crossfit:
            # The paper: the SRU learns from the FC7 of the same utterances the CNN was trained on.
            cnn, norm = self._fit_cnn(model, data, fit, val, s, ctx, rt, f"cnn{tag}")
            model.cnns.append((cnn, norm))
            model.heads.append(self._sru_on_fc7(model, cnn, norm, data, fit, val, s, ctx, rt, f"sru{tag}"))
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
            cnn, norm = self._fit_cnn(model, data, fit[cnn_idx], val, s, ctx, rt, f"cnn{i}{tag}")
            model.cnns.append((cnn, norm))
            model.heads.append(self._sru_on_fc7(model, cnn, norm, data, fit[sru_idx], val, s, ctx, rt,
                                                f"sru{i}{tag}"))
        model.info["timings"]["sru_crossfit"] = k


    #: Settings that only change stage 2 (the SRU on frozen FC7): :meth:`refit_heads` may vary them.
    STAGE2_ONLY = ("sru_hidden", "sru_epochs", "sru_batch", "sru_lr", "sru_init_std", "sru_init_bias",
                   "sru_input_dropout", "sru_weight_decay", "sru_fc7_views", "sru_pool", "sru_residual", "sru_fuse")

    def refit_heads(self, model: CascadeModel, data: Dataset, rows: np.ndarray, s: CascadeSettings,
                    ctx: FoldContext) -> CascadeModel:
        """A model with ``model``'s CNNs and stage 2 trained afresh under ``s``, which may differ from the
        settings ``model`` was fitted with in :attr:`STAGE2_ONLY` only: a stage-2 lever measured on the very
        CNNs (and seeds) of a fitted cascade, without training them again."""
        if s.sru_joint or s.sru_crossfit:
            raise SystemOptionError("refit_heads needs the two-stage cascade with one CNN per ensemble member "
                                    "(sru_joint=false, sru_crossfit=0)")
        if len(model.cnns) != s.ensemble:
            raise SystemOptionError(f"the model has {len(model.cnns)} CNN(s); ensemble={s.ensemble} expects one "
                                    "per member")
        import dataclasses

        # No checkpoints: the original heads' checkpoints carry the same stage names.
        ctx = dataclasses.replace(ctx, checkpoint_dir=None)
        rt = R.Runtime.of(ctx, s.amp)
        fit, val = self._holdout(data, rows, s, ctx)
        out = CascadeModel(cnns=list(model.cnns), info={"timings": {}, "curves": {}})
        for member, (cnn, norm) in enumerate(model.cnns):
            out.heads.append(self._sru_on_fc7(out, cnn, norm, data, fit, val, s, ctx, rt,
                                              f"sru{member_stage('', member)}"))
        return out

    def _fit_joint(self, model, data, fit, val, s, ctx, rt, tag: str = "") -> None:
        """CNN and SRU as one network on ``(U, N, 3, S, S)`` utterances, one loss (the utterance's)."""
        import dataclasses

        import torch

        from serbench.deep import data as D
        from serbench.deep.models import CNNSRU as Cascade, SRUClassifier
        from serbench.deep.train import epoch_logger, train_stage

        images = R.segment_images(data, s, rt)
        n = s.segments
        norm = D.Normalizer.fit(images[R.segment_rows(fit, n).to(images.device)])   # training segments only
        # The same segments per optimizer step as stage 1 of the two-stage cascade.
        cnn, cfg = _stage1(data, s, ctx, f"joint{tag}", batch=max(1, round(s.cnn_batch / n)))
        head = SRUClassifier(cnn.fc_dim, data.n_classes, hidden=s.sru_hidden, pool=s.sru_pool,
                             init_std=s.sru_init_std, init_bias=s.sru_init_bias, input_dropout=s.sru_input_dropout)
        net = Cascade(cnn, head).to(rt.device)

        def utterances(utts):                                   # (U, N, 3, S, S)
            return images[R.segment_rows(utts, n).to(images.device)].reshape(len(utts), n, *images.shape[1:])

        def per_segment(f):                                     # a 4-D batch transform on 5-D utterance batches
            def apply(x):
                out = f(x.reshape(-1, *x.shape[2:]))
                return out.reshape(*x.shape[:2], *out.shape[1:])
            return apply

        if cfg.augment is not None:
            cfg = dataclasses.replace(cfg, augment=per_segment(cfg.augment))
        if cfg.crop is not None:
            cfg = dataclasses.replace(cfg, crop=per_segment(cfg.crop))
        y = torch.as_tensor(data.y, dtype=torch.long)
        res = train_stage(net, utterances(fit), y[fit], cfg, device=rt.device, transform=per_segment(_input(norm, s)),
                          checkpoint=checkpoint(ctx, f"joint{tag}"), amp=rt.amp,
                          val=(utterances(val), y[val]) if len(val) else None,
                          on_epoch=epoch_logger(ctx.say, R.hook(ctx), "utterances"))
        _record_cnn(model, res, f"joint{tag}", data.n_classes, ctx, segments_per_sample=n)
        model.cnns.append((cnn, norm))
        model.heads.append(head)


@register
class CNNOnly(_Cascade):
    name = "cnn"
    order = 21
    summary = "the CNN of CNN+SRU alone: mean of its segments' softmax (Table III ablation)"
    settings_class = CNNSettings
    uses_sru = False

    def _fit(self, model, data, fit, val, s, ctx, rt, tag="") -> None:
        model.cnns.append(self._fit_cnn(model, data, fit, val, s, ctx, rt, f"cnn{tag}"))

    def predict(self, model, data, rows, s, ctx) -> FoldOutput:
        import torch

        from serbench.deep.models import cnn_utterance_probs
        from serbench.experiments.dataset import FoldOutput
        from serbench.deep.train import predict_logits

        rt = R.Runtime.of(ctx, s.amp)
        images = R.segment_images(data, s, rt)
        x = images[R.segment_rows(rows, s.segments).to(images.device)]
        probs = [cnn_utterance_probs(predict_logits(cnn, x, batch=s.cnn_batch * 4, device=rt.device,
                                                    transform=_input(norm, s, offset), amp=rt.amp), s.segments)
                 for cnn, norm in model.cnns for offset in _test_offsets(s)]
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
        model.heads.append(self._fit_head(model, sel(fit), y[fit], sel(val) if len(val) else None, y[val],
                                          seqs.shape[-1], data.n_classes, s, ctx, rt, f"sru{tag}",
                                          transform=model.sru_norm))

    def predict(self, model, data, rows, s, ctx) -> FoldOutput:
        import torch

        from serbench.experiments.dataset import FoldOutput

        rt = R.Runtime.of(ctx, s.amp)
        seqs = R.lowlevel(data, s, rt)
        x = seqs[torch.as_tensor(rows, dtype=torch.long, device=seqs.device)]
        probs = torch.stack([_softmax(head, x, s, rt, transform=model.sru_norm) for head in model.heads]).mean(0)
        return FoldOutput(probs.double().cpu().numpy())
