"""Stratified splits: the validation carve-out of the training split and a held-out test part.

Both are fixed by ``split_seed`` (independent of the run seed) and return sorted row indices.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from fusionlab.config.schema import ConfigError, Range

# A part of a split: below 1 a fraction of it, from 1 up a count of examples.
SplitSize = Annotated[float, Range(ge=0.0)]


def part_count(size: float, n: int) -> int:
    """``size`` below 1 is a fraction of ``n`` (rounded), from 1 up a count."""
    return int(round(size * n)) if size < 1 else int(size)


def carve_validation(y: np.ndarray, val_size: float, classes: list[Any], seed: int,
                     source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` rows of a training split with label indices ``y``: a stratified validation
    part of ``val_size`` (a count, a fraction in (0, 1), or 0 for none)."""
    n, v = len(y), val_size
    if v == 0:
        return np.arange(n), np.arange(0)
    if v < 1:
        count = max(1, int(round(v * n)))
    elif v != int(v):
        raise ConfigError("data.val_size", f"a count (>= 1) must be whole and a fraction in (0, 1), got {v}")
    else:
        count = int(v)
    if count >= n:
        raise ConfigError("data.val_size", f"must be smaller than the training split ({n}), got {v}")
    counts = np.bincount(y, minlength=len(classes))
    k = len(classes)
    if counts.min() < 2:
        c = classes[int(counts.argmin())]
        raise ConfigError("data.val_size", f"{source}: class {c!r} has {int(counts.min())} training "
                          "example(s); a stratified validation split needs at least 2 per class "
                          "(set data.val_size=0 to train without validation)")
    if count < k or n - count < k:
        raise ConfigError("data.val_size", f"{source}: a stratified split of {n} training examples "
                          f"into {n - count} + {count} (validation) cannot hold all {k} classes on both sides")
    from sklearn.model_selection import train_test_split

    train_idx, val_idx = train_test_split(np.arange(n), test_size=count, stratify=y, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def carve_test(labels: np.ndarray, size: float, seed: int, key: str, what: str,
               label_key: str = "data.label_column") -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` rows: a stratified test part of ``size`` (a fraction below 1, or a whole count)
    of rows with ``labels``; ``key`` and ``what`` name the option and the data in errors."""
    from sklearn.model_selection import train_test_split

    n = len(labels)
    count = part_count(size, n)
    if not 0 < count < n or (size >= 1 and size != int(size)):
        raise ConfigError(key, f"must take at least 1 and fewer than all {n} rows of {what} "
                          f"(a fraction below 1 or a whole count), got {size}")
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    if len(np.unique(codes)) < 2:
        raise ConfigError(label_key, f"{what} has a single class ({labels.tolist()[0]!r}); "
                          "a classifier needs at least 2")
    if np.bincount(codes).min() < 2 or count < codes.max() + 1 or n - count < codes.max() + 1:
        raise ConfigError(key, f"a stratified test part of {count} of the {n} rows of {what} cannot hold every "
                          "class on both sides (each class needs at least 2 rows); give a separate test split")
    train, test = train_test_split(np.arange(n), test_size=count, stratify=codes, random_state=seed)
    return np.sort(train), np.sort(test)
