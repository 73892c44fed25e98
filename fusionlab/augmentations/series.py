"""Series augmentations for batches ``(B, C, L)``, optionally padded (``mask`` ``(B, L)``).

Each draws its random positions among an example's real steps (its own length ``n``), so a roll
stays inside the signal, a crop is stretched back to ``n`` steps, a time mask lands on real steps,
and padding is returned unchanged (exactly 0).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from fusionlab.augmentations.base import LengthFraction, RandomAugmentation, keep_padding, real_lengths
from fusionlab.config.schema import NonNegativeFloat, NonNegativeInt, Range, UnitProbability, choice


def _steps(x: Tensor) -> Tensor:
    """``(L,)`` step indices on ``x``'s device."""
    return torch.arange(x.shape[-1], device=x.device)


class Jitter(RandomAugmentation):
    """Additive Gaussian noise: ``x + sigma * N(0, 1)`` on each real step of each example with
    probability ``p`` (Um et al. 2017, "Data augmentation of wearable sensor data for Parkinson's
    disease monitoring using convolutional neural networks")."""

    reads = ("series", "image")

    def __init__(self, sigma: NonNegativeFloat = 0.05, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        self.sigma = sigma

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return keep_padding(x + torch.randn_like(x) * self.sigma, x, mask)


class Scaling(RandomAugmentation):
    """Random scaling: ``x * s`` with one factor ``s ~ N(1, sigma^2)`` per example and channel,
    constant along time (Um et al. 2017, "Data augmentation of wearable sensor data")."""

    def __init__(self, sigma: NonNegativeFloat = 0.1, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        self.sigma = sigma

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        factor = 1.0 + self.sigma * torch.randn(*x.shape[:-1], 1, device=x.device, dtype=x.dtype)
        return keep_padding(x * factor, x, mask)


def _cubic_weights(t: Tensor, a: float = -0.75) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Keys' cubic convolution weights of the four knots around a point at fraction ``t`` past the
    second (``a = -0.75``, as torch's bicubic interpolation)."""
    def near(d: Tensor) -> Tensor:
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: Tensor) -> Tensor:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


class MagnitudeWarp(RandomAugmentation):
    """Magnitude warping: ``x(t) * w(t)``, where ``w`` is a smooth random curve per example and
    channel through ``knots`` values ``~ N(1, sigma^2)`` placed evenly from the first to the last
    real step (both ends included), interpolated linearly or by cubic convolution (Keys 1981: a
    C1 cubic through the knots) (Um et al. 2017, "Data augmentation of wearable sensor data"; they
    place ``knots`` interior knots plus the two ends)."""

    def __init__(self, sigma: NonNegativeFloat = 0.2, knots: Annotated[int, Range(ge=2)] = 4,
                 interpolation: choice("linear", "cubic") = "cubic", p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if knots < 2:
            raise ValueError(f"knots must be >= 2, got {knots}")
        if interpolation not in ("linear", "cubic"):
            raise ValueError(f"interpolation must be 'linear' or 'cubic', got {interpolation!r}")
        self.sigma, self.knots, self.interpolation = sigma, knots, interpolation

    def curve(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The random warping curves, shaped like ``x`` (their knots span each example's real steps)."""
        values = 1.0 + self.sigma * torch.randn(*x.shape[:-1], self.knots, device=x.device, dtype=x.dtype)
        last = (real_lengths(x, mask) - 1).clamp(min=1).to(x.dtype)
        pos = (_steps(x).to(x.dtype) / last).clamp(max=1.0) * (self.knots - 1)  # knot coordinate of each step
        pos = pos.expand(*x.shape)
        base = pos.floor().long().clamp(0, self.knots - 2)
        t = pos - base
        if self.interpolation == "linear":
            lo, hi = values.gather(-1, base), values.gather(-1, base + 1)
            return lo + (hi - lo) * t
        out = torch.zeros_like(x)
        for offset, w in zip((-1, 0, 1, 2), _cubic_weights(t)):
            out = out + w * values.gather(-1, (base + offset).clamp(0, self.knots - 1))
        return out

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return keep_padding(x * self.curve(x, mask), x, mask)


class TimeShift(RandomAugmentation):
    """Circular time shift within each example's real steps: ``out[t] = x[(t - s) mod n]`` with one
    integer ``s`` per example drawn uniformly from ``[-max_shift, max_shift]`` **time steps** (all
    channels move together; ``n`` the example's length, padding untouched), as in the shift
    augmentations surveyed by Iwana & Uchida 2021, "An empirical survey of data augmentation for
    time series classification with neural networks"."""

    def __init__(self, max_shift: NonNegativeInt = 4, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.max_shift = max_shift

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (x.shape[0],), device=x.device)
        n = real_lengths(x, mask)
        t = _steps(x)
        index = torch.where(t < n, torch.remainder(t - shift.view_as(n), n), t)
        return keep_padding(x.gather(-1, index.expand(x.shape)), x, mask)


class TimeMask(RandomAugmentation):
    """Time masking: one contiguous window of real steps per example, of ``w ~ U{1, ..., max(1,
    floor(max_width * n))}`` steps starting at ``t0 ~ U{0, ..., n - w}`` (``n`` the example's
    length), is set to **zero** in every channel (the mean of standardised inputs) (SpecAugment,
    Park et al. 2019, "SpecAugment: a simple data augmentation method for automatic speech
    recognition")."""

    def __init__(self, max_width: LengthFraction = 0.1, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if not 0.0 < max_width <= 1.0:
            raise ValueError(f"max_width must be in (0, 1], got {max_width}")
        self.max_width = max_width

    def window(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """A boolean ``(B, 1, ..., L)`` mask of the zeroed window (inside each example's real steps)."""
        n = real_lengths(x, mask)
        widest = (n.to(torch.float64) * self.max_width).floor().long().clamp(min=1)
        draw = torch.rand((2, *n.shape), device=x.device)
        width = 1 + torch.minimum((draw[0] * widest).long(), widest - 1)
        start = torch.minimum((draw[1] * (n - width + 1)).long(), n - width)
        t = _steps(x)
        return (t >= start) & (t < start + width)

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return x.masked_fill(self.window(x, mask), 0.0)


class WindowCrop(RandomAugmentation):
    """Window slicing: a random contiguous crop of ``round(ratio * n)`` real steps (at least 2),
    starting at ``t0 ~ U{0, ..., n - crop}``, stretched back to the example's ``n`` steps by linear
    interpolation (``out[t] = x(t0 + t * (crop - 1) / (n - 1))``); padding is untouched (Le Guennec
    et al. 2016, "Data augmentation for time series classification using convolutional neural
    networks"). Examples shorter than 2 steps are left as they are."""

    def __init__(self, ratio: LengthFraction = 0.9, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio = ratio

    def augment(self, x: Tensor, mask: Tensor | None) -> Tensor:
        n = real_lengths(x, mask)
        crop = torch.round(n.to(torch.float64) * self.ratio).long().clamp(min=2).minimum(n)
        start = (torch.rand(n.shape, device=x.device) * (n - crop + 1)).long().minimum((n - crop).clamp(min=0))
        t = _steps(x)
        scale = (crop - 1).to(torch.float32) / (n - 1).clamp(min=1).to(torch.float32)
        pos = start.to(torch.float32) + t.to(torch.float32) * scale  # (B, 1, ..., L) source coordinates
        top = (n - 1).clamp(min=0)
        left = pos.floor().long().clamp(min=0).minimum(top)
        right = (left + 1).minimum(top)
        frac = (pos - left).to(x.dtype)
        lo = x.gather(-1, left.expand(x.shape))
        hi = x.gather(-1, right.expand(x.shape))
        out = lo + (hi - lo) * frac
        out = torch.where(n >= 2, out, x)
        return keep_padding(out, x, mask)
