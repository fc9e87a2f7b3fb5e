"""CRNN: CNN + BLSTM + FC on whole log-mel utterances, the baseline the seed papers build on.

Settings are our choices (the papers give the topology only): see :class:`CRNNSettings`.
"""
from __future__ import annotations

from dataclasses import dataclass

from serbench.systems.registry import register
from serbench.systems.settings import AT_LEAST_ONE, Options, setting
from serbench.systems.utterance import FAST, SUMMARIES, TINY, TINY_RNN, RecurrentSettings, UtteranceSystem, \
    recurrent_kwargs


@dataclass(frozen=True)
class CRNNSettings(RecurrentSettings):
    summary: str = setting("mean", "'mean', 'last' or 'attention' over the BLSTM outputs", check=Options(*SUMMARIES))
    attn_dim: int = setting(64, "attention size (summary=attention)", check=AT_LEAST_ONE)

    PROFILES = {
        "paper": {},
        "fast": {**FAST, "max_frames": 300, "channels": (8, 16, 32), "hidden": 64},
        "tiny": {**TINY, **TINY_RNN, "attn_dim": 8},
    }


@register
class CRNNSystem(UtteranceSystem):
    name = "crnn"
    order = 30
    summary = "CNN + BLSTM + FC on whole log-mel utterances (the seed papers' baseline)"
    paper = "the CRNN baseline of Zhu et al. 2020 and Meyer et al. 2021"
    settings_class = CRNNSettings

    def build(self, s: CRNNSettings, n_classes: int, *, in_channels: int, n_mels: int):
        from serbench.deep.crnn import CRNN

        return CRNN(n_classes, in_channels=in_channels, n_mels=n_mels, summary=s.summary, attn_dim=s.attn_dim,
                    **recurrent_kwargs(s))

    def details(self, s: CRNNSettings) -> dict:
        return {"summary": s.summary, "loss": "cross-entropy"}
