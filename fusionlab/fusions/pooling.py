"""Element-wise mean and max fusion after projection to a common width."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveInt
from fusionlab.fusions.base import Fusion


class MeanFusion(Fusion):
    """``z = (1/k) sum_i (W_i x_i + b_i)``: the average of the projected branches (``D_i -> dim``).

    Parameters: ``sum_i (D_i + 1) * dim``.
    """

    def __init__(self, in_dims: list[int], dim: PositiveInt = 128) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, dim) for d in in_dims)
        self.out_dim = dim

    def projected(self, xs: list[Tensor]) -> Tensor:
        return torch.stack([p(x) for p, x in zip(self.proj, xs)], dim=0)  # (k, B, dim)

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.projected(xs).mean(dim=0)


class MaxFusion(MeanFusion):
    """``z = max_i (W_i x_i + b_i)``, element-wise over the projected branches (``D_i -> dim``).

    Parameters: ``sum_i (D_i + 1) * dim``.
    """

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.projected(xs).amax(dim=0)
