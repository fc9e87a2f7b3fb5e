"""Fixtures shared by the deep-model tests."""
from __future__ import annotations

import pytest
import torch


def _fit(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, *,
         steps: int = 40, lr: float = 1e-2) -> list[float]:
    """Adam on the trainable parameters for ``steps`` full-batch steps; the loss after each step."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model.loss(model(x, lengths), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def fit():
    """``fit(model, x, lengths, y, steps=40, lr=1e-2) -> losses`` for models with ``forward(x, lengths)`` and ``loss``."""
    return _fit
