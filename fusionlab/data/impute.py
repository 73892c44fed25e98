"""Filling NaN values on real steps (``data.impute``): zero, the training part's channel mean, or
linear interpolation along time. Padding is never filled: it stays 0."""

from __future__ import annotations

import numpy as np

from fusionlab.data.padding import real_steps, zero_padding

IMPUTE_CHOICES = ("none", "zero", "mean", "linear")


def channel_means(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Per-channel mean of the real, non-NaN values, shaped to broadcast against ``x``."""
    ok = real_steps(x, mask) & ~np.isnan(x)
    axes = (0, *range(2, x.ndim))
    total = np.where(ok, x, 0.0).sum(axis=axes, keepdims=True, dtype=np.float64)
    count = ok.sum(axis=axes, keepdims=True)
    return (total / np.maximum(count, 1)).astype(np.float32)


def impute(x: np.ndarray, mask: np.ndarray | None, how: str, fill: np.ndarray | None) -> np.ndarray:
    """Fill NaN on real steps: ``zero``; ``mean`` (``fill``: the training part's channel means);
    ``linear`` (interpolation along the last axis between the nearest real values, held constant
    at the ends; a row/channel without any value gets ``fill``)."""
    nan = np.isnan(x)
    if how == "none" or not nan.any():
        return x
    x = x.copy()
    if how == "zero":
        x[nan] = 0.0
        return zero_padding(x, mask)
    if fill is None:
        raise ValueError(f"impute={how} needs the training part's channel means")
    full = np.broadcast_to(fill, x.shape)
    if how == "mean":
        x[nan] = full[nan]
        return zero_padding(x, mask)
    flat, real = x.reshape(-1, x.shape[-1]), real_steps(x, mask).reshape(-1, x.shape[-1])
    fill_flat = full.reshape(-1, x.shape[-1])
    for r in np.flatnonzero(np.isnan(flat).any(axis=1)):
        steps = np.flatnonzero(real[r])
        known = steps[~np.isnan(flat[r, steps])]
        missing = steps[np.isnan(flat[r, steps])]
        flat[r, missing] = (np.interp(missing, known, flat[r, known]) if known.size else fill_flat[r, missing])
    return zero_padding(flat.reshape(x.shape), mask)
