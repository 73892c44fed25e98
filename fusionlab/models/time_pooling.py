"""Time pooling: a branch's sequence ``(B, T, D)`` becomes one vector ``(B, D)``.

Chosen by name in a branch's ``pool`` key (typed :data:`PoolerName`, so every registered pooler is
a valid choice); add one with :func:`register_pooler`. Each takes an optional ``mask`` ``(B, T)``
(True on real steps) and ignores the padded steps. (Not to be confused with the element-wise
fusions of :mod:`fusionlab.fusions.elementwise`, which join branches.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from fusionlab import registry

POOLERS: dict[str, Callable[[int], nn.Module]] = {}


def register_pooler(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a pooler available as ``pool: <name>``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        POOLERS[name] = cls
        registry.add(cls, "pooler", name)  # also listed by fusionlab.registry.named("pooler")
        return cls

    return deco


class RegisteredPooler:
    """Config constraint: the value names a registered pooler (checked when the config is validated,
    so a pooler registered by the user's own module is a valid choice too)."""

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(sorted(POOLERS))

    def violation(self, value: Any) -> str | None:
        return None if value in POOLERS else f"must be one of {list(self.choices)}, got {value!r}"


PoolerName = Annotated[str, RegisteredPooler()]  # a branch's ``pool`` argument


def make_pooler(name: str, dim: int) -> nn.Module:
    """Build the pooler called ``name`` for sequences of width ``dim``."""
    if name not in POOLERS:
        raise ValueError(f"unknown pooler '{name}'; expected one of {sorted(POOLERS)}")
    return POOLERS[name](dim)


@register_pooler("mean")
class MeanPool(nn.Module):
    """Average over time."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return x.mean(dim=1)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


@register_pooler("max")
class MaxPool(nn.Module):
    """Maximum over time, per feature."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return x.amax(dim=1)
        return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


@register_pooler("last")
class LastPool(nn.Module):
    """The last (real) time step."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return x[:, -1]
        return x[torch.arange(x.shape[0], device=x.device), last_index(mask)]


@register_pooler("attention")
class AttentionPool(nn.Module):
    """Learned attention over time: ``a = softmax_t(w^T tanh(W x_t))``, ``v = sum_t a_t x_t``
    (Bahdanau-style additive attention pooling, as in Yang et al. 2016's attention layer)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        scores = self.score(torch.tanh(self.proj(x)))  # (B, T, 1)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        weights = torch.softmax(scores, dim=1)
        return (weights * x).sum(dim=1)


def last_index(mask: Tensor) -> Tensor:
    """Index of the last True step in each row of ``mask`` ``(B, T)`` (0 for an all-False row)."""
    steps = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return ((mask * steps).amax(dim=1) - 1).clamp_min(0)
