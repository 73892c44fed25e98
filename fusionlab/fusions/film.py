"""Feature-wise linear modulation."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, PositiveInt
from fusionlab.fusions.base import Fusion, InDims

log = logging.getLogger("fusionlab")


class FiLMFusion(Fusion):
    """FiLM (Perez et al. 2018), exactly 2 branches: z = (1 + Δγ(x_j)) ⊙ x_i + β(x_j), identity at init.

    FiLM (Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018),
    exactly 2 branches: the branch named ``conditioner`` (``x_j``) modulates the other one (``x_i``):

        h = P x_i + c                     (P: D_i -> dim; no projection when ``dim`` is null: h = x_i)
        z = (1 + Δγ(x_j)) ⊙ h + β(x_j)    (Δγ, β: D_j -> width of h, linear)

    ``out_dim`` is ``dim``, or D_i when ``dim`` is null. Δγ and β start at exactly zero (zero
    weights and biases, plain parameters that ``init=...`` schemes leave alone), so the fusion starts
    as the identity ``z = h``: the conditioner learns how much to modulate. Parameters:
    ``(D_j + 1) * 2 * w`` plus ``(D_i + 1) * dim`` when projecting, with ``w = out_dim``.

    Args:
        conditioner: name of the branch that conditions the other (null: the second branch in name order)
        dim: project the modulated branch x_i to this width first (null: keep its width)
    """

    arity = 2

    def __init__(self, in_dims: InDims, conditioner: str | int | None = None, dim: PositiveInt | None = None) -> None:
        super().__init__()
        widths = self.set_inputs(in_dims)
        dims = dict(zip(self.input_names, widths))
        self.conditioner = _branch_name(conditioner, self.input_names)
        self.modulated = next(n for n in self.input_names if n != self.conditioner)
        d_i, d_j = dims[self.modulated], dims[self.conditioner]
        width = dim or d_i
        self.proj: nn.Module = nn.Linear(d_i, dim) if dim else nn.Identity()
        # plain parameters rather than nn.Linear, so the model's init schemes leave them at zero
        self.gamma_weight = nn.Parameter(torch.zeros(width, d_j))
        self.gamma_bias = nn.Parameter(torch.zeros(width))
        self.beta_weight = nn.Parameter(torch.zeros(width, d_j))
        self.beta_bias = nn.Parameter(torch.zeros(width))
        self.out_dim = width

    def gamma(self, c: Tensor) -> Tensor:
        """Δγ(c), the deviation of the scale from 1."""
        return F.linear(c, self.gamma_weight, self.gamma_bias)

    def beta(self, c: Tensor) -> Tensor:
        """β(c), the shift."""
        return F.linear(c, self.beta_weight, self.beta_bias)

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        h, c = self.proj(inputs[self.modulated]), inputs[self.conditioner]
        return (1 + self.gamma(c)) * h + self.beta(c)


def _branch_name(conditioner: str | int | None, names: list[str]) -> str:
    """The conditioning branch's name; an index (the old setting) is accepted with a deprecation line."""
    if conditioner is None:
        return names[1]
    if isinstance(conditioner, int) and not isinstance(conditioner, bool):
        if conditioner not in (0, 1):
            raise ConfigError("conditioner", f"must name one of the branches {names}, got {conditioner}")
        log.warning("fusion.conditioner=%d (an index) is deprecated: name the branch, conditioner=%s",
                    conditioner, names[conditioner])
        return names[conditioner]
    if conditioner not in names:
        raise ConfigError("conditioner", f"no branch named '{conditioner}'; branches: {names}")
    return str(conditioner)
