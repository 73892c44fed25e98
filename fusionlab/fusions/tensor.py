"""Tensor fusion."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, PositiveInt
from fusionlab.fusions.base import Fusion, InDims


class TensorFusion(Fusion):
    """Tensor fusion (Zadeh et al. 2017): z = vec([1; h_1] ⊗ ... ⊗ [1; h_k]) of branches projected to `dim`.

    Tensor Fusion Network (Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment
    Analysis", EMNLP 2017): every branch is first projected to ``dim`` (``null`` keeps its width),
    then

        z = vec([1; h_1] ⊗ [1; h_2] ⊗ ... ⊗ [1; h_k])

    so ``out_dim = prod_m (d_m + 1)``: all unimodal, bimodal, ... k-modal interactions. The size grows
    exponentially with k, so a product larger than ``max_size`` is refused (use ``fusion=lowrank``).
    Parameters: ``sum_m (D_m + 1) * dim`` (projections only).

    Args:
        dim: width each branch is projected to first (null: keep its width)
        max_size: refuse an outer product with more features than this (use lowrank)
    """

    def __init__(self, in_dims: InDims, dim: PositiveInt | None = 16, max_size: PositiveInt = 100_000) -> None:
        super().__init__()
        in_dims = self.set_inputs(in_dims)
        widths = [dim or d for d in in_dims]
        size = math.prod(w + 1 for w in widths)
        if size > max_size:
            raise ConfigError("max_size", f"the outer product has {size} features (> max_size={max_size}) for "
                              f"widths {widths}; lower `dim`, or use fusion=lowrank, which never forms it")
        self.proj = nn.ModuleList(nn.Linear(d, dim) if dim else nn.Identity() for d in in_dims)
        self.out_dim = size

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        out = None
        for proj, x in zip(self.proj, self.ordered(inputs)):
            h = proj(x)
            h1 = torch.cat([torch.ones_like(h[:, :1]), h], dim=-1)  # [1; h_m]
            out = h1 if out is None else (out.unsqueeze(-1) * h1.unsqueeze(1)).flatten(1)
        return out
