"""Extraction speed of the self-supervised upstreams: seconds of audio per second, on this machine's CPU.

The models are built from the real configurations' shapes (hard-coded below: no hub is reachable)
with random weights, saved in the Hugging Face layout into a temporary models root, and run through
serbench's own extractor (:class:`serbench.features.ssl.Encoder`: feature extractor, windows,
pooling of every layer), so the figure is what ``serbench extract`` pays per file, model loading
excluded. The speed does not depend on the weight values. Whisper's decoder is cut to one layer
(it is dropped on loading; only the encoder runs). ``quick``: the two base-size models on 2 x 3 s;
full: base and large sizes on 3 utterances of 4 s and one of 25 s (two 20-s windows for the
wav2vec2 family). By hand: ``python -m benchmarks.bench_ssl [--quick]``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

_CONV = dict(conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
             num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16)
#: name -> (family, config keyword arguments): the shapes of the hub configurations.
CONFIGS = {
    "wavlm-base-plus": ("wavlm", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                      intermediate_size=3072, feat_extract_norm="group", do_stable_layer_norm=False,
                                      conv_bias=False, **_CONV)),
    "wavlm-large": ("wavlm", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                  intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
                                  conv_bias=False, **_CONV)),
    "whisper-small": ("whisper", dict(d_model=768, encoder_layers=12, encoder_attention_heads=12, encoder_ffn_dim=3072,
                                      num_mel_bins=80)),
    "whisper-medium": ("whisper", dict(d_model=1024, encoder_layers=24, encoder_attention_heads=16,
                                       encoder_ffn_dim=4096, num_mel_bins=80)),
}
QUICK = ("wavlm-base-plus", "whisper-small")


def _save(root: Path, name: str) -> None:
    import torch
    import transformers as T

    family, kw = CONFIGS[name]
    torch.manual_seed(0)
    if family == "whisper":
        cfg = T.WhisperConfig(**kw, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=8, vocab_size=64,
                              max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              decoder_start_token_id=1)
        model, fe = T.WhisperModel(cfg), T.WhisperFeatureExtractor(feature_size=kw["num_mel_bins"])
    else:
        model = T.WavLMModel(T.WavLMConfig(**kw))
        fe = T.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                        do_normalize=kw["feat_extract_norm"] == "layer",
                                        return_attention_mask=kw["feat_extract_norm"] == "layer")
    model.save_pretrained(root / name)
    fe.save_pretrained(root / name)


def run(out: Path, quick: bool) -> dict:
    import numpy as np
    import torch

    from serbench.features.registry import get_feature_set

    os.environ["SERBENCH_SSL_DEVICE"] = "cpu"
    names = QUICK if quick else tuple(CONFIGS)
    lengths = [3.0, 3.0] if quick else [4.0, 4.0, 4.0, 25.0]
    rng = np.random.default_rng(0)
    signals = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in lengths]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ssl-") as tmp:
        os.environ["SERBENCH_MODELS"] = tmp
        for name in names:
            t0 = time.perf_counter()
            _save(Path(tmp), name)
            fs = get_feature_set(name)
            encoder = fs.make_extractor()
            load_s = time.perf_counter() - t0
            encoder(signals[0][:16000], 16000)                       # warm-up (allocations, first kernels)
            per_file = []
            for x in signals:
                t1 = time.perf_counter()
                values = encoder(x, 16000)
                per_file.append(time.perf_counter() - t1)
                assert np.isfinite(values).all()
            audio_s, wall = float(sum(lengths)), float(sum(per_file))
            results[name] = {"family": CONFIGS[name][0], "layers": fs.backend.n_layers, "hidden": fs.backend.hidden,
                             "columns": len(fs.feature_names()), "audio_s": audio_s, "wall_s": wall,
                             "audio_s_per_s": audio_s / wall, "per_file_s": per_file, "build_and_load_s": load_s}
            del encoder
            import shutil

            shutil.rmtree(Path(tmp) / name)
    return {"device": "cpu", "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "utterance_s": lengths, "models": results,
            "note": "random weights with the real configurations' shapes; whisper pads every window to 30 s, so "
                    "its cost per file is that of 30 s of audio whatever the length"}


if __name__ == "__main__":
    res = run(Path("bench-results"), "--quick" in sys.argv)
    print(json.dumps(res, indent=1))
