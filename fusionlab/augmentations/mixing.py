"""Label-mixing augmentations: they return mixed inputs *and* soft targets, which the loss uses.

A label-mixing augmentation sets ``mixes_labels = True`` and maps ``(x, y_soft, mask)`` to
``(x, y_soft, mask)`` with ``y_soft`` rows of shape ``(B, classes)``; the LightningModule then trains
on ``cross_entropy(logits, y_soft)``. Training accuracy/F1 are still counted against the original
labels. Everything is drawn on the batch's device (no host sync).

Padded series: a real step is never mixed with a partner's padding. mixup keeps the steps real in
both examples (the mixed mask is ``mask & mask[perm]``, padding after it is 0); cutmix pastes a
window that lies inside the real steps of both, so the example keeps its own mask.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusionlab.augmentations.base import Augmentation, real_lengths
from fusionlab.config.schema import PositiveFloat, UnitProbability


class LabelMixing(Augmentation):
    """Base: a batch is mixed with probability ``p``, with ``lam ~ Beta(alpha, alpha)`` and a random
    pairing ``perm`` of its examples; subclasses implement :meth:`mix`."""

    mixes_labels = True
    reads = ("series", "image")

    def __init__(self, alpha: PositiveFloat = 1.0, p: UnitProbability = 1.0) -> None:
        super().__init__()
        self.alpha, self.p = alpha, p
        # Beta's parameters live on the batch's device (moved with the module), so lam is drawn there
        self.register_buffer("concentration", torch.tensor([float(alpha), float(alpha)]), persistent=False)

    def draw(self, x: Tensor) -> Tensor:
        """``lam ~ Beta(alpha, alpha)``: a 0-dim tensor on ``x``'s device."""
        c = self.concentration.to(x.device)
        return torch.distributions.Beta(c[0], c[1], validate_args=False).sample().to(torch.float32)

    def apply(self, x: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        if self.p <= 0.0:
            return x, target, mask
        lam = self.draw(x)
        perm = torch.randperm(x.shape[0], device=x.device)
        mixed, soft, mixed_mask = self.mix(x, target, mask, lam, perm)
        if self.p < 1.0:
            on = torch.rand((), device=x.device) < self.p
            mixed, soft = torch.where(on, mixed, x), torch.where(on, soft, target)
            mixed_mask = None if mask is None else torch.where(on, mixed_mask, mask)
        return mixed, soft, mixed_mask

    def forward(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> tuple[Tensor, ...]:
        """``(x, y_soft)``; with a mask ``(x, y_soft, mask)``."""
        x, y, mixed_mask = self.apply(x, y, mask)
        return (x, y) if mask is None else (x, y, mixed_mask)

    def mix(self, x: Tensor, y: Tensor, mask: Tensor | None, lam: Tensor,
            perm: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:  # pragma: no cover
        raise NotImplementedError


class Mixup(LabelMixing):
    """mixup (Zhang et al. 2018): ``lam ~ Beta(alpha, alpha)``, a random pairing ``j`` of the batch,
    ``x = lam x + (1 - lam) x_j`` and ``y = lam y + (1 - lam) y_j``; applied to a batch with
    probability ``p``. Padded series keep the steps real in both (``mask & mask_j``)."""

    def __init__(self, alpha: PositiveFloat = 0.2, p: UnitProbability = 1.0) -> None:
        super().__init__(alpha, p)

    def mix(self, x: Tensor, y: Tensor, mask: Tensor | None, lam: Tensor,
            perm: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        mixed = lam.to(x.dtype) * x + (1 - lam.to(x.dtype)) * x[perm]
        soft = lam * y + (1 - lam) * y[perm]
        if mask is None:
            return mixed, soft, None
        both = mask & mask[perm]
        real = both.view(both.shape[0], *([1] * (x.dim() - 2)), both.shape[-1])
        return torch.where(real, mixed, torch.zeros_like(mixed)), soft, both


class CutMix(LabelMixing):
    """CutMix (Yun et al. 2019) along time: ``lam ~ Beta(alpha, alpha)``; a random window of
    ``w = round((1 - lam) * m)`` steps of each series is replaced by the same window of its partner
    ``j``, where ``m`` is the number of steps real in both; ``y = (1 - w / n) y + (w / n) y_j`` with
    ``n`` the example's own length; applied to a batch with probability ``p``. Images
    ``(B, C, H, W)`` get a box of about ``(1 - lam) H W`` pixels and the box's share of the image."""

    def mix(self, x: Tensor, y: Tensor, mask: Tensor | None, lam: Tensor,
            perm: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        b, dims = x.shape[0], x.dim() - 2
        side = (1 - lam) ** (1.0 / dims)  # the cut's share of each spatial axis
        region = torch.ones((b, *([1] * (x.dim() - 1))), dtype=torch.bool, device=x.device)
        share = torch.ones((b,), device=x.device)
        for axis in range(2, x.dim()):
            size = x.shape[axis]
            if axis == x.dim() - 1 and mask is not None:  # time: inside the steps real in both
                own = real_lengths(x, mask).view(b)
                span = torch.minimum(own, own[perm])
            else:
                own = span = torch.full((b,), size, device=x.device, dtype=torch.long)
            cut = torch.round(span.to(torch.float32) * side).long().minimum(span)
            start = (torch.rand((b,), device=x.device) * (span - cut + 1)).long().minimum(span - cut)
            shape = [1] * x.dim()
            shape[axis] = size
            steps = torch.arange(size, device=x.device).view(shape)
            view = [b] + [1] * (x.dim() - 1)
            region = region & (steps >= start.view(view)) & (steps < (start + cut).view(view))
            share = share * cut.to(torch.float32) / own.to(torch.float32)
        out = torch.where(region, x[perm], x)
        share = share.view(b, 1).to(y.dtype)
        return out, (1 - share) * y + share * y[perm], mask
