"""Gated multimodal unit."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveInt
from fusionlab.fusions.base import Fusion, InDims


class GatedFusion(Fusion):
    """Gated multimodal unit (Arevalo et al. 2017) over k branches: h = sum_i z_i * tanh(W_i x_i). h_i =
    tanh(W_i x_i), z = softmax_k(W_z [x_1; ...; x_k]), h = sum_i z_i * h_i.

    Gated Multimodal Unit (Arevalo et al., "Gated Multimodal Units for Information Fusion",
    ICLR-W 2017), generalised to k branches:

        h_i = tanh(W_i x_i)                       (D_i -> dim, no bias, as in the paper)
        z   = softmax_k(W_z [x_1; ...; x_k])      (one gate per branch and feature, sums to 1)
        h   = sum_i z_i * h_i

    For k = 2 the softmax over two logits equals the paper's ``sigmoid`` gate
    ``h = z h_1 + (1 - z) h_2``. Parameters: ``sum_i D_i * dim + (sum_i D_i + 1) * k * dim``.
    ``branch_weights`` holds the gates averaged over features, ``(B, k)``.

    Args:
        dim: width of h_i and of the output
    """

    def __init__(self, in_dims: InDims, dim: PositiveInt = 128) -> None:
        super().__init__()
        in_dims = self.set_inputs(in_dims)
        self.k = len(in_dims)
        self.dim = dim
        self.proj = nn.ModuleList(nn.Linear(d, dim, bias=False) for d in in_dims)
        self.gate = nn.Linear(sum(in_dims), self.k * dim)
        self.out_dim = dim

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        xs = self.ordered(inputs)
        h = torch.stack([torch.tanh(p(x)) for p, x in zip(self.proj, xs)], dim=1)  # (B, k, dim)
        logits = self.gate(torch.cat(xs, dim=-1)).view(-1, self.k, self.dim)
        z = torch.softmax(logits, dim=1)
        self.branch_weights = z.detach().mean(dim=-1)
        return (z * h).sum(dim=1)
