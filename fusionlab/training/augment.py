"""Batch augmentations, applied to training batches only, on the batch's device."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from fusionlab.config.schema import NonNegativeFloat, Range


class Identity(nn.Module):
    """No augmentation."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Jitter(nn.Module):
    """Additive Gaussian noise: ``x + sigma * N(0, 1)`` on each example with probability ``p``
    (Um et al. 2017, "Data augmentation of wearable sensor data")."""

    def __init__(self, sigma: NonNegativeFloat = 0.05, p: Annotated[float, Range(ge=0.0, le=1.0)] = 1.0) -> None:
        super().__init__()
        self.sigma, self.p = sigma, p

    def forward(self, x: Tensor) -> Tensor:
        noise = torch.randn_like(x) * self.sigma
        if self.p < 1.0:
            noise = noise * (torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) < self.p)
        return x + noise
