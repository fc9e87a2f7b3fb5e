"""CRNN-MK (Meyer et al. 2021): multi-kernel CNN, BLSTM, learned summarization, enhanced features.

Reported UA 64.5 on IEMOCAP. Each of the four ideas is a flag (``--set mk_multi_kernel=false``
...); a run with any of them off is another system name (``crnn-mk-nomk``, ``-mean``/``-last``,
``-noenh``, ``-nols``), so the reports keep the full model and each ablation apart.
"""
from __future__ import annotations

from dataclasses import dataclass

from serbench.systems.naming import Naming, flag, word
from serbench.systems.registry import register
from serbench.systems.settings import AT_LEAST_ONE, FRACTION, Each, Interval, Options, setting
from serbench.systems.utterance import FAST, SUMMARIES, TINY, TINY_RNN, RecurrentSettings, UtteranceSystem, \
    recurrent_kwargs


@dataclass(frozen=True)
class CRNNMKSettings(RecurrentSettings):
    channels: tuple[int, ...] = setting((32, 32, 64), "conv channels per block")
    summary: str = setting("attention", "Meyer et al.'s learned summarization; 'mean' / 'last' to compare",
                           check=Options(*SUMMARIES))
    attn_dim: int = setting(64, "attention size", check=AT_LEAST_ONE)
    mk_multi_kernel: bool = setting(True, "parallel convolutions of several widths in the first block")
    mk_enhanced_features: bool = setting(True, "static + delta + delta-delta, each band z-scored per utterance")
    mk_effective_training: bool = setting(True, "label smoothing")
    mk_kernel_widths: tuple[int, ...] = setting((3, 7, 11, 15), "kernel widths in frames (odd)",
                                                check=Each(Interval(1, None), odd=True))
    mk_label_smoothing: float = setting(0.1, "label smoothing of effective training", check=FRACTION)

    PROFILES = {
        "paper": {},
        "fast": {**FAST, "max_frames": 300, "channels": (16, 16, 32), "hidden": 64},
        "tiny": {**TINY, **TINY_RNN, "channels": (4, 8), "attn_dim": 8, "mk_kernel_widths": (3, 7)},
    }

    def check(self) -> None:
        super().check()
        if self.mk_multi_kernel and self.channels[0] < len(self.mk_kernel_widths):
            raise self.bad("channels", f"the first block needs >= {len(self.mk_kernel_widths)} channels "
                                       "(one per kernel width)")


@register
class CRNNMKSystem(UtteranceSystem):
    name = "crnn-mk"
    order = 32
    summary = "multi-kernel CRNN with learned summarization (Meyer et al. 2021)"
    paper = "Meyer et al. 2021 (improving-crnn-meyer2021.txt)"
    settings_class = CRNNMKSettings
    naming = Naming(suffix=(flag("mk_multi_kernel", "nomk", when=False), word("summary", SUMMARIES, omit="attention"),
                            flag("mk_enhanced_features", "noenh", when=False),
                            flag("mk_effective_training", "nols", when=False), flag("speaker_norm", "spknorm")))

    def build(self, s: CRNNMKSettings, n_classes: int, *, in_channels: int, n_mels: int):
        from serbench.deep.crnn_mk import CRNNMK

        return CRNNMK(n_classes, multi_kernel=s.mk_multi_kernel, summary=s.summary,
                      enhanced_features=s.mk_enhanced_features, effective_training=s.mk_effective_training,
                      kernel_widths=s.mk_kernel_widths, label_smoothing=s.mk_label_smoothing, attn_dim=s.attn_dim,
                      n_mels=n_mels, **recurrent_kwargs(s))

    def details(self, s: CRNNMKSettings) -> dict:
        return {"variant": self.stored_name(s.replace(speaker_norm=False)), "multi_kernel": s.mk_multi_kernel,
                "kernel_widths": list(s.mk_kernel_widths) if s.mk_multi_kernel else None,
                "summary": s.summary, "enhanced_features": s.mk_enhanced_features,
                "effective_training": s.mk_effective_training,
                "label_smoothing": s.mk_label_smoothing if s.mk_effective_training else 0.0,
                "input": ("static, delta, delta-delta log-mel, each band z-scored per utterance"
                          if s.mk_enhanced_features else "static log-mel channel only")}
