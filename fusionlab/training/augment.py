"""Batch augmentations, applied to training batches only, on the batch's device.

Every augmentation takes a batch ``x`` shaped ``(B, C, L)`` and returns one of the same shape,
dtype and device. Each example is augmented with probability ``p`` (drawn per example) and
otherwise returned unchanged, bit for bit. Random numbers come from torch's global generator on
``x``'s device, so ``pl.seed_everything`` makes runs repeatable. No Python loop runs over the
examples: every random parameter is drawn for the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import NonNegativeFloat, NonNegativeInt, Range, UnitProbability, choice
from fusionlab.registry import Registrable, register

# A fraction of the sequence length, in (0, 1].
LengthFraction = Annotated[float, Range(gt=0.0, le=1.0)]


def chosen_examples(x: Tensor, p: float) -> Tensor | None:
    """A boolean ``(B, 1, ..., 1)`` mask, True for each example with probability ``p``;
    None when ``p >= 1`` (every example: no random numbers are drawn)."""
    if p >= 1.0:
        return None
    return torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) < p


class RandomAugmentation(nn.Module, Registrable):
    """Base class: ``forward`` applies :meth:`augment` to each example with probability ``p``.

    :meth:`augment` transforms the whole batch (vectorised); the examples not chosen are then
    taken from the input unchanged. With ``p = 0`` the input is returned as is and nothing is drawn.
    ``reads`` names the modalities it applies to (checked against the data before training).
    """

    registry_kind = "augmentation"  # every subclass is registered (fusionlab.registry)
    reads: ClassVar[tuple[str, ...]] = ("series",)

    def __init__(self, p: UnitProbability = 1.0) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def augment(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if self.p <= 0.0 or x.numel() == 0:
            return x
        out = self.augment(x)
        mask = chosen_examples(x, self.p)
        return out if mask is None else torch.where(mask, out, x)

    def extra_repr(self) -> str:
        keys = [k for k in vars(self) if not k.startswith("_") and k != "training"]
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in sorted(keys))


@register("augmentation")
class Identity(nn.Module):
    """No augmentation."""

    reads: ClassVar[tuple[str, ...]] = ("series", "image", "text")

    def forward(self, x: Tensor) -> Tensor:
        return x


class Jitter(RandomAugmentation):
    """Additive Gaussian noise: ``x + sigma * N(0, 1)`` on each example with probability ``p``
    (Um et al. 2017, "Data augmentation of wearable sensor data for Parkinson's disease
    monitoring using convolutional neural networks")."""

    reads = ("series", "image")

    def __init__(self, sigma: NonNegativeFloat = 0.05, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        self.sigma = sigma

    def augment(self, x: Tensor) -> Tensor:
        return x + torch.randn_like(x) * self.sigma


class Scaling(RandomAugmentation):
    """Random scaling: ``x * s`` with one factor ``s ~ N(1, sigma^2)`` per example and channel,
    constant along time (Um et al. 2017, "Data augmentation of wearable sensor data")."""

    def __init__(self, sigma: NonNegativeFloat = 0.1, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        self.sigma = sigma

    def augment(self, x: Tensor) -> Tensor:
        factor = 1.0 + self.sigma * torch.randn(*x.shape[:-1], 1, device=x.device, dtype=x.dtype)
        return x * factor


class MagnitudeWarp(RandomAugmentation):
    """Magnitude warping: ``x(t) * w(t)``, where ``w`` is a smooth random curve per example and
    channel through ``knots`` values ``~ N(1, sigma^2)`` placed evenly from the first to the last
    time step (both ends included), interpolated linearly or by cubic convolution (Keys 1981: a
    C1 cubic through the knots) over the length (Um et al. 2017, "Data augmentation of wearable
    sensor data"; they place ``knots`` interior knots plus the two ends)."""

    def __init__(self, sigma: NonNegativeFloat = 0.2, knots: Annotated[int, Range(ge=2)] = 4,
                 interpolation: choice("linear", "cubic") = "cubic", p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if knots < 2:
            raise ValueError(f"knots must be >= 2, got {knots}")
        if interpolation not in ("linear", "cubic"):
            raise ValueError(f"interpolation must be 'linear' or 'cubic', got {interpolation!r}")
        self.sigma, self.knots, self.interpolation = sigma, knots, interpolation

    def curve(self, x: Tensor) -> Tensor:
        """The random warping curves, shaped like ``x``."""
        *lead, length = x.shape
        values = 1.0 + self.sigma * torch.randn(*lead, self.knots, device=x.device, dtype=x.dtype)
        flat = values.reshape(-1, 1, self.knots)
        if self.interpolation == "linear":
            curve = F.interpolate(flat, size=length, mode="linear", align_corners=True)
        else:  # bicubic on a 1-pixel-high image is cubic convolution along time
            curve = F.interpolate(flat.unsqueeze(2), size=(1, length), mode="bicubic", align_corners=True)
        return curve.reshape(x.shape)

    def augment(self, x: Tensor) -> Tensor:
        return x * self.curve(x)


class TimeShift(RandomAugmentation):
    """Circular time shift: ``torch.roll(x, s, dims=-1)`` with one integer ``s`` per example drawn
    uniformly from ``[-max_shift, max_shift]`` **time steps** (all channels move together), as in
    the shift augmentations surveyed by Iwana & Uchida 2021, "An empirical survey of data
    augmentation for time series classification with neural networks"."""

    def __init__(self, max_shift: NonNegativeInt = 4, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.max_shift = max_shift

    def augment(self, x: Tensor) -> Tensor:
        length = x.shape[-1]
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (x.shape[0],), device=x.device)
        # roll: out[t] = x[(t - s) mod L]
        index = (torch.arange(length, device=x.device) - shift.view(-1, *([1] * (x.dim() - 1)))) % length
        return x.gather(-1, index.expand(x.shape))


class TimeMask(RandomAugmentation):
    """Time masking: one contiguous window per example, of ``w ~ U{1, ..., max(1, floor(max_width
    * L))}`` steps starting at ``t0 ~ U{0, ..., L - w}``, is set to **zero** in every channel (the
    mean of standardised inputs) (SpecAugment, Park et al. 2019, "SpecAugment: a simple data
    augmentation method for automatic speech recognition")."""

    def __init__(self, max_width: LengthFraction = 0.1, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if not 0.0 < max_width <= 1.0:
            raise ValueError(f"max_width must be in (0, 1], got {max_width}")
        self.max_width = max_width

    def window(self, x: Tensor) -> Tensor:
        """A boolean ``(B, 1, ..., L)`` mask of the zeroed window."""
        batch, length = x.shape[0], x.shape[-1]
        widest = max(1, int(self.max_width * length))
        width = 1 + (torch.rand(batch, device=x.device) * widest).long().clamp_(max=widest - 1)
        start = (torch.rand(batch, device=x.device) * (length - width + 1)).long()
        start = torch.minimum(start, length - width)
        shape = (batch, *([1] * (x.dim() - 1)))
        t = torch.arange(length, device=x.device)
        return (t >= start.view(shape)) & (t < (start + width).view(shape))

    def augment(self, x: Tensor) -> Tensor:
        return x.masked_fill(self.window(x), 0.0)


class WindowCrop(RandomAugmentation):
    """Window slicing: a random contiguous crop of ``round(ratio * L)`` steps (at least 2), starting
    at ``t0 ~ U{0, ..., L - crop}``, stretched back to ``L`` steps by linear interpolation
    (``out[t] = x(t0 + t * (crop - 1) / (L - 1))``) (Le Guennec et al. 2016, "Data augmentation
    for time series classification using convolutional neural networks")."""

    def __init__(self, ratio: LengthFraction = 0.9, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio = ratio

    def augment(self, x: Tensor) -> Tensor:
        batch, length = x.shape[0], x.shape[-1]
        if length < 2:
            return x
        crop = min(length, max(2, round(self.ratio * length)))
        start = torch.randint(0, length - crop + 1, (batch,), device=x.device)
        step = torch.arange(length, device=x.device, dtype=torch.float32) * ((crop - 1) / (length - 1))
        shape = (batch, *([1] * (x.dim() - 1)))
        pos = start.view(shape).to(torch.float32) + step  # (B, 1, ..., L) source coordinates
        left = pos.floor().long().clamp_(0, length - 1)
        right = (left + 1).clamp_(max=length - 1)
        frac = (pos - left).to(x.dtype)
        lo = x.gather(-1, left.expand(x.shape))
        hi = x.gather(-1, right.expand(x.shape))
        return lo + (hi - lo) * frac


@register("augmentation")
class Compose(nn.Module):
    """Applies ``transforms`` in order: ``t_n(... t_2(t_1(x)))``, each with its own ``p``
    (as ``torchvision.transforms.Compose``). In YAML, ``transforms`` is a list of nodes, each with
    its own ``_target_``."""

    def __init__(self, transforms: Sequence[Any] = ()) -> None:
        super().__init__()
        modules = list(transforms)
        for i, t in enumerate(modules):
            if not isinstance(t, nn.Module):
                raise TypeError(f"transforms[{i}] must be an nn.Module, got {type(t).__name__}")
        self.transforms = nn.ModuleList(modules)

    @property
    def reads(self) -> tuple[str, ...]:
        """The modalities every transform applies to."""
        kinds = ("series", "image", "text")
        return tuple(k for k in kinds if all(k in getattr(t, "reads", kinds) for t in self.transforms))

    def forward(self, x: Tensor) -> Tensor:
        for t in self.transforms:
            x = t(x)
        return x
