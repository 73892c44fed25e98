"""Input scaling fitted on the training part only (group ``preprocessing``, ``# @package data.preprocessing``).

A preprocessor is fitted with ``fit(x_train, mask)`` and applied to every split with
``transform(x, mask)``. ``x`` is ``(N, C, L)`` (series) or ``(N, C, H, W)`` (image); ``mask`` is
``(N, L)`` bool (True on real steps) for padded series, else None. Padded steps never enter a
statistic and stay exactly 0 after ``transform``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError, choice
from fusionlab.registry import Registrable


def _weights(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Per-element weights broadcast to ``x``: 1 on real steps, 0 on padding."""
    if mask is None:
        return np.ones_like(x, dtype=np.float64)
    return np.broadcast_to(mask[:, None, :].astype(np.float64), x.shape)


def _axes(x: np.ndarray, per: str) -> tuple[int, ...]:
    """Axes a statistic is taken over: all (global) or all but the channel axis 1 (channel)."""
    return tuple(range(x.ndim)) if per == "global" else (0, *range(2, x.ndim))


def _zero_padding(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return x if mask is None else x * mask[:, None, :].astype(x.dtype)


class Preprocessor(Registrable):
    """Base: the identity. Subclasses set statistics in :meth:`fit` and use them in :meth:`transform`."""

    registry_kind = "preprocessing"  # every subclass is registered (fusionlab.registry)

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> Preprocessor:
        return self

    def transform(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return _zero_padding(x, mask)

    def stats(self) -> dict[str, Any]:
        """The fitted statistics (saved in ``metrics.json`` under ``data``)."""
        return {}


class NoScaling(Preprocessor):
    """Inputs as loaded (``preprocessing=none``)."""


class Standardize(Preprocessor):
    """``(x - mean) / std`` with the training part's mean and standard deviation, over all values
    (``per: global``) or per channel (``per: channel``). A zero std is replaced by 1."""

    def __init__(self, per: choice("global", "channel") = "global") -> None:
        self.per = per
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> Standardize:
        w = _weights(x, mask)
        axes = _axes(x, self.per)
        n = w.sum(axis=axes, keepdims=True)
        if not np.all(n > 0):
            raise ConfigError("data.preprocessing", "no real (unpadded) values to fit the statistics on")
        x64 = x.astype(np.float64)
        mean = (x64 * w).sum(axis=axes, keepdims=True) / n
        var = (((x64 - mean) ** 2) * w).sum(axis=axes, keepdims=True) / n
        std = np.sqrt(var)
        self.mean, self.std = mean, np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        assert self.mean is not None and self.std is not None, "fit first"
        return _zero_padding(((x - self.mean) / self.std).astype(np.float32), mask)

    def stats(self) -> dict[str, Any]:
        if self.mean is None or self.std is None:
            return {}
        return {"per": self.per, "mean": self.mean.ravel().tolist(), "std": self.std.ravel().tolist()}


class MinMax(Preprocessor):
    """``low + (high - low) * (x - min) / (max - min)`` with the training part's min and max,
    over all values (``per: global``) or per channel. Test values outside the training range map
    outside ``[low, high]`` (no clipping). A zero range is replaced by 1."""

    def __init__(self, low: float = 0.0, high: float = 1.0, per: choice("global", "channel") = "global") -> None:
        if not high > low:
            raise ConfigError("high", f"must be greater than low ({low}), got {high}")
        self.low, self.high, self.per = float(low), float(high), per
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def fit(self, x: np.ndarray, mask: np.ndarray | None = None) -> MinMax:
        axes = _axes(x, self.per)
        real = _weights(x, mask) > 0
        if not real.any(axis=axes).all():
            raise ConfigError("data.preprocessing", "no real (unpadded) values to fit the statistics on")
        x64 = x.astype(np.float64)
        self.min = np.where(real, x64, np.inf).min(axis=axes, keepdims=True)
        self.max = np.where(real, x64, -np.inf).max(axis=axes, keepdims=True)
        return self

    def transform(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        assert self.min is not None and self.max is not None, "fit first"
        span = np.where(self.max > self.min, self.max - self.min, 1.0)
        y = self.low + (self.high - self.low) * (x - self.min) / span
        return _zero_padding(y.astype(np.float32), mask)

    def stats(self) -> dict[str, Any]:
        if self.min is None or self.max is None:
            return {}
        return {"per": self.per, "min": self.min.ravel().tolist(), "max": self.max.ravel().tolist(),
                "range": [self.low, self.high]}


# -- fitted preprocessing in a checkpoint (plain types and tensors only) -------------------------------
def preprocessing_state(pre: Preprocessor) -> dict[str, Any]:
    """``pre`` with its fitted statistics as plain types and tensors (``weights_only``-loadable):
    ``{"kind": <class name, lower case>, <attribute>: <value>, ...}``."""
    import torch

    kinds = {"NoScaling": "none", "Preprocessor": "none"}
    state: dict[str, Any] = {"kind": kinds.get(type(pre).__name__, type(pre).__name__.lower())}
    for name, value in vars(pre).items():
        state[name] = torch.as_tensor(value) if isinstance(value, np.ndarray) else value
    return state


def preprocessing_from_state(state: dict[str, Any]) -> Preprocessor:
    """The fitted preprocessor :func:`preprocessing_state` described (any :class:`Preprocessor` subclass)."""
    import torch

    kind = state.get("kind", "none")
    known: dict[str, type[Preprocessor]] = {"none": NoScaling}
    stack = [Preprocessor]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        known.setdefault(cls.__name__.lower(), cls)
    if kind not in known:
        raise ConfigError("data.preprocessing", f"the checkpoint's preprocessing '{kind}' is not a known "
                          f"preprocessor (known: {sorted(known)})")
    pre = known[kind].__new__(known[kind])
    for name, value in state.items():
        if name != "kind" and not name.startswith("_"):
            setattr(pre, name, value.numpy() if isinstance(value, torch.Tensor) else value)
    return pre
