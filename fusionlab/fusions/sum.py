"""Sum fusion after projection to a common width."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveInt
from fusionlab.fusions.base import Fusion


class SumFusion(Fusion):
    """``z = sum_i W_i x_i + b_i`` with every ``W_i`` mapping ``D_i -> dim``.

    Parameters: ``sum_i (D_i + 1) * dim``.
    """

    def __init__(self, in_dims: list[int], dim: PositiveInt = 128) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, dim) for d in in_dims)
        self.out_dim = dim

    def projected(self, xs: list[Tensor]) -> Tensor:
        """The projected branches stacked, ``(k, B, dim)`` (used by the element-wise fusions)."""
        return torch.stack([p(x) for p, x in zip(self.proj, xs)], dim=0)

    def forward(self, xs: list[Tensor]) -> Tensor:
        out = self.proj[0](xs[0])
        for proj, x in zip(self.proj[1:], xs[1:]):
            out = out + proj(x)
        return out
