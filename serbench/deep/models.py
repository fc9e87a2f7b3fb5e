"""The systems of Table III: CNN+SRU (the paper), CNN alone, SRU alone.

* ``cnn-sru``: stage 1 fine-tunes the segment CNN (AlexNet), each segment carrying its
  utterance's label; stage 2 freezes it, takes the FC7 feature of each of the N
  segments and trains an SRU over the ``(N, fc_dim)`` sequence, then a linear layer +
  softmax on the LAST hidden state (after the SRU has read every segment, h_N is the
  utterance representation of the paper's Fig. 3/eq. 8).
* ``cnn``: stage 1 only; the utterance decision is the mean of its N segments'
  softmax probabilities (argmax of the mean).
* ``sru``: stage 2 only, on low-level features: per segment, the mean and standard
  deviation over time of the 3 x 60 log-mel channels (static, delta, delta-delta) ->
  a ``(N, 360)`` sequence per utterance (see :func:`serbench.deep.data.lowlevel_sequences`).
"""
from __future__ import annotations

import torch
from torch import nn

from serbench.deep.alexnet import AlexNet
from serbench.deep.sru import SRU

def build_cnn(num_classes: int, *, width: float = 1.0, dropout: float = 0.5, batchnorm: bool = False,
              channels_last: bool = True) -> AlexNet:
    """The segment CNN (AlexNet of ``width``, ``dropout``, ``batchnorm``) with an FC8 of ``num_classes``.

    ``channels_last`` stores the conv weights channels-last, so that the convolutions (and their
    activations) run in that layout, the faster one for oneDNN on CPU and cuDNN on GPU; the inputs
    stay ordinary ``(B, 3, S, S)`` tensors, FC6 reads the same flattened order, and state dicts
    load and save as before (the values are the same; only their memory order differs).
    """
    cnn = AlexNet(num_classes, dropout=dropout, width=width, batchnorm=batchnorm)
    return cnn.to(memory_format=torch.channels_last) if channels_last else cnn


class SRUClassifier(nn.Module):
    """``(B, N, D)`` sequences -> ``(B, num_classes)`` logits: SRU, last hidden state, linear (softmax in the loss).

    With ``skip`` (a ``D -> num_classes`` layer, kept frozen: the CNN's FC8), the SRU's output is a
    correction added to the mean of ``skip`` over the N segments; its last layer starts at zero, so
    training starts from the CNN's own utterance decision rather than from chance.
    """

    def __init__(self, input_size: int, num_classes: int, *, hidden: int, init_std: float = 0.01,
                 init_bias: float = 0.1, input_dropout: float = 0.0, skip: nn.Linear | None = None) -> None:
        super().__init__()
        self.drop = nn.Dropout(input_dropout)                    # no parameters: saved models are unchanged
        self.sru = SRU(input_size, hidden, init_std=init_std, init_bias=init_bias)
        self.out = nn.Linear(hidden, num_classes)
        self.skip = skip
        if skip is not None:
            if (skip.in_features, skip.out_features) != (input_size, num_classes):
                raise ValueError(f"skip must map {input_size} -> {num_classes}, got "
                                 f"{skip.in_features} -> {skip.out_features}")
            skip.requires_grad_(False)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.sru(self.drop(x))                            # (B, N, H)
        z = h[:, -1]                                             # (B, H)
        if self.skip is None:
            return self.out(z)
        return self.out(z) + self.skip(x).mean(dim=1)


def cnn_utterance_probs(segment_logits: torch.Tensor, n_segments: int) -> torch.Tensor:
    """``(U*N, C)`` utterance-major segment logits -> ``(U, C)`` mean segment softmax probabilities."""
    probs = torch.softmax(segment_logits.float(), dim=-1)
    return probs.reshape(-1, n_segments, probs.shape[-1]).mean(dim=1)
