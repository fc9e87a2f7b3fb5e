"""DCNN-BLSTMwA (Zhang et al. 2021): segment CNN features, BLSTM, attention, DNN.

Reported UA 87.86 on EMO-DB and 68.50 on IEMOCAP. Every utterance is cut into windows of
``seg_frames`` frames with hop ``seg_hop`` (a variable number per utterance), each resized
to ``image_size`` square (bilinear) and encoded: with ``--pretrained`` by the FC7 layer of the
ImageNet AlexNet, frozen as in Zhang et al. (its features are computed once per fold,
augmented copies included); without weights a frozen random CNN would give meaningless
features, so a small :class:`~serbench.deep.dcnn_blstm_att.ConvSegmentEncoder` is trained
jointly (``train_encoder=auto``; recorded in run.json). Augmentation and class balancing
(both named by Zhang et al.) touch training rows only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serbench.systems.registry import register
from serbench.systems.settings import AT_LEAST_ONE, NON_NEGATIVE, Each, Interval, Options, setting
from serbench.systems.utterance import FAST, TINY, UtteranceSettings, UtteranceSystem

TRAIN_ENCODER = ("auto", "true", "false")


@dataclass(frozen=True)
class DCNNSettings(UtteranceSettings):
    image_size: int = setting(227, "segment images are image_size x image_size (AlexNet: 227)", check=Interval(8, None))
    seg_frames: int = setting(64, "window length in frames (0.64 s); shorter utterances: one window",
                              check=AT_LEAST_ONE)
    seg_hop: int = setting(30, "window hop in frames", check=AT_LEAST_ONE)
    max_segments: int = setting(0, "random run of at most this many windows per TRAINING utterance; 0 = all",
                                check=NON_NEGATIVE)
    train_encoder: str = setting("auto", "auto: frozen AlexNet with --pretrained, else ConvSegmentEncoder trained "
                                         "jointly", check=Options(*TRAIN_ENCODER))
    encoder_channels: tuple[int, ...] = setting((16, 32), "ConvSegmentEncoder channels (no --pretrained)",
                                                check=Each(Interval(1, None)))
    encoder_dim: int = setting(256, "ConvSegmentEncoder output size", check=AT_LEAST_ONE)
    hidden: int = setting(128, "BLSTM units per direction", check=AT_LEAST_ONE)
    lstm_layers: int = setting(1, "BLSTM layers", check=AT_LEAST_ONE)
    attn_dim: int = setting(64, "attention size", check=AT_LEAST_ONE)
    dnn_hidden: int = setting(256, "DNN hidden units", check=AT_LEAST_ONE)
    dnn_layers: int = setting(2, "DNN layers", check=AT_LEAST_ONE)
    dropout: float = setting(0.3, "dropout", check=Interval(0, 1, "left"))
    aug_copies: int = setting(1, "augmented copies of each training utterance", check=NON_NEGATIVE)
    balance: bool = setting(True, "oversample training classes up to the largest")
    pretrained: str | None = setting(None, "local torchvision-named AlexNet state dict (ImageNet) as a frozen "
                                           "segment encoder", flag="--pretrained")

    PROFILES = {
        "paper": {},
        "fast": {**FAST, "image_size": 64, "encoder_dim": 128, "hidden": 64, "dnn_hidden": 64},
        "tiny": {**TINY, "image_size": 16, "seg_frames": 16, "seg_hop": 8, "encoder_channels": (4,),
                 "encoder_dim": 8, "hidden": 8, "attn_dim": 8, "dnn_hidden": 8},
    }

    def check(self) -> None:
        from serbench.deep.alexnet import MIN_INPUT_SIZE

        if self.pretrained is not None:
            if not Path(self.pretrained).expanduser().is_file():
                raise self.bad("pretrained", "no such file; give a local AlexNet state dict or leave it out")
            if self.image_size < MIN_INPUT_SIZE:
                raise self.bad("image_size", f"AlexNet (--pretrained) needs at least {MIN_INPUT_SIZE} pixels; the "
                                             "paper uses 227")
        elif self.train_encoder == "false":
            raise self.bad("train_encoder", "a frozen random CNN gives meaningless features without --pretrained; "
                                            "give --pretrained alexnet.pth or use train_encoder=auto")


@register
class DCNNBLSTMAttSystem(UtteranceSystem):
    name = "dcnn-blstm-att"
    order = 33
    summary = "segment CNN features + BLSTM + attention + DNN (Zhang et al. 2021)"
    paper = "Zhang et al. 2021 (ser-abstracts-collection.txt)"
    settings_class = DCNNSettings

    def build(self, s: DCNNSettings, n_classes: int, *, in_channels: int, n_mels: int):
        from serbench.deep.alexnet import AlexNet, load_pretrained
        from serbench.deep.dcnn_blstm_att import ConvSegmentEncoder, DCNNBLSTMAtt, FeatureExtractor

        if s.pretrained:
            alex = AlexNet(n_classes, width=1.0)
            load_pretrained(alex, Path(s.pretrained).expanduser(), num_classes=n_classes)
            encoder = FeatureExtractor(alex, "fc7", alex.fc_dim)
            train_enc = s.train_encoder == "true"
        else:
            encoder = ConvSegmentEncoder(s.encoder_dim, s.encoder_channels, in_channels=in_channels)
            train_enc = True
        return DCNNBLSTMAtt(encoder, n_classes, train_encoder=train_enc, hidden=s.hidden, lstm_layers=s.lstm_layers,
                            attn_dim=s.attn_dim, dnn_hidden=s.dnn_hidden, dnn_layers=s.dnn_layers, dropout=s.dropout)

    def export_meta(self, net) -> dict:
        from serbench.deep.dcnn_blstm_att import FeatureExtractor

        return {"encoder": "alexnet" if isinstance(net.encoder, FeatureExtractor) else "conv",
                "train_encoder": bool(net.train_encoder)}

    def network(self, s: DCNNSettings, n_classes: int, meta: dict):
        # The ImageNet weights are part of the saved state: the --pretrained file is not needed again.
        if meta.get("encoder") != "alexnet":
            return super().network(s, n_classes, meta)
        from serbench.deep.alexnet import AlexNet
        from serbench.deep.dcnn_blstm_att import DCNNBLSTMAtt, FeatureExtractor

        alex = AlexNet(n_classes, width=1.0)
        return DCNNBLSTMAtt(FeatureExtractor(alex, "fc7", alex.fc_dim), n_classes,
                            train_encoder=bool(meta.get("train_encoder")), hidden=s.hidden, lstm_layers=s.lstm_layers,
                            attn_dim=s.attn_dim, dnn_hidden=s.dnn_hidden, dnn_layers=s.dnn_layers, dropout=s.dropout)

    def batch_inputs(self, net, s: DCNNSettings, plan, rt):
        from serbench.deep.batching import FeatureInputs, SegmentInputs

        kw = dict(seg_frames=s.seg_frames, seg_hop=s.seg_hop, image_size=s.image_size, max_segments=s.max_segments)
        if net.train_encoder:
            return SegmentInputs(plan, **kw)
        return FeatureInputs(plan, net, device=rt.device, amp=rt.amp, **kw)

    def crop_text(self, s: DCNNSettings) -> str:
        return (f"training utterances keep a random run of at most {s.max_segments} windows" if s.max_segments
                else "off (every window of every utterance)")

    def note(self, s: DCNNSettings) -> str:
        return self.details(s)["encoder"]

    def details(self, s: DCNNSettings) -> dict:
        if s.pretrained:
            train_enc = s.train_encoder == "true"
            encoder = (f"AlexNet FC7 (4096-d) with ImageNet weights from {Path(s.pretrained).expanduser().resolve()}, "
                       + ("fine-tuned jointly" if train_enc else "frozen (features computed once per fold)"))
        else:
            train_enc = True
            encoder = (f"ConvSegmentEncoder (conv {','.join(map(str, s.encoder_channels))} -> {s.encoder_dim}-d), "
                       "trained jointly from scratch (no --pretrained weights)")
        return {"encoder": encoder, "train_encoder": train_enc,
                "segments": (f"windows of {s.seg_frames} frames, hop {s.seg_hop} (a variable number per utterance; "
                             f"a shorter utterance is one window), each resized bilinearly to "
                             f"{s.image_size}x{s.image_size}")}
