"""Feature-wise linear modulation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, NonNegativeInt, PositiveInt
from fusionlab.fusions.base import Fusion


class FiLMFusion(Fusion):
    """FiLM (Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018)
    for exactly two branches: branch ``j = conditioner`` modulates the other branch ``i``:

        h = P x_i + c                     (P: D_i -> dim; no projection when ``dim`` is null: h = x_i)
        z = (1 + Δγ(x_j)) ⊙ h + β(x_j)    (Δγ, β: D_j -> width of h, linear)

    ``out_dim`` is ``dim``, or D_i when ``dim`` is null. Δγ and β start at exactly zero (zero
    weights and biases, plain parameters that ``init=...`` schemes leave alone), so the fusion starts
    as the identity ``z = h``: the conditioner learns how much to modulate. Parameters:
    ``(D_j + 1) * 2 * w`` plus ``(D_i + 1) * dim`` when projecting, with ``w = out_dim``.
    """

    def __init__(self, in_dims: list[int], conditioner: NonNegativeInt = 1, dim: PositiveInt | None = None) -> None:
        super().__init__()
        if len(in_dims) != 2:
            raise ConfigError("", f"film fuses exactly 2 branches, got {len(in_dims)}")
        if conditioner > 1:
            raise ConfigError("conditioner", f"must be 0 or 1 (the index of the conditioning branch), "
                              f"got {conditioner}")
        self.j, self.i = conditioner, 1 - conditioner
        width = dim or in_dims[self.i]
        self.proj: nn.Module = nn.Linear(in_dims[self.i], dim) if dim else nn.Identity()
        # plain parameters rather than nn.Linear, so the model's init schemes leave them at zero
        self.gamma_weight = nn.Parameter(torch.zeros(width, in_dims[self.j]))
        self.gamma_bias = nn.Parameter(torch.zeros(width))
        self.beta_weight = nn.Parameter(torch.zeros(width, in_dims[self.j]))
        self.beta_bias = nn.Parameter(torch.zeros(width))
        self.out_dim = width

    def gamma(self, c: Tensor) -> Tensor:
        """Δγ(c), the deviation of the scale from 1."""
        return F.linear(c, self.gamma_weight, self.gamma_bias)

    def beta(self, c: Tensor) -> Tensor:
        """β(c), the shift."""
        return F.linear(c, self.beta_weight, self.beta_bias)

    def forward(self, xs: list[Tensor]) -> Tensor:
        h, c = self.proj(xs[self.i]), xs[self.j]
        return (1 + self.gamma(c)) * h + self.beta(c)
