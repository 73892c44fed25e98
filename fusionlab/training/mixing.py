"""Label-mixing augmentations: they return mixed inputs *and* soft targets, which the loss uses.

A label-mixing augmentation sets ``mixes_labels = True`` and maps ``(x, y_soft) -> (x, y_soft)``
with ``y_soft`` one-hot rows of shape ``(B, classes)``; the LightningModule then trains on
``cross_entropy(logits, y_soft)``. Training accuracy/F1 are still counted against the original
labels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import PositiveFloat, UnitProbability
from fusionlab.registry import Registrable


class LabelMixing(nn.Module, Registrable):
    """Base: a batch is mixed with probability ``p``, with ``lam ~ Beta(alpha, alpha)`` and a random
    pairing ``perm`` of its examples; subclasses implement :meth:`mix`."""

    registry_kind = "augmentation"  # every subclass is registered (fusionlab.registry)
    mixes_labels = True
    reads = ("series", "image")

    def __init__(self, alpha: PositiveFloat = 1.0, p: UnitProbability = 1.0) -> None:
        super().__init__()
        self.alpha, self.p = alpha, p

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.p < 1.0 and torch.rand(()) >= self.p:
            return x, y
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample().item()
        perm = torch.randperm(x.shape[0], device=x.device)
        return self.mix(x, y, lam, perm)

    def mix(self, x: Tensor, y: Tensor, lam: float, perm: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError


class Mixup(LabelMixing):
    """mixup (Zhang et al. 2018): ``lam ~ Beta(alpha, alpha)``, a random pairing ``j`` of the batch,
    ``x = lam x + (1 - lam) x_j`` and ``y = lam y + (1 - lam) y_j``; applied to a batch with
    probability ``p``."""

    def __init__(self, alpha: PositiveFloat = 0.2, p: UnitProbability = 1.0) -> None:
        super().__init__(alpha, p)

    def mix(self, x: Tensor, y: Tensor, lam: float, perm: Tensor) -> tuple[Tensor, Tensor]:
        return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


class CutMix(LabelMixing):
    """CutMix (Yun et al. 2019) along time: ``lam ~ Beta(alpha, alpha)``; a random window of
    ``round((1 - lam) * L)`` steps of each series is replaced by the same window of its partner
    ``j``; ``y = (1 - w / L) y + (w / L) y_j`` with ``w`` the window actually pasted; applied to a
    batch with probability ``p``. Images ``(B, C, H, W)`` get a box of area ``(1 - lam) H W``."""

    def mix(self, x: Tensor, y: Tensor, lam: float, perm: Tensor) -> tuple[Tensor, Tensor]:
        out = x.clone()
        spatial = x.shape[2:]
        cut = [int(round(s * (1 - lam) ** (1 / len(spatial)))) for s in spatial]
        region = [slice(None), slice(None)]
        for size, c in zip(spatial, cut):
            start = int(torch.randint(0, size - c + 1, ()).item())
            region.append(slice(start, start + c))
        out[tuple(region)] = x[perm][tuple(region)]
        frac = 1.0
        for size, c in zip(spatial, cut):
            frac *= c / size
        return out, (1 - frac) * y + frac * y[perm]
