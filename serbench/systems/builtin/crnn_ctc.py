"""CRNN-CTC (Zhu et al. 2020): frame outputs trained with CTC on energy-selected emotional frames.

Reported WAR 70.11 / UAR 69.53 (corpus not named in the abstract).
"""
from __future__ import annotations

from dataclasses import dataclass

from serbench.systems.registry import register
from serbench.systems.settings import POSITIVE, Options, setting
from serbench.systems.utterance import FAST, TINY, TINY_RNN, RecurrentSettings, UtteranceSystem, recurrent_kwargs

DECODE_METHODS = ("posterior", "best_path")


@dataclass(frozen=True)
class CRNNCTCSettings(RecurrentSettings):
    drop_db: float = setting(25.0, "emotional frames: within drop_db of the utterance's loudest frame", check=POSITIVE)
    decode: str = setting("posterior", "'posterior' or 'best_path' decoding", check=Options(*DECODE_METHODS))

    PROFILES = {
        "paper": {},
        "fast": {**FAST, "max_frames": 300, "channels": (8, 16, 32), "hidden": 64},
        "tiny": {**TINY, **TINY_RNN},
    }


@register
class CRNNCTCSystem(UtteranceSystem):
    name = "crnn-ctc"
    order = 31
    summary = "CRNN whose frames are trained with CTC on emotional frames (Zhu et al. 2020)"
    paper = "Zhu et al. 2020 (crnn-ctc-zhu2020.txt)"
    settings_class = CRNNCTCSettings

    def build(self, s: CRNNCTCSettings, n_classes: int, *, in_channels: int, n_mels: int):
        from serbench.deep.crnn_ctc import CRNNCTC

        return CRNNCTC(n_classes, in_channels=in_channels, n_mels=n_mels, drop_db=s.drop_db, decode_method=s.decode,
                       **recurrent_kwargs(s))

    def batch_inputs(self, net, s, plan, rt):
        from serbench.deep.batching import SpectrogramInputs

        return SpectrogramInputs(plan, max_frames=s.max_frames, energy=True)

    def details(self, s: CRNNCTCSettings) -> dict:
        return {
            "loss": "CTC (blank + one token per emotion)",
            "frame_split": (f"an output frame is emotional when its energy (the max over the input frames it covers "
                            f"of 10 log10 of the summed mel power of the RAW static log-mel) is within {s.drop_db:g} "
                            "dB of the utterance's loudest frame; CTC target = the utterance's label once per run of "
                            "emotional frames, blank elsewhere"),
            "decode": {"posterior": "posterior decoding: argmax of the non-blank posteriors summed over frames",
                       "best_path": "best path, majority vote over emitted tokens (posterior decoding on ties and "
                                    "empty paths)"}[s.decode],
            "scores": "softmax(logits) = each emotion's share of the non-blank posterior mass summed over frames",
        }
