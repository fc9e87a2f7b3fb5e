"""Simple Recurrent Unit (Lei et al. 2017) in plain PyTorch, as equations 3-7 of Jiang et al.

For each step t of a batch-first ``(B, N, D)`` input::

    x~_t = W x_t                                   (3)
    f_t  = sigmoid(W_f x_t + b_f)                  (4)
    c_t  = f_t * c_{t-1} + (1 - f_t) * x~_t        (5)
    r_t  = sigmoid(W_r x_t + b_r)                  (6)
    h_t  = r_t * tanh(c_t) + (1 - r_t) * x_t       (7)

The three matrix products do not depend on the state, so they run as one batched
matmul over all steps; only the element-wise recurrence (5) loops over N. The highway
term of (7) needs x_t in the hidden size: when ``input_size != hidden_size`` we use a
learned projection ``P x_t`` (no bias) instead of ``x_t``; with equal sizes (the paper:
4096 = 4096) x_t is used as is. The ``sru`` package is not used because it compiles
C++/CUDA at import.
"""
from __future__ import annotations

import torch
from torch import nn


class SRU(nn.Module):
    """One SRU layer: ``(B, N, D)`` -> ``(h (B, N, H), c_N (B, H))``.

    ``init_std``/``init_bias`` set the initial weights (normal, std) and gate biases;
    the paper states "weight and bias are set as 0.01 and 0.1".
    """

    def __init__(self, input_size: int, hidden_size: int, *, init_std: float = 0.01, init_bias: float = 0.1) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        # Rows [0:H] = W, [H:2H] = W_f, [2H:3H] = W_r.
        self.weight = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.bias_f = nn.Parameter(torch.empty(hidden_size))
        self.bias_r = nn.Parameter(torch.empty(hidden_size))
        self.highway = None if input_size == hidden_size else nn.Linear(input_size, hidden_size, bias=False)
        self.reset_parameters(init_std, init_bias)

    def reset_parameters(self, init_std: float = 0.01, init_bias: float = 0.1) -> None:
        nn.init.normal_(self.weight, 0.0, init_std)
        nn.init.constant_(self.bias_f, init_bias)
        nn.init.constant_(self.bias_r, init_bias)
        if self.highway is not None:
            nn.init.normal_(self.highway.weight, 0.0, init_std)

    def forward(self, x: torch.Tensor, c0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, N, D), optional ``c0`` (B, H) -> all hidden states (B, N, H) and the last cell (B, H)."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"SRU expects (B, N, {self.input_size}) input, got {tuple(x.shape)}")
        b, n, _ = x.shape
        hsz = self.hidden_size
        u = x @ self.weight.t()                                  # (B, N, 3H)
        x_tilde = u[..., :hsz]
        f = torch.sigmoid(u[..., hsz:2 * hsz] + self.bias_f)
        r = torch.sigmoid(u[..., 2 * hsz:] + self.bias_r)
        c = x.new_zeros(b, hsz) if c0 is None else c0
        cells = []
        for t in range(n):                                       # eq. (5), the only sequential part
            c = f[:, t] * c + (1 - f[:, t]) * x_tilde[:, t]
            cells.append(c)
        cs = torch.stack(cells, dim=1)                           # (B, N, H)
        skip = x if self.highway is None else self.highway(x)
        h = r * torch.tanh(cs) + (1 - r) * skip                  # eq. (7)
        return h, c
