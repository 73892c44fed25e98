"""Image augmentations for batches ``(B, C, H, W)``: random shift, horizontal flip, cutout.

As in :mod:`fusionlab.augmentations.series`: training batches only, each example with probability
``p``, vectorised over the batch (no Python loop over examples), torch's global generator on the
batch's device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusionlab.augmentations.base import RandomAugmentation
from fusionlab.config.schema import NonNegativeInt, PositiveInt, UnitProbability


class ImageAugmentation(RandomAugmentation):
    """Base for transforms of ``(B, C, H, W)`` batches."""

    reads = ("image",)


def _grid(x: Tensor) -> tuple[Tensor, Tensor]:
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    return rows, cols


class RandomShift(ImageAugmentation):
    """Translate each image by ``(dy, dx)``, each uniform in ``[-max_shift, max_shift]`` pixels,
    filling the uncovered border with zeros (the "random translation" of LeCun et al. 1998 and
    most CNN training recipes)."""

    def __init__(self, max_shift: NonNegativeInt = 1, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        self.max_shift = max_shift

    def augment(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b = x.shape[0]
        dy, dx = (torch.randint(-self.max_shift, self.max_shift + 1, (2, b, 1, 1), device=x.device))
        rows, cols = _grid(x)
        src_r, src_c = rows - dy, cols - dx  # (B, H, W): the source pixel of each output pixel
        h, w = x.shape[-2:]
        inside = (src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < w)
        flat = (src_r.clamp(0, h - 1) * w + src_c.clamp(0, w - 1)).view(b, 1, h * w).expand(-1, x.shape[1], -1)
        out = x.flatten(2).gather(2, flat).view_as(x)
        return out * inside.unsqueeze(1).to(x.dtype)


class HorizontalFlip(ImageAugmentation):
    """Mirror each chosen image left to right (use ``p=0.5`` for the usual random flip; not for
    data whose classes depend on handedness, such as digits)."""

    def __init__(self, p: UnitProbability = 0.5) -> None:
        super().__init__(p)

    def augment(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return x.flip(-1)


class Cutout(ImageAugmentation):
    """Zero one ``size × size`` square at a uniformly random centre per image (DeVries & Taylor
    2017, "Improved regularization of convolutional neural networks with cutout"); the square
    may be clipped by the border, as in the paper."""

    def __init__(self, size: PositiveInt = 3, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        self.size = size

    def augment(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b = x.shape[0]
        h, w = x.shape[-2:]
        cy = torch.randint(0, h, (b, 1, 1), device=x.device)
        cx = torch.randint(0, w, (b, 1, 1), device=x.device)
        rows, cols = _grid(x)
        lo = self.size // 2
        hole = (rows >= cy - lo) & (rows < cy - lo + self.size) & (cols >= cx - lo) & (cols < cx - lo + self.size)
        return x * (~hole).unsqueeze(1).to(x.dtype)
