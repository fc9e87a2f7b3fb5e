"""The optimizers every deep stage builds: fused kernels where torch has them, same update rule."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from serbench.deep.optim import OPTIMIZERS, fused_kernel_for, fused_ok, make_optimizer


def _train(name: str, fused: bool | None, steps: int = 20) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = make_optimizer(name, model.parameters(), lr=0.01, weight_decay=0.05, momentum=0.9, fused=fused)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_kernel_on_cpu_by_default(name: str) -> None:
    opt = make_optimizer(name, nn.Linear(4, 2).parameters(), lr=0.1)
    assert opt.defaults["fused"] is True


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_and_default_kernels_take_the_same_steps(name: str) -> None:
    fused, default = _train(name, None), _train(name, False)
    start = _train(name, None, steps=0)
    for f, d, s in zip(fused, default, start):
        assert not torch.equal(f, s)                     # the parameters moved
        torch.testing.assert_close(f, d, rtol=1e-4, atol=1e-5)


def test_adamw_decays_decoupled_and_adam_does_not() -> None:
    # With zero gradients Adam's L2 term still moves the weights through its normalized step, AdamW's decay
    # is a plain shrink by lr * weight_decay: the two must not be the same optimizer.
    p1, p2 = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    adamw = make_optimizer("adamw", [p1], lr=0.1, weight_decay=0.5)
    adam = make_optimizer("adam", [p2], lr=0.1, weight_decay=0.5)
    for p, opt in ((p1, adamw), (p2, adam)):
        p.grad = torch.zeros_like(p)
        opt.step()
    torch.testing.assert_close(p1.detach(), torch.full((3,), 1 - 0.1 * 0.5))
    assert not torch.allclose(p1, p2)


def test_fused_only_where_torch_has_the_kernel() -> None:
    assert fused_ok([torch.zeros(3, requires_grad=True)], "adamw")
    assert not fused_ok([torch.zeros(3, device="meta")], "adamw")
    assert not fused_ok([], "adamw")


def test_unknown_optimizer_is_named() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make_optimizer("rmsprop", nn.Linear(2, 2).parameters(), lr=0.1)


@pytest.mark.parametrize(("name", "device", "fused"), [
    ("sgd", "cpu", True), ("adam", "cpu", True), ("adamw", "cpu", True),
    # torch's fused SGD advances its momentum on the steps the CUDA loss scaler skips: inf momentum, NaN loss
    ("sgd", "cuda", False), ("adam", "cuda", True), ("adamw", "cuda", True),
    ("adamw", "mps", False)])
def test_fused_kernel_by_optimizer_and_device(name: str, device: str, fused: bool) -> None:
    assert fused_kernel_for(name, device) is fused
