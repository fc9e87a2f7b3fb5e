"""Extraction speed of the self-supervised upstreams, batching, and the memory of reading one layer.

The models are built from the real configurations' shapes (hard-coded below: no hub is reachable)
with random weights, saved in the Hugging Face layout into a temporary models root, and run through
serbench's own extractor (:class:`serbench.features.ssl.Encoder`: feature extractor, windows,
pooling of every layer), so the figure is what ``serbench extract`` pays per file, model loading
excluded. The speed does not depend on the weight values. Whisper's decoder is cut to one layer
(it is dropped on loading; only the encoder runs). ``quick``: the two base-size models on 2 x 3 s;
full: base and large sizes on 3 utterances of 4 s and one of 25 s (two 20-s windows for the
wav2vec2 family).

``batching``: the same files one by one (``encoder(x, sr)`` each) and in one call
(``encoder.batch(files, sr)``), side by side, interleaved, medians over the rounds; the files are
3 s each (wavlm-base-plus has a group-normalized front-end, so it batches windows of equal length
only: equal files are its best case, 8 of them in one pass under the CPU's 30-s budget; Whisper pads
every window to 30 s anyway, run here at two frames per pass). Full runs add wavlm-large (a
layer-normalized front-end: padded batches) on files of 2 to 4 s.

``read_memory``: a cache shaped like wavlm-large's (25 hidden states x mean and std x 1024 =
51,200 float32 columns), written through :class:`~serbench.features.cache.FeatureCache`, read in a
fresh process each way: as ``load()`` read it before (the whole table through pandas, then
float64), as it reads now (:meth:`~serbench.features.cache.FeatureCache.read_matrix`, float64),
and one layer's block in float32; peak RSS above the process's RSS before the read (Linux VmHWM).

By hand: ``python -m benchmarks.bench_ssl [--quick]``.
"""
from __future__ import annotations

import json
import os
import statistics
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


def _batching(encoder, signals: list, rounds: int, budget_s: float | None = None) -> dict:
    """One by one vs one call, interleaved (the order flips each round); medians, and how far apart the values are.

    ``budget_s``: padded seconds per forward pass (default: the device's, :func:`serbench.features.ssl.batch_seconds`).
    """
    import numpy as np

    if budget_s is not None:
        encoder.budget = int(budget_s * 16000)
    seconds: dict[str, list[float]] = {"one_by_one": [], "batched": []}
    values = {}
    for r in range(rounds):
        for mode in (("one_by_one", "batched") if r % 2 == 0 else ("batched", "one_by_one")):
            t0 = time.perf_counter()
            values[mode] = (np.stack([encoder(x, 16000) for x in signals]) if mode == "one_by_one"
                            else np.stack(encoder.batch(signals, 16000)))
            seconds[mode].append(time.perf_counter() - t0)
    one, batched = statistics.median(seconds["one_by_one"]), statistics.median(seconds["batched"])
    diff = np.abs(values["batched"] - values["one_by_one"])
    return {"mode": encoder.mode, "files": len(signals), "audio_s": sum(len(x) for x in signals) / 16000,
            "budget_s": encoder.budget / 16000, "rounds": rounds, "one_by_one_s": seconds["one_by_one"], "batched_s": seconds["batched"],
            "one_by_one_median_s": one, "batched_median_s": batched, "speedup": one / batched,
            "max_abs_diff": float(diff.max()),
            "max_rel_diff": float((diff / np.maximum(np.abs(values["one_by_one"]), 1e-3)).max())}


def run(out: Path, quick: bool) -> dict:
    import numpy as np
    import torch

    from serbench.features.registry import get_feature_set

    os.environ["SERBENCH_SSL_DEVICE"] = "cpu"
    names = QUICK if quick else tuple(CONFIGS)
    lengths = [3.0, 3.0] if quick else [4.0, 4.0, 4.0, 25.0]
    rng = np.random.default_rng(0)
    signals = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in lengths]
    results: dict = {}
    batching: dict = {}
    # name -> (file seconds, padded seconds per pass; None: the CPU's default). Whisper at two 30-s frames per
    # pass: what the CPU's default of one frame was chosen against.
    batch_files = {"wavlm-base-plus": ([3.0] * 8, None), "whisper-small": ([3.0] * 2, 60.0)}
    if not quick:
        batch_files["wavlm-large"] = ([4.0, 3.7, 3.5, 3.2, 3.0, 2.6, 2.3, 2.0], None)
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
            if name in batch_files:
                seconds, budget = batch_files[name]
                files = [(0.1 * rng.standard_normal(int(x * 16000))).astype(np.float32) for x in seconds]
                batching[name] = _batching(encoder, files, rounds=3, budget_s=budget)
            del encoder
            import shutil

            shutil.rmtree(Path(tmp) / name)
    return {"device": "cpu", "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "utterance_s": lengths, "models": results, "batching": batching,
            "read_memory": read_memory(300 if quick else 1000),
            "note": "random weights with the real configurations' shapes; whisper pads every window to 30 s, so "
                    "its cost per file is that of 30 s of audio whatever the length"}


