"""GPU training rates of the ``paper`` profile (and ``fast``, for scale), measured as ``bench_deep`` does.

``python benchmarks/gpu/bench.py OUT.json [DEVICE] [N_BATCHES]``: three repeats of each, JSON to OUT.json.
"""
from __future__ import annotations

import json
import sys

import torch

from benchmarks.bench_deep import _cnn_rate, _sru_rate


def main(out: str, device: str = "cuda", n_batches: int = 40) -> dict:
    dev = torch.device(device)
    res: dict = {"gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__}
    for profile in ("paper", "fast"):
        res[f"{profile}_cnn_segments_per_s"] = [_cnn_rate(profile, dev, n_batches)["cnn_segments_per_s"]
                                                for _ in range(3)]
    res["paper_sru"] = _sru_rate("paper", dev, 900)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(args[0], *(args[1:2]), *(int(a) for a in args[2:3]))))
