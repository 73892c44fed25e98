"""Poolers turn a branch's sequence ``(B, T, D)`` into one vector ``(B, D)``.

Chosen by name in a branch's ``pool`` key; add one with :func:`register_pooler`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

POOLERS: dict[str, Callable[[int], nn.Module]] = {}


def register_pooler(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a pooler available as ``pool: <name>``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        POOLERS[name] = cls
        return cls

    return deco


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

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=1)


@register_pooler("max")
class MaxPool(nn.Module):
    """Maximum over time, per feature."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x.amax(dim=1)


@register_pooler("last")
class LastPool(nn.Module):
    """The last time step."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x[:, -1]


@register_pooler("attention")
class AttentionPool(nn.Module):
    """Learned attention over time: ``a = softmax_t(w^T tanh(W x_t))``, ``v = sum_t a_t x_t``
    (Bahdanau-style additive attention pooling, as in Yang et al. 2016's attention layer)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        weights = torch.softmax(self.score(torch.tanh(self.proj(x))), dim=1)  # (B, T, 1)
        return (weights * x).sum(dim=1)
