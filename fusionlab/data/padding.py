"""Zero padding of unequal-length examples at the end of the time axis, and the mask of real steps.

Every padded array ``(N, ..., L)`` comes with a mask ``(N, L)``, True on real steps; padded values
are exactly 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pad_to_longest(items: Sequence[np.ndarray], dtype: Any = np.float32,
                   length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad per-example arrays ``(..., L_i)`` to ``(N, ..., length)`` (default: the longest
    ``L_i``); also the mask ``(N, length)``, True on real steps. Every ``L_i`` must be <= ``length``."""
    lengths = np.array([a.shape[-1] for a in items])
    width = int(lengths.max()) if length is None else int(length)
    out = np.zeros((len(items), *items[0].shape[:-1], width), dtype=dtype)
    for i, a in enumerate(items):
        out[i, ..., : a.shape[-1]] = a
    return out, np.arange(width)[None, :] < lengths[:, None]


def real_steps(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Bool array shaped like ``x``: True on real (unpadded) steps."""
    if mask is None:
        return np.ones(x.shape, dtype=bool)
    return np.broadcast_to(mask.reshape(mask.shape[0], *([1] * (x.ndim - 2)), -1), x.shape)


def zero_padding(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``x`` with every padded value set to 0 (also where the data had NaN there)."""
    return np.where(real_steps(x, mask), x, 0.0).astype(x.dtype)


def pad_to(x: np.ndarray, mask: np.ndarray | None, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` ``(N, ..., L)`` with ``L <= length`` zero-padded to ``length`` steps, and its mask."""
    n, steps = len(x), x.shape[-1]
    if mask is None:
        mask = np.ones((n, steps), dtype=bool)
    pad = [(0, 0)] * (x.ndim - 1) + [(0, length - steps)]
    return np.pad(x, pad), np.pad(mask, [(0, 0), (0, length - steps)])
