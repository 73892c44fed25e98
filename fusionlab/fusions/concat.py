"""Concatenation fusion."""

from __future__ import annotations

import torch
from torch import Tensor

from fusionlab.fusions.base import Fusion


class ConcatFusion(Fusion):
    """``z = [x_1; x_2; ...; x_k]``; ``out_dim = sum(D_i)``; no parameters (early/feature fusion)."""

    def __init__(self, in_dims: list[int]) -> None:
        super().__init__()
        self.out_dim = sum(in_dims)

    def forward(self, xs: list[Tensor]) -> Tensor:
        return torch.cat(xs, dim=-1)
