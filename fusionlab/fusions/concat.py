"""Concatenation fusion."""

from __future__ import annotations

import torch
from torch import Tensor

from fusionlab.fusions.base import Fusion, InDims


class ConcatFusion(Fusion):
    """Concatenate the branch vectors: z = [x_1; ...; x_k].

    The inputs in input order (branch names sorted); ``out_dim = sum(D_i)``; no parameters
    (early/feature fusion)."""

    def __init__(self, in_dims: InDims) -> None:
        super().__init__()
        self.out_dim = sum(self.set_inputs(in_dims))

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return torch.cat(self.ordered(inputs), dim=-1)
