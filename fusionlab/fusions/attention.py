"""Attention over branches."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveInt
from fusionlab.fusions.base import Fusion, InDims


class AttentionFusion(Fusion):
    """Softmax attention over branches, a = softmax(W_a [x_1; ...; x_k]) (torchmultimodal style). a =
    softmax(W_a [x_1; ...; x_k]), z = sum_i a_i P_i x_i.

    Softmax attention over branches, as torchmultimodal's ``AttentionFusionModule``:

        a = softmax(W_a [x_1; ...; x_k] + b_a)    (one weight per branch, sums to 1)
        z = sum_i a_i * (P_i x_i + c_i)           (P_i: D_i -> dim)

    Parameters: ``(sum_i D_i + 1) * k + sum_i (D_i + 1) * dim``.
    ``branch_weights`` holds ``a``, ``(B, k)``.

    Args:
        dim: width each branch is projected to
    """

    def __init__(self, in_dims: InDims, dim: PositiveInt = 128) -> None:
        super().__init__()
        in_dims = self.set_inputs(in_dims)
        self.attention = nn.Linear(sum(in_dims), len(in_dims))
        self.proj = nn.ModuleList(nn.Linear(d, dim) for d in in_dims)
        self.out_dim = dim

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        xs = self.ordered(inputs)
        a = torch.softmax(self.attention(torch.cat(xs, dim=-1)), dim=-1)  # (B, k)
        self.branch_weights = a.detach()
        projected = torch.stack([p(x) for p, x in zip(self.proj, xs)], dim=1)  # (B, k, dim)
        return (a.unsqueeze(-1) * projected).sum(dim=1)
