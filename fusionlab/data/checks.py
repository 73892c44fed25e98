"""Checks of loaded arrays that name what is wrong: row counts that disagree, non-finite values.

Rows are named as the user knows them: ``rows`` maps an example of a split to its row in the
user's data (a dataset that holds out part of a file passes the rows it took).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError


def row_name(i: int, rows: np.ndarray | None = None, of: str | None = None) -> str:
    """``row R`` (``R`` the user's row of example ``i``), ``row R of <of>`` when ``of`` is given."""
    r = int(rows[i]) if rows is not None else int(i)
    return f"row {r}" + (f" of {of}" if of else "")


def check_row_counts(arrays: Mapping[str, Any], names: Mapping[str, str], where: str, key: str = "data") -> None:
    """Every present array in ``names`` (key -> how the user calls it) has as many rows as the first."""
    present = [(k, n) for k, n in names.items() if arrays.get(k) is not None]
    if not present:
        return
    first, first_name = present[0]
    n = len(arrays[first])
    for k, name in present[1:]:
        if len(arrays[k]) != n:
            raise ConfigError(key, f"{where}: {first_name} has {n} rows but {name} has {len(arrays[k])}; "
                              "they must have one row per example")


def check_finite(x: np.ndarray, impute: str, source: str, split: str, rows: np.ndarray | None = None,
                 of: str | None = None) -> None:
    """No inf anywhere; NaN only when ``impute`` will fill it. Names the user's row."""
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat) if impute == "none" else np.isinf(flat)
    found = np.flatnonzero(bad.any(axis=1))
    if found.size:
        hint = "" if impute != "none" else "; set data.impute=zero|mean|linear to fill NaN values"
        first = min(found, key=lambda i: int(rows[i]) if rows is not None else int(i))
        raise ConfigError("data", f"{source}: {split} split has non-finite values (NaN/inf) in "
                          f"{row_name(first, rows, of)}{hint}")
