"""Low-rank multimodal fusion."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveInt
from fusionlab.fusions.base import Fusion, InDims


class LowRankFusion(Fusion):
    """Low-rank multimodal fusion (Liu et al. 2018): z = sum_r w_r * prod_m ([1; x_m] W_m^(r)) + b.

    Low-rank Multimodal Fusion (Liu et al., "Efficient Low-rank Multimodal Fusion with
    Modality-Specific Factors", ACL 2018):

        z = sum_{r=1..R} w_r * prod_{m=1..k} ([1; x_m] W_m^(r)) + b

    with one factor ``W_m^(r)`` of shape ``(D_m + 1, dim)`` per branch and rank, the product taken
    element-wise over branches. It equals tensor fusion followed by a linear layer whose weight
    tensor has rank ``R``, without ever forming the outer product. The factors are registered
    ``nn.Parameter``s (a plain Python list of tensors, as in some reference code, is never trained).
    Parameters: ``R * sum_m (D_m + 1) * dim + R + dim``.

    Args:
        dim: output width
        rank: rank R of the factorised weight tensor
    """

    def __init__(self, in_dims: InDims, dim: PositiveInt = 128, rank: PositiveInt = 4) -> None:
        super().__init__()
        in_dims = self.set_inputs(in_dims)
        self.factors = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, d + 1, dim))) for d in in_dims
        )
        self.rank_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)).squeeze(0))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.out_dim = dim

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        fused = None
        for factor, x in zip(self.factors, self.ordered(inputs)):
            x1 = torch.cat([torch.ones_like(x[:, :1]), x], dim=-1)  # [1; x_m]
            h = torch.einsum("bd,rdo->bro", x1, factor)  # (B, R, dim)
            fused = h if fused is None else fused * h
        return torch.einsum("r,bro->bo", self.rank_weights, fused) + self.bias
