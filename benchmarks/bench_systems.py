"""Training throughput of the seed-paper systems (crnn, crnn-ctc, crnn-mk, dcnn-blstm-att).

Synthetic 3 x 60 x T log-mel arrays (T drawn from 100..400 frames, the range of CASIA/EMO-DB
utterances) go through the real fold pipeline of the registered systems (``plan_fold``
with the profile's augmentation and balancing, the system's ``build`` and ``batch_inputs``,
``train_system``) with the ``fast`` settings for 2 epochs; the second epoch is timed (the
first warms up allocators). Reported per system: training utterances per second (rows of an
epoch, augmented copies included) with 1 and 2 torch threads, interleaved, medians of
repeats, and the implied seconds per CASIA epoch (810 fit utterances after the 10 %
validation split, times the system's rows per fit utterance).

By hand: ``python -m benchmarks.bench_systems [--quick]``.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

N_CLASSES = 6
CASIA_FIT = 810


def _rate(model: str, n_utts: int) -> dict:
    from serbench.deep.batching import Augmentation, plan_fold
    from serbench.deep.utterance_trainer import train_system
    from serbench.systems import registry
    from serbench.systems.deep_runtime import Runtime

    system = registry.get(model)
    s = system.settings("fast", {"epochs": 2, "val_fraction": 0.0})
    rng = np.random.default_rng(0)
    mels = [rng.standard_normal((3, 60, int(rng.integers(100, 401)))).astype(np.float32) for _ in range(n_utts)]
    y = np.arange(n_utts) % N_CLASSES
    idx = np.arange(n_utts)
    aug = Augmentation(s.aug_copies, s.aug_time_mask, s.aug_freq_mask, s.aug_shift, s.balance)
    plan = plan_fold(mels, y, idx, idx[:0], aug, augment_seed=0, balance_seed=1)
    torch.manual_seed(0)
    net = system.build(s, N_CLASSES, in_channels=3, n_mels=60)
    cpu = torch.device("cpu")
    t0 = time.perf_counter()
    inputs = system.batch_inputs(net, s, plan, Runtime(cpu, False, torch.get_num_threads()))
    inputs_s = time.perf_counter() - t0
    res = train_system(net, inputs, plan.labels, plan.train_rows, plan.val_rows, s, device=cpu, seed=0, name=model)
    last = res.history[-1]
    rows_per_fit = len(plan.train_rows) / n_utts
    rate = last["samples"] / last["seconds"]
    return {"rows_per_s": rate, "rows_per_fit_utterance": rows_per_fit, "inputs_s": inputs_s,
            "est_casia_epoch_s": CASIA_FIT * rows_per_fit / rate, "epochs_fast": system.settings("fast").epochs}


def run(out: Path, quick: bool = False) -> dict:
    """Throughput of each system's training on CPU; returns the numbers."""
    n_utts = 24 if quick else 96
    repeats = 1 if quick else 3
    before = torch.get_num_threads()
    result: dict = {"utterances": n_utts, "repeats": repeats, "profile": "fast", "systems": {}}
    from serbench.systems import registry

    try:
        for model in registry.names(table="systems"):
            rows: dict[int, list[dict]] = {1: [], 2: []}
            for _ in range(repeats):
                for threads in (1, 2):      # interleaved so changing machine load hits both alike
                    torch.set_num_threads(threads)
                    rows[threads].append(_rate(model, n_utts))
            entry = {}
            for threads, rs in rows.items():
                entry[f"threads_{threads}"] = {
                    "rows_per_s_median": statistics.median(r["rows_per_s"] for r in rs),
                    "rows_per_s_all": [r["rows_per_s"] for r in rs],
                    "est_casia_epoch_s": statistics.median(r["est_casia_epoch_s"] for r in rs),
                }
            entry["rows_per_fit_utterance"] = rows[1][0]["rows_per_fit_utterance"]
            entry["max_epochs_fast"] = rows[1][0]["epochs_fast"]
            entry["speedup_2_threads"] = (entry["threads_2"]["rows_per_s_median"]
                                          / entry["threads_1"]["rows_per_s_median"])
            result["systems"][model] = entry
    finally:
        torch.set_num_threads(before)
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path("bench-results"), quick="--quick" in sys.argv[1:]), indent=2))
