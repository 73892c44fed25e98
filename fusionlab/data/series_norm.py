"""Per-series z-normalisation (``preprocessing=znorm``): the UCR archive's own convention."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.config.schema import choice
from fusionlab.data.preprocessing import Preprocessor


class PerSeriesZNorm(Preprocessor):
    """Each series (``per: series``: all its channels together; ``per: channel``: each channel) becomes
    ``(x - mean) / std`` over its own real steps, so it needs no fitted statistics and treats the
    training and test splits alike. A constant series (std 0) becomes 0. Padding stays 0."""

    def __init__(self, per: choice("channel", "series") = "channel") -> None:
        self.per = per

    def transform(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        w = np.ones_like(x, dtype=np.float64) if mask is None else np.broadcast_to(
            mask[:, None, :].astype(np.float64), x.shape)
        axes = tuple(range(2, x.ndim)) if self.per == "channel" else tuple(range(1, x.ndim))
        n = np.maximum(w.sum(axis=axes, keepdims=True), 1.0)
        x64 = x.astype(np.float64)
        mean = (x64 * w).sum(axis=axes, keepdims=True) / n
        std = np.sqrt((((x64 - mean) ** 2) * w).sum(axis=axes, keepdims=True) / n)
        y = np.where(std > 0, (x64 - mean) / np.where(std > 0, std, 1.0), 0.0) * w
        return y.astype(np.float32)

    def stats(self) -> dict[str, Any]:
        return {"per": self.per, "per_series": True}