# ---- reading a wavlm-large-shaped cache ------------------------------------------------------------------
STATES, HIDDEN = 25, 1024


def _shaped_set():
    """A vector set named and shaped like wavlm-large's, registered in this process (nothing is extracted)."""
    from serbench.features.registry import FeatureSet, Kind, get_feature_set, register
    from serbench.features.ssl import layer_columns

    class Backend:
        version = "1"
        params = {"shape": "wavlm-large"}

        def libraries(self) -> dict:
            return {}

        def feature_names(self) -> list[str]:
            return [c for k in range(STATES) for c in layer_columns(k, HIDDEN)]

        def make_extractor(self):
            raise RuntimeError("a read benchmark extracts nothing")

    try:
        return get_feature_set("bench-wavlm-large-shaped")
    except Exception:
        return register(FeatureSet("bench-wavlm-large-shaped", Kind.VECTOR, "benchmark", lambda: Backend()))


def _write_cache(cache: Path, n_rows: int) -> list[str]:
    import numpy as np

    from serbench.features.cache import FeatureCache, Row

    store = FeatureCache("demo", _shaped_set(), cache)
    rng = np.random.default_rng(0)
    ids = [f"u{i:05d}" for i in range(n_rows)]
    for start in range(0, n_rows, 100):       # parts of 100 rows, then compacted, as an extraction leaves it
        store.append([Row(u, "0" * 64, "ok", "", f"/x/{u}.wav", rng.standard_normal(STATES * 2 * HIDDEN))
                      for u in ids[start:start + 100]])
    store.compact()
    return ids


def _vm() -> dict[str, int]:
    import re

    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+) kB", text).group(1)) * 1024 for k in ("VmRSS", "VmHWM")}


def _read_one(mode: str, cache: Path, n_rows: int) -> dict:
    """In a fresh process: one way of reading the cache; its peak RSS above the RSS before the read."""
    import numpy as np
    import pandas as pd

    from serbench.features.cache import FeatureCache
    from serbench.features.ssl import layer_columns

    store = FeatureCache("demo", _shaped_set(), cache)
    ids = [f"u{i:05d}" for i in range(n_rows)][::-1]          # manifest order differs from the stored order
    names = store.feature_columns
    Path("/proc/self/clear_refs").write_text("5")             # VmHWM := VmRSS
    start = _vm()["VmRSS"]
    t0 = time.perf_counter()
    if mode == "before":      # load() before: the whole table, through pandas, then float64
        df = store.read().to_pandas().set_index("utterance_id")
        X = df.reindex(ids)[names].astype(np.float64)
        del df
        shape, nbytes = X.shape, X.to_numpy().nbytes
    elif mode == "after":     # load() now: read_matrix into one float64 array, wrapped by a frame
        values, cols, _ = store.read_matrix(ids, None, np.float64)
        X = pd.DataFrame(values, index=pd.Index(ids, name="utterance_id"), columns=cols, copy=False)
        shape, nbytes = X.shape, values.nbytes
    else:                     # one layer's block, float32
        values, _, _ = store.read_matrix(ids, layer_columns(12, HIDDEN), np.float32)
        shape, nbytes = values.shape, values.nbytes
    wall = time.perf_counter() - t0
    return {"mode": mode, "shape": list(shape), "result_mib": nbytes / 2**20, "wall_s": wall,
            "peak_above_start_mib": (_vm()["VmHWM"] - start) / 2**20}


def read_memory(n_rows: int) -> dict:
    """The three reads, each in a fresh interpreter (arrow's allocator keeps freed memory in a process)."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench-ssl-read-") as tmp:
        t0 = time.perf_counter()
        _write_cache(Path(tmp), n_rows)
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.parquet"))
        reads = {}
        for mode in ("before", "after", "layer_float32"):
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_ssl", "--read-one", mode, tmp,
                                   str(n_rows)], capture_output=True, text=True, check=True,
                                  cwd=Path(__file__).resolve().parents[1])
            reads[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rows": n_rows, "columns": STATES * 2 * HIDDEN, "parquet_mib": size / 2**20, "write_s": write_s,
            "reads": reads, "peak_ratio_before_after": reads["before"]["peak_above_start_mib"]
            / reads["after"]["peak_above_start_mib"]}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--read-one"]:
        print(json.dumps(_read_one(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))))
    else:
        res = run(Path("bench-results"), "--quick" in sys.argv)
        print(json.dumps(res, indent=1))
