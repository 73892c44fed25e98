"""The augmentation protocol: what every batch augmentation is and how the training step calls it.

An augmentation is an ``nn.Module`` applied to training batches only, on the batch's device, with
random numbers from torch's generator there (``pl.seed_everything`` makes runs repeatable) and no
Python loop over the examples. The training step calls :func:`apply_augmentation`, which hands
each augmentation the inputs, the targets and the padding mask and takes all three back:

- ``forward(x, mask=None) -> x`` for augmentations of the inputs (``mixes_labels = False``);
- ``forward(x, y_soft, mask=None) -> (x, y_soft)`` (with a mask: ``(x, y_soft, mask)``) for
  label-mixing ones (``mixes_labels = True``: mixup, cutmix), whose targets are soft rows ``(B, K)``.

Padded batches (unequal-length series, text) carry ``mask`` ``(B, L)``, True on real steps, with
padding at the end of each example. Every augmentation honours it: random positions are drawn
among an example's real steps, padding stays exactly as it was, and no real step is mixed with a
partner's padding.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import Range, UnitProbability
from fusionlab.registry import Registrable

# A fraction of the sequence length, in (0, 1].
LengthFraction = Annotated[float, Range(gt=0.0, le=1.0)]


def chosen_examples(x: Tensor, p: float) -> Tensor | None:
    """A boolean ``(B, 1, ..., 1)`` mask, True for each example with probability ``p``;
    None when ``p >= 1`` (every example: no random numbers are drawn)."""
    if p >= 1.0:
        return None
    return torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) < p


def real_lengths(x: Tensor, mask: Tensor | None) -> Tensor:
    """``(B, 1, ..., 1)`` long: the number of real steps of each example (all of them without a mask)."""
    shape = (x.shape[0], *([1] * (x.dim() - 1)))
    if mask is None:
        return torch.full(shape, x.shape[-1], device=x.device, dtype=torch.long)
    return mask.sum(dim=1).view(shape)


def real_steps(x: Tensor, mask: Tensor | None) -> Tensor | None:
    """``mask`` shaped to broadcast against ``x`` ``(B, ..., L)``; None without a mask."""
    if mask is None:
        return None
    return mask.view(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[-1])


def keep_padding(out: Tensor, x: Tensor, mask: Tensor | None) -> Tensor:
    """``out`` on real steps, ``x`` (unchanged) on padding."""
    real = real_steps(x, mask)
    return out if real is None else torch.where(real, out, x)


class Augmentation(Registrable, nn.Module):
    """Base of every augmentation (registered as kind ``augmentation``, so configs may build it).

    ``reads`` names the modalities it applies to (checked against the data before training).
    """

    registry_kind = "augmentation"
    reads: ClassVar[tuple[str, ...]] = ("series",)
    uses_mask: ClassVar[bool] = True
    mixes_labels: ClassVar[bool] = False

    def apply(self, x: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(x, target, mask)`` after the augmentation (the call :func:`apply_augmentation` makes)."""
        return self(x, mask), target, mask


class RandomAugmentation(Augmentation):
    """Base: ``forward`` applies :meth:`augment` to each example with probability ``p``.

    :meth:`augment` transforms the whole batch (vectorised); the examples not chosen are then
    taken from the input unchanged, bit for bit. With ``p = 0`` the input is returned as is and
    nothing is drawn.
    """

    def __init__(self, p: UnitProbability = 1.0) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.p <= 0.0 or x.numel() == 0:
            return x
        out = self.augment(x, mask)
        chosen = chosen_examples(x, self.p)
        return out if chosen is None else torch.where(chosen, out, x)

    def extra_repr(self) -> str:
        keys = [k for k in vars(self) if not k.startswith("_") and k != "training"]
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in sorted(keys))


class Identity(Augmentation):
    """No augmentation."""

    reads = ("series", "image", "text")

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return x


def call_augmentation(module: nn.Module, x: Tensor, target: Tensor, mask: Tensor | None
                      ) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(x, target, mask)`` through one module: an :class:`Augmentation`'s :meth:`~Augmentation.apply`,
    or a user's plain ``nn.Module`` by its flags: ``forward(x, y_soft) -> (x, y_soft)`` with
    ``mixes_labels``, ``forward(x, mask)`` with ``uses_mask``, else ``forward(x)``."""
    if isinstance(module, Augmentation):
        return module.apply(x, target, mask)
    if getattr(module, "mixes_labels", False):
        x, target = module(x, target)
        return x, target, mask
    return (module(x, mask) if getattr(module, "uses_mask", False) else module(x)), target, mask


def apply_augmentation(augmentation: nn.Module | None, x: Tensor, y: Tensor, mask: Tensor | None,
                       num_classes: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """One training batch through ``augmentation`` (the training step's call): ``(x, target, mask)``,
    where ``target`` is ``y`` (class indices) or, for a label-mixing augmentation, soft targets
    ``(B, num_classes)``, and ``mask`` is the padding mask of the augmented batch (mixing may change it)."""
    if augmentation is None:
        return x, y, mask
    mixes = bool(getattr(augmentation, "mixes_labels", False))
    target = F.one_hot(y, num_classes).to(torch.float32) if mixes else y
    return call_augmentation(augmentation, x, target, mask)
