"""Fixtures shared by the deep-model tests."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import soundfile as sf
import torch

from serbench.deep.train import CHECKPOINT_ENV

SR = 16000
EMOTIONS = ("angry", "sad")


@pytest.fixture(autouse=True)
def checkpoint_every_epoch(monkeypatch):
    """The kill-and-resume tests stop a stage after a given epoch: checkpoint after every one
    (the default interval is in seconds, which these toy epochs never reach)."""
    monkeypatch.setenv(CHECKPOINT_ENV, "0")


def write_emotion_corpus(root: Path, durations: Sequence[float]) -> Path:
    """Demo-layout corpus: 3 speakers x 2 emotions x ``len(durations)`` texts of those lengths (s).

    'angry' is a loud, high, buzzy harmonic tone; 'sad' a quiet, low, smooth one, so the
    classes are separable from log-mel input.
    """
    rng = np.random.default_rng(0)
    for s, shift in zip(("spk1", "spk2", "spk3"), (1.0, 1.1, 0.9)):
        for e in EMOTIONS:
            folder = root / s / e
            folder.mkdir(parents=True)
            for k, seconds in enumerate(durations):
                t = np.arange(int(seconds * SR)) / SR
                f0 = (260.0 if e == "angry" else 110.0) * shift * (1 + 0.03 * k)
                n_harm = 8 if e == "angry" else 2
                x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, n_harm + 1))
                x = (0.5 if e == "angry" else 0.1) * x / np.max(np.abs(x)) + 0.005 * rng.standard_normal(t.size)
                sf.write(folder / f"t{k}.wav", x.astype(np.float32), SR)
    return root


@pytest.fixture(scope="session")
def emotion_corpus():
    """:func:`write_emotion_corpus` (``emotion_corpus(root, durations) -> root``)."""
    return write_emotion_corpus


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
