"""Factorised bilinear pooling (MFB)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, PositiveFloat, PositiveInt, Probability
from fusionlab.fusions.base import Fusion, InDims


class BilinearFusion(Fusion):
    """Factorised bilinear pooling MFB (Yu et al. 2017), exactly 2 branches: z = SumPool_k(U^T x ∘ V^T y),
    power + L2 norm.

    Multi-modal Factorized Bilinear pooling, MFB (Yu et al., "Multi-modal Factorized Bilinear
    Pooling with Co-Attention Learning for Visual Question Answering", ICCV 2017), for exactly two
    branches ``x`` (D_1) and ``y`` (D_2):

        z = SumPool_k(Dropout(U^T x ∘ V^T y))     (U: D_1 -> k*o, V: D_2 -> k*o; sum over windows of k)
        z = sign(z) * sqrt(|z| + eps)              (power normalisation)
        z = z / ||z||_2                            (L2 normalisation)

    ``factor`` is k, ``dim`` is o (``out_dim``). The bilinear form ``z_i = x^T W_i y`` has its
    ``W_i`` factorised as ``U_i V_i^T`` of rank k. ``eps`` keeps the square root's gradient finite
    at 0. Parameters: ``(D_1 + 1) * k * o + (D_2 + 1) * k * o``. Which branch is ``x`` (through
    ``U``) and which ``y`` is chosen by name with ``pair``.

    Args:
        dim: output width o
        factor: factor k, rank of each factorised bilinear map (sum-pooling window)
        dropout: dropout on U^T x ∘ V^T y before sum pooling
        eps: power normalisation sign(z) sqrt(|z| + eps), finite gradient at 0
        pair: names of the branches x and y, in that order (null: the two branches in name order)
    """

    arity = 2

    def __init__(self, in_dims: InDims, dim: PositiveInt = 128, factor: PositiveInt = 5,
                 dropout: Probability = 0.1, eps: PositiveFloat = 1e-8, pair: list[str] | None = None) -> None:
        super().__init__()
        widths = self.set_inputs(in_dims)
        dims = dict(zip(self.input_names, widths))
        if pair is None:
            pair = list(self.input_names)
        if sorted(pair) != sorted(self.input_names):
            raise ConfigError("pair", f"must name the two branches {self.input_names} (x first), got {list(pair)}")
        self.x_name, self.y_name = pair
        self.dim, self.factor, self.eps = dim, factor, eps
        self.u = nn.Linear(dims[self.x_name], factor * dim)
        self.v = nn.Linear(dims[self.y_name], factor * dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_dim = dim

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        x, y = inputs[self.x_name], inputs[self.y_name]
        joint = self.drop(self.u(x) * self.v(y))  # (B, k*o)
        z = joint.view(-1, self.dim, self.factor).sum(dim=-1)  # sum pooling over windows of k
        z = torch.sign(z) * torch.sqrt(z.abs() + self.eps)
        return F.normalize(z, dim=-1)
