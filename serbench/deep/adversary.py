"""Speaker-adversarial training of the segment CNN: a gradient-reversed speaker classifier on FC7.

The speaker head learns to tell the training speakers apart from FC7; the gradient it sends back
into the CNN is reversed and scaled, so the CNN is pushed towards features from which the training
speakers cannot be told apart (domain-adversarial training, Ganin and Lempitsky, 2015). Only the
training speakers of a fold are labelled; after training the head is dropped and the CNN is used
alone, so an unseen speaker needs nothing at test time.
"""
from __future__ import annotations

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged on the way forward; its gradient multiplied by ``-scale`` on the way back."""
    return _ReverseGradient.apply(x, float(scale))


class SpeakerAdversarial(nn.Module):
    """A segment CNN (with ``fc7`` and an FC8 at ``classifier[6]``) and a speaker head on its FC7.

    ``forward(x)`` is the CNN's emotion logits alone, so evaluation and prediction see the plain CNN;
    ``with_groups(x)`` gives ``(emotion logits, speaker logits)`` from one FC7 pass, the speaker
    logits behind a gradient reversal of ``weight``.
    """

    def __init__(self, cnn: nn.Module, n_groups: int, *, weight: float, hidden: int = 256) -> None:
        super().__init__()
        if n_groups < 2:
            raise ValueError(f"a speaker adversary needs at least 2 speakers, got {n_groups}")
        self.cnn = cnn
        self.weight = float(weight)
        self.head = nn.Sequential(nn.Linear(cnn.fc_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x)

    def with_groups(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.cnn.fc7(x)
        return self.cnn.classifier[6](features), self.head(reverse_gradient(features, self.weight))
