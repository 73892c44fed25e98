"""Views: per-branch input transforms, so branches can read the same example differently
(time and frequency, an image's rows as a sequence). Chosen per branch in a model preset's
``views: {<branch>: <view>}``; add one with :func:`register_view`.

A view maps ``(x, mask)`` to ``(x, mask)`` and states the :class:`InputSpec` it produces.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from fusionlab import registry
from fusionlab.config.schema import ConfigError
from fusionlab.data.spec import InputSpec
from fusionlab.registry import Registrable

VIEWS: dict[str, type[View]] = {}


def register_view(name: str) -> Callable[[type[View]], type[View]]:
    """Class decorator: make a view available as ``views: {<branch>: <name>}``."""

    def deco(cls: type[View]) -> type[View]:
        VIEWS[name] = cls
        registry.add(cls, "view", name)  # also listed by fusionlab.registry.named("view")
        cls.name = name
        return cls

    return deco


class View(nn.Module, Registrable):
    """Base: the identity on ``reads`` modalities (None = any)."""

    registry_kind = "view"  # every subclass is registered (fusionlab.registry)
    name: str = ""
    reads: tuple[str, ...] | None = None
    masks: bool = True  # False: the view cannot keep padded steps apart (refused for masked data)

    def check(self, spec: InputSpec, key: str) -> InputSpec:
        """The spec this view produces from ``spec``, or a ConfigError naming ``key``."""
        if self.reads is not None and spec.modality not in self.reads:
            raise ConfigError(key, f"view '{self.name}' reads {' or '.join(self.reads)} data, "
                              f"but the input is {spec.describe()}")
        if spec.masked and not self.masks:
            raise ConfigError(key, f"view '{self.name}' cannot honour padding masks (unequal-length data); "
                              "bring the series to one length first, e.g. data=ucr_equal")
        return self.out_spec(spec)

    def out_spec(self, spec: InputSpec) -> InputSpec:
        return spec

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        return x, mask


def make_view(name: str, spec: InputSpec, key: str) -> tuple[View, InputSpec]:
    """Build the view called ``name`` for inputs described by ``spec``."""
    if name not in VIEWS:
        raise ConfigError(key, f"unknown view '{name}'; expected one of {sorted(VIEWS)}")
    view = VIEWS[name]()
    return view, view.check(spec, key)


@register_view("raw")
class RawView(View):
    """The input as the data gives it."""


@register_view("diff")
class DiffView(View):
    """First difference along time, ``x'_t = x_t - x_{t-1}`` with ``x'_0 = 0`` (length kept)."""

    reads = ("series",)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        d = torch.diff(x, dim=-1, prepend=x[..., :1])
        if mask is not None:  # the step after the last real one would difference against padding
            d = d.masked_fill(~mask.unsqueeze(1), 0.0)
        return d, mask


@register_view("fft")
class FFTView(View):
    """Magnitude spectrum ``|rfft(x)|`` per channel: ``(C, L) -> (C, L // 2 + 1)`` frequency bins
    read as a sequence over frequency."""

    reads = ("series",)
    masks = False

    def out_spec(self, spec: InputSpec) -> InputSpec:
        channels, length = spec.shape
        return spec.with_(shape=(channels, length // 2 + 1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        return torch.fft.rfft(x, dim=-1).abs(), None


@register_view("shuffle")
class ShuffleView(View):
    """The "dimension shuffle" of LSTM-FCN (Karim et al. 2017): ``(C, L) -> (L, C)``, so a
    recurrent branch reads a univariate series as one time step of ``L`` features."""

    reads = ("series",)
    masks = False

    def out_spec(self, spec: InputSpec) -> InputSpec:
        channels, length = spec.shape
        return spec.with_(shape=(length, channels))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        return x.transpose(1, 2), None


@register_view("rows")
class RowsView(View):
    """An image's rows as a sequence: ``(C, H, W) -> (C * W, H)``, one step per row."""

    reads = ("image",)

    def out_spec(self, spec: InputSpec) -> InputSpec:
        c, h, w = spec.shape
        return spec.with_(modality="series", shape=(c * w, h))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        b, c, h, w = x.shape
        return x.permute(0, 1, 3, 2).reshape(b, c * w, h), None
