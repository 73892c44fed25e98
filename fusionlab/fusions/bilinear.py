"""Factorised bilinear pooling (MFB)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, PositiveFloat, PositiveInt, Probability
from fusionlab.fusions.base import Fusion


class BilinearFusion(Fusion):
    """Multi-modal Factorized Bilinear pooling, MFB (Yu et al., "Multi-modal Factorized Bilinear
    Pooling with Co-Attention Learning for Visual Question Answering", ICCV 2017), for exactly two
    branches ``x`` (D_1) and ``y`` (D_2):

        z = SumPool_k(Dropout(U^T x ∘ V^T y))     (U: D_1 -> k*o, V: D_2 -> k*o; sum over windows of k)
        z = sign(z) * sqrt(|z| + eps)              (power normalisation)
        z = z / ||z||_2                            (L2 normalisation)

    ``factor`` is k, ``dim`` is o (``out_dim``). The bilinear form ``z_i = x^T W_i y`` has its
    ``W_i`` factorised as ``U_i V_i^T`` of rank k. ``eps`` keeps the square root's gradient finite
    at 0. Parameters: ``(D_1 + 1) * k * o + (D_2 + 1) * k * o``.
    """

    def __init__(self, in_dims: list[int], dim: PositiveInt = 128, factor: PositiveInt = 5,
                 dropout: Probability = 0.1, eps: PositiveFloat = 1e-8) -> None:
        super().__init__()
        if len(in_dims) != 2:
            raise ConfigError("", f"bilinear fuses exactly 2 branches, got {len(in_dims)}")
        self.dim, self.factor, self.eps = dim, factor, eps
        self.u = nn.Linear(in_dims[0], factor * dim)
        self.v = nn.Linear(in_dims[1], factor * dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_dim = dim

    def forward(self, xs: list[Tensor]) -> Tensor:
        x, y = xs
        joint = self.drop(self.u(x) * self.v(y))  # (B, k*o)
        z = joint.view(-1, self.dim, self.factor).sum(dim=-1)  # sum pooling over windows of k
        z = torch.sign(z) * torch.sqrt(z.abs() + self.eps)
        return F.normalize(z, dim=-1)
