"""Deep-model training throughput: segments per second of the CNN stage (and SRU stage speed).

Synthetic 3 x 60 x T log-mel arrays (T drawn from 100..400 frames, the range of CASIA/EMO-DB
utterances) are split into N = 5 segments and resized by ``segment_images`` exactly as a
run does; then the real training code (:func:`serbench.deep.train.train_stage`) trains the
profile's CNN for 2 epochs over ``n_batches`` batches, and the second epoch is timed (the
first warms up allocators and kernels). Reported: CNN training segments/s, the SRU stage's
utterances/s on FC7-sized inputs, and segment resize time. The ``fast`` profile runs on CPU
with 1 and 2 torch threads (interleaved, medians of repeats), with one thread at the image sizes
of ``IMAGE_SIZES`` (interleaved too: what a larger image costs on this CPU, as a ratio to the
profile's own size), and with the kernels a run uses (fused optimizer step, channels-last
convolutions) against torch's defaults (``kernels_threads_1``); with CUDA the ``paper`` profile
also runs on the GPU (AMP on).

By hand: ``python -m benchmarks.bench_deep [--quick]``.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

N_SEGMENTS = 5
N_CLASSES = 6
IMAGE_SIZES = (64, 96, 128)


def _mels(n_utts: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 60, int(rng.integers(100, 401)))).astype(np.float32) for _ in range(n_utts)]


# How stage 1 runs its kernels: what a run uses, and torch's defaults one step at a time.
KERNELS = {"run": {"fused": None, "channels_last": True},                # fused optimizer, channels-last convs
           "fused_step_only": {"fused": None, "channels_last": False},
           "torch_default": {"fused": False, "channels_last": False}}   # per-tensor optimizer step on CPU


def _cnn_rate(profile_name: str, device: torch.device, n_batches: int, overrides: dict | None = None,
              kernel: str = "run") -> dict:
    from serbench.deep.data import Normalizer, segment_tensor
    from serbench.deep.models import build_cnn
    from serbench.deep.train import StageConfig, train_stage
    from serbench.systems import registry
    from serbench.deep.specaugment import random_time_crop
    from serbench.systems.builtin.cnn_sru_training import cnn_optimizer
    from serbench.systems.deep_runtime import image_context

    prof = registry.get("cnn-sru").settings(profile_name, {"segments": N_SEGMENTS, **(overrides or {})})
    n_seg = n_batches * prof.cnn_batch
    mels = _mels(-(-n_seg // N_SEGMENTS))
    t0 = time.perf_counter()
    context = image_context(prof)            # time-shifted training crops, as the profile trains
    images = segment_tensor(mels, N_SEGMENTS, prof.image_size, device=device, context=context)[:n_seg]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    resize_s = time.perf_counter() - t0
    y = torch.randint(0, N_CLASSES, (n_seg,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    how = KERNELS[kernel]
    cnn = build_cnn(N_CLASSES, width=prof.cnn_width, dropout=prof.dropout, batchnorm=prof.cnn_batchnorm,
                    channels_last=how["channels_last"]).to(device)
    cfg = StageConfig("cnn", epochs=2, batch=prof.cnn_batch, seed=0,
                      optimizer=lambda p: cnn_optimizer(p, prof, fused=how["fused"]),
                      schedule=prof.cnn_schedule,
                      crop=(lambda x: random_time_crop(x, prof.image_size)) if context else None)
    res = train_stage(cnn, images, y, cfg, device=device, transform=Normalizer.fit(images),
                      amp=prof.amp and device.type == "cuda")
    last = res.history[-1]
    return {"profile": prof.profile, "device": str(device), "threads": torch.get_num_threads(),
            "image_size": prof.image_size, "cnn_width": prof.cnn_width, "batch": prof.cnn_batch,
            "batchnorm": prof.cnn_batchnorm, "optimizer": prof.cnn_optimizer, "time_shift": prof.cnn_time_shift,
            "amp": bool(prof.amp and device.type == "cuda"), "segments_timed": last["samples"],
            "cnn_segments_per_s": last["samples"] / last["seconds"],
            "resize_segments_per_s": len(images) / resize_s}


def _sru_rate(profile_name: str, device: torch.device, n_utts: int) -> dict:
    from serbench.deep.models import SRUClassifier
    from serbench.deep.optim import make_optimizer
    from serbench.deep.train import StageConfig, train_stage
    from serbench.systems import registry

    prof = registry.get("cnn-sru").settings(profile_name, {"segments": N_SEGMENTS})
    fc_dim = int(round(4096 * prof.cnn_width))
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(n_utts, N_SEGMENTS, fc_dim, generator=g))
    y = torch.randint(0, N_CLASSES, (n_utts,), generator=g)
    torch.manual_seed(0)
    head = SRUClassifier(fc_dim, N_CLASSES, hidden=prof.sru_hidden, init_std=prof.sru_init_std,
                         init_bias=prof.sru_init_bias).to(device)
    cfg = StageConfig("sru", epochs=2, batch=prof.sru_batch, seed=0,
                      optimizer=lambda p: make_optimizer("adam", p, lr=prof.sru_lr))
    res = train_stage(head, x, y, cfg, device=device, transform=lambda t: t, amp=prof.amp and device.type == "cuda")
    last = res.history[-1]
    return {"profile": prof.profile, "device": str(device), "threads": torch.get_num_threads(),
            "sru_hidden": prof.sru_hidden, "input": fc_dim, "sru_utterances_per_s": last["samples"] / last["seconds"]}


def run(out: Path, quick: bool = False) -> dict:
    """Throughput of the deep training stages; writes nothing but returns the numbers."""
    n_batches = 4 if quick else 10
    repeats = 1 if quick else 3
    before = torch.get_num_threads()
    cpu = torch.device("cpu")
    rows: dict[int, list[dict]] = {1: [], 2: []}
    try:
        for _ in range(repeats):
            for threads in (1, 2):  # interleaved so changing machine load hits both alike
                torch.set_num_threads(threads)
                rows[threads].append(_cnn_rate("fast", cpu, n_batches))
        by_size: dict[int, list[float]] = {size: [] for size in IMAGE_SIZES}
        torch.set_num_threads(1)
        for _ in range(repeats):
            for size in IMAGE_SIZES:
                rate = _cnn_rate("fast", cpu, n_batches, {"image_size": size})["cnn_segments_per_s"]
                by_size[size].append(rate)
        kernels: dict[str, list[float]] = {kernel: [] for kernel in KERNELS}
        for _ in range(repeats):
            for kernel in KERNELS:
                kernels[kernel].append(_cnn_rate("fast", cpu, n_batches, kernel=kernel)["cnn_segments_per_s"])
        sru_fast = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            sru_fast[f"threads_{threads}"] = _sru_rate("fast", cpu, 300 if quick else 900)
    finally:
        torch.set_num_threads(before)
    result: dict = {"n_segments": N_SEGMENTS, "batches_timed": n_batches, "repeats": repeats, "fast_cpu": {}}
    for threads, rs in rows.items():
        result["fast_cpu"][f"threads_{threads}"] = {
            **{k: v for k, v in rs[0].items() if k not in ("cnn_segments_per_s", "resize_segments_per_s", "threads")},
            "cnn_segments_per_s_median": statistics.median(r["cnn_segments_per_s"] for r in rs),
            "cnn_segments_per_s_all": [r["cnn_segments_per_s"] for r in rs],
            "resize_segments_per_s_median": statistics.median(r["resize_segments_per_s"] for r in rs),
        }
    result["fast_cpu"]["sru"] = sru_fast
    own = result["fast_cpu"]["threads_1"]["image_size"]
    result["fast_cpu"]["image_size_threads_1"] = {
        str(size): {"cnn_segments_per_s_median": statistics.median(rates),
                    "time_ratio_to_profile": (statistics.median(by_size[own]) / statistics.median(rates)
                                              if own in by_size else None)}
        for size, rates in by_size.items()}
    # What a run's kernels save against torch's defaults, at the profile's image size, side by side.
    run_rate = statistics.median(kernels["run"])
    result["fast_cpu"]["kernels_threads_1"] = {
        kernel: {**KERNELS[kernel], "cnn_segments_per_s_median": statistics.median(rates),
                 "time_ratio_to_run": run_rate / statistics.median(rates)}
        for kernel, rates in kernels.items()}
    # One CASIA LOSO fold trains on 900 utterances x N segments per epoch.
    rate = result["fast_cpu"]["threads_1"]["cnn_segments_per_s_median"]
    epoch_s = result["fast_cpu"]["est_casia_cnn_epoch_s_N5"] = 900 * N_SEGMENTS / rate
    # A fold's stage 1: every epoch of the budget, once per ensemble member.
    from serbench.systems import registry
    from serbench.systems.builtin.cnn_sru_settings import cnn_epochs

    fast = registry.get("cnn-sru").settings("fast", {"segments": N_SEGMENTS})
    result["fast_cpu"]["est_casia_cnn_fold_s_N5"] = epoch_s * cnn_epochs(fast) * fast.ensemble
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        result["paper_cuda"] = {**_cnn_rate("paper", gpu, 10 if quick else 40),
                                **{k: v for k, v in _sru_rate("paper", gpu, 900).items() if k.startswith("sru")},
                                "gpu": torch.cuda.get_device_name(gpu)}
    return result


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    print(json.dumps(run(Path("bench-results"), quick=quick), indent=2))
