"""The training length and what happens to longer test or new series (``data.too_long``).

The model is sized by the training split alone: training examples are padded to the longest
training example, and that length is the model's. A test or predict series longer than it is

- ``cut`` (default): its first ``length`` steps are kept, and a warning says how many series were
  cut and names the first one's row;
- ``refuse``: an error names the first such row and both lengths.

Shorter series are zero-padded with a mask, as in training.
"""

from __future__ import annotations

import logging

import numpy as np

from fusionlab.config.schema import ConfigError

log = logging.getLogger("fusionlab")

TOO_LONG = ("cut", "refuse")


def longest_real(x: np.ndarray, mask: np.ndarray | None) -> int:
    """The number of steps of the longest example (the full width without a mask)."""
    return int(x.shape[-1]) if mask is None else max(1, int(mask.sum(axis=1).max()))


def fit_length(x: np.ndarray, mask: np.ndarray | None, length: int, policy: str, where: str, key: str = "data",
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` ``(N, ..., L)`` with its mask brought to exactly ``length`` steps: shorter examples are
    zero-padded, longer ones cut or refused per ``policy`` (see the module docstring). ``where``
    names the data in messages; ``rows`` maps examples to the user's rows."""
    if policy not in TOO_LONG:
        raise ValueError(f"policy must be one of {TOO_LONG}, got {policy!r}")
    n, steps = len(x), int(x.shape[-1])
    mask = np.ones((n, steps), dtype=bool) if mask is None else mask
    lengths = mask.sum(axis=1)
    over = np.flatnonzero(lengths > length)
    if over.size:
        first = int(over[0])
        row = int(rows[first]) if rows is not None else first
        if policy == "refuse":
            lead = "" if where == key else f"{where}: "
            raise ConfigError(key, f"{lead}row {row} has {int(lengths[first])} steps, longer than the {length} "
                              "steps of the longest training series (data.too_long=refuse; cut would keep the "
                              "first steps)")
        log.warning("%s: %d series are longer than the %d steps of the longest training series (longest %d, "
                    "first at row %d); each is cut to its first %d steps (data.too_long=cut)", where, over.size,
                    length, int(lengths.max()), row, length)
    if steps >= length:
        return np.ascontiguousarray(x[..., :length]), np.ascontiguousarray(mask[:, :length])
    pad = [(0, 0)] * (x.ndim - 1) + [(0, length - steps)]
    return np.pad(x, pad), np.pad(mask, [(0, 0), (0, length - steps)])
