"""The optimizers the deep systems train with, built in one place.

Every stage gets torch's fused kernel where its parameters' device has one (CPU and CUDA):
the same update rule as the per-tensor loop, one kernel over all tensors instead of several
small operations per tensor. On a 2-core CPU the per-tensor AdamW step of the from-scratch
AlexNet took about a quarter of stage 1 (a profile of a running fold; the side-by-side speed is
``kernels_threads_1`` of ``benchmarks/bench_deep.py``). The results agree with the per-tensor loop up to float rounding,
so a re-run is not bit-identical to one made before the switch; a run stays bit-identical
to itself.

SGD is the exception on CUDA. With mixed precision the loss scaler must skip the steps whose
float16 gradients overflowed; the ``paper`` profile's first GPU run (torch 2.11, fused SGD with
momentum) got a NaN loss at epoch 1, and the same run with torch's default SGD kernel trained.
(Reported upstream: the fused SGD kernel still advances its momentum on a skipped step.) SGD on
CUDA therefore keeps the default kernel; fused AdamW, ``fast``'s, trained without NaN on that GPU.
"""
from __future__ import annotations

from typing import Iterable

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")
FUSED_DEVICES = ("cpu", "cuda")


#: (optimizer, device type) pairs whose fused kernel is not used even where torch has one.
FUSED_UNSAFE = {("sgd", "cuda")}


def fused_ok(params: list[torch.Tensor], name: str) -> bool:
    """Whether ``name``'s fused kernel is used for these parameters: floating point, all on one CPU or
    CUDA device, and not a pair in :data:`FUSED_UNSAFE`."""
    devices = {p.device for p in params}
    if len(devices) != 1 or not all(p.is_floating_point() for p in params):
        return False
    return fused_kernel_for(name, next(iter(devices)).type)


def fused_kernel_for(name: str, device_type: str) -> bool:
    """Whether optimizer ``name`` takes torch's fused kernel on a device of this type."""
    return device_type in FUSED_DEVICES and (name, device_type) not in FUSED_UNSAFE


def make_optimizer(name: str, params: Iterable[torch.Tensor], *, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.0, fused: bool | None = None) -> torch.optim.Optimizer:
    """``sgd`` (with ``momentum``), ``adam`` (L2 ``weight_decay``) or ``adamw`` (decoupled) over ``params``.

    ``fused=None`` takes the fused kernel when :func:`fused_ok`; ``False`` leaves torch's default kernel.
    """
    params = list(params)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    use_fused = fused_ok(params, name) if fused is None else bool(fused)
    kernel = {"fused": True} if use_fused else {}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **kernel)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=weight_decay, **kernel)
