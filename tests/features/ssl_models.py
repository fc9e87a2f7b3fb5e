"""Tiny random upstreams of every architecture family, saved in the Hugging Face layout (tests and benchmarks).

``save_tiny(root, name)`` writes ``<root>/<name>/`` (config.json, preprocessor_config.json,
model.safetensors) for a registered upstream ``name``, with a model of the same family whose
shapes are a few units wide, from a seeded random init: no download anywhere.
"""
from __future__ import annotations

from pathlib import Path

TINY_SSL = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), conv_bias=False,
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)

FAMILY_OF = {"wav2vec2": "wav2vec2-base", "hubert": "hubert-base", "wavlm": "wavlm-base-plus",
             "data2vec-audio": "data2vec-base", "whisper": "whisper-small"}


#: The same tiny widths at the real models' frame rate (320 samples, 20 ms per frame), for runs on a corpus.
TINY_SSL_20MS = {**TINY_SSL, "conv_kernel": (10, 64), "conv_stride": (5, 64)}


def tiny_model(family: str, seed: int = 0, real_rate: bool = False):
    """``(model, feature_extractor)`` of a tiny random model of ``family`` (a transformers model_type)."""
    import torch
    import transformers as T

    torch.manual_seed(seed)
    if family == "whisper":
        cfg = T.WhisperConfig(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
                              decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, vocab_size=64,
                              num_mel_bins=80, max_source_positions=1500, max_target_positions=16,
                              pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
        return T.WhisperModel(cfg).eval(), T.WhisperFeatureExtractor(feature_size=80)
    if family == "data2vec-audio":
        tiny = TINY_SSL_20MS if real_rate else TINY_SSL
        cfg = T.Data2VecAudioConfig(**{**tiny, "num_conv_pos_embeddings": 3}, conv_pos_kernel_size=5)
        model = T.Data2VecAudioModel(cfg)
        norm = True
    else:
        config_cls, model_cls = {"wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2Model),
                                 "hubert": (T.HubertConfig, T.HubertModel),
                                 "wavlm": (T.WavLMConfig, T.WavLMModel)}[family]
        model = model_cls(config_cls(**(TINY_SSL_20MS if real_rate else TINY_SSL)))
        norm = family != "hubert"
    fe = T.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=norm,
                                    return_attention_mask=False)
    return model.eval(), fe


def save_tiny(root: Path, name: str, family: str | None = None, seed: int = 0, real_rate: bool = False) -> Path:
    """Write a tiny random model into ``root/name`` (``family``: another architecture, for error tests)."""
    from serbench.features.ssl import get_upstream

    family = family or get_upstream(name).family
    model, fe = tiny_model(family, seed, real_rate)
    folder = Path(root) / name
    model.save_pretrained(folder)
    fe.save_pretrained(folder)
    return folder


def noise(seconds: float, seed: int = 0):
    """``seconds`` of quiet white noise at 16 kHz, float32 (a seeded test signal)."""
    import numpy as np

    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(np.float32)
