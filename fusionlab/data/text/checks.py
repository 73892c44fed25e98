"""Checks of raw texts and labels that name the row of a missing or blank value."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def check_texts(texts: list[Any], where: str, key: str) -> list[str]:
    """Texts as strings; a missing or blank one is a ConfigError naming its row."""
    out = []
    for row, t in enumerate(texts):
        if is_missing(t) or not str(t).strip():
            raise ConfigError(key, f"row {row} of {where} has an empty text (rows counted from 0, header "
                              "excluded); every example needs a non-empty text")
        out.append(str(t))
    return out


def check_labels(labels: list[Any], where: str, key: str) -> np.ndarray:
    """Labels as a plain (non-object) array; a missing one is a ConfigError naming its row."""
    for row, v in enumerate(labels):
        if is_missing(v) or (isinstance(v, str) and not v.strip()):
            raise ConfigError(key, f"row {row} of {where} has no label (rows counted from 0, header excluded)")
    out = np.asarray(labels)
    if out.dtype.kind not in "iubfU":  # mixed or object: compare as strings
        out = np.asarray([str(v) for v in labels])
    return out
