"""One array per split from what a dataset loads: a numeric array, or a list of per-example arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError
from fusionlab.data.padding import pad_to_longest, zero_padding

DIMENSIONS = {"series": 3, "image": 4, "text": 2}  # of a stacked split (N, ...)


def stack_examples(x: Any, mask: Any, modality: str, source: str, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` as an array ``(N, ...)`` and its mask (None when every example has the full length).

    ``x`` is an array (``(N, L)`` series get one channel) or a list of per-example arrays of any
    lengths along the last axis, zero-padded to the longest. ``mask``: ``(N, L)`` bool for an array
    that is already padded; its padding is zeroed. Errors name ``source``, ``split`` and the row.
    """
    text = modality == "text"
    dtype = np.int64 if text else np.float32
    if isinstance(x, np.ndarray) and x.dtype != object:
        x = np.asarray(x, dtype=dtype)
        if modality == "series" and x.ndim == 2:
            x = x[:, None, :]
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (x.shape[0], x.shape[-1]):
                raise ConfigError("data", f"{source}: mask_{split} has shape {mask.shape}, expected "
                                  f"{(x.shape[0], x.shape[-1])} (examples, steps)")
            x = zero_padding(x, mask)
        return _checked(x, modality, source, split), mask
    items = [np.asarray(a, dtype=dtype) for a in x]
    if not items:
        raise ConfigError("data", f"{source}: the {split} split is empty")
    if not text:
        items = [a[None, :] if a.ndim == 1 else a for a in items]
    lead = items[0].shape[:-1]
    for i, a in enumerate(items):
        if a.shape[:-1] != lead:
            raise ConfigError("data", f"{source}: {split} row {i} has shape {a.shape}, expected "
                              f"{lead} before the time axis (as row 0)")
    out, full_mask = pad_to_longest(items, dtype)
    if mask is None and not full_mask.all():
        mask = full_mask
    return _checked(out, modality, source, split), mask


def _checked(x: np.ndarray, modality: str, source: str, split: str) -> np.ndarray:
    dims = DIMENSIONS[modality]
    if x.ndim != dims:
        raise ConfigError("data", f"{source}: {split} inputs have shape {x.shape}, expected "
                          f"{dims} dimensions for {modality} data")
    return x
