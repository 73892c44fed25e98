"""Class labels of any kind (strings, any integers) as indices ``0..K-1`` in sorted label order."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError


def fit_classes(y: np.ndarray, source: str) -> list[Any]:
    """The classes: the distinct training labels, numerically sorted when they are numbers
    (also numbers written as strings), else sorted as text. Index ``i`` is class ``classes[i]``."""
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ConfigError("data", f"{source}: train label in row {row} is {y[row]}, expected a class")
    values = np.unique(y)
    if y.dtype.kind in "USO":
        try:
            values = sorted(values, key=lambda v: float(v))
        except (TypeError, ValueError):
            values = sorted(values, key=str)
    classes = [v.item() if hasattr(v, "item") else v for v in values]
    if len(classes) < 2:
        raise ConfigError("data", f"{source}: every training label is {classes[0]!r}; "
                          "classification needs at least 2 classes")
    return classes


def label_indices(y: np.ndarray, classes: list[Any], source: str, split: str) -> np.ndarray:
    """``y`` as indices into ``classes``; a label not among them is an error naming its row."""
    lookup = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(y), dtype=np.int64)
    for row, v in enumerate(y.tolist()):
        if v not in lookup:
            raise ConfigError("data", f"{source}: {split} label {v!r} (row {row}) does not occur in the "
                              f"training split; training classes are {classes}")
        out[row] = lookup[v]
    return out
