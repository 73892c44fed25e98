"""Sum fusion after projection to a common width."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveInt
from fusionlab.fusions.base import Fusion, InDims


class SumFusion(Fusion):
    """Project each branch to `dim` and sum: z = sum_i W_i x_i + b_i.

    ``W_i`` maps ``D_i -> dim``. Parameters: ``sum_i (D_i + 1) * dim``.

    Args:
        dim: common width
    """

    def __init__(self, in_dims: InDims, dim: PositiveInt = 128) -> None:
        super().__init__()
        in_dims = self.set_inputs(in_dims)
        self.proj = nn.ModuleList(nn.Linear(d, dim) for d in in_dims)
        self.out_dim = dim

    def projected(self, inputs: dict[str, Tensor]) -> Tensor:
        """The projected branches stacked in input order, ``(k, B, dim)`` (used by the element-wise fusions)."""
        return torch.stack([p(x) for p, x in zip(self.proj, self.ordered(inputs))], dim=0)

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        xs = self.ordered(inputs)
        out = self.proj[0](xs[0])
        for proj, x in zip(self.proj[1:], xs[1:]):
            out = out + proj(x)
        return out
