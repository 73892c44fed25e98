"""One length for every series of an unequal-length problem (``data=ucr_equal``).

Models that read the whole series as one vector (the dimension shuffle of LSTM-FCN, ``views:
{lstm: shuffle}``) cannot honour padding masks. For them the series are brought to one length
before training, as Karim et al. (2017) do:

- ``resample``: each series' real steps are linearly interpolated onto ``length`` evenly spaced
  points (default: the longest training series), per channel; nothing is padding afterwards;
- ``pad``: each series is zero-padded at the end to ``length`` and the zeros are read as data.

No mask is left, so every branch and view accepts the result. Series that already share a length
are returned as they are unless ``length`` asks for another one (then they are resampled).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError, PositiveInt, choice
from fusionlab.data.ucr import UCRDataModule


def _rows(x: Any, mask: np.ndarray | None) -> list[np.ndarray]:
    """Per-example ``(C, L_i)`` arrays of real steps."""
    if isinstance(x, np.ndarray) and x.dtype != object:
        x = x[:, None, :] if x.ndim == 2 else x
        if mask is None:
            return list(x)
        return [a[:, : int(m.sum())] for a, m in zip(x, mask)]
    return [np.asarray(a)[None, :] if np.asarray(a).ndim == 1 else np.asarray(a) for a in x]


def resample(series: np.ndarray, length: int) -> np.ndarray:
    """``(C, L_i)`` linearly interpolated onto ``length`` evenly spaced points of the same span."""
    steps = series.shape[-1]
    if steps == length:
        return series.astype(np.float32)
    if steps == 1:
        return np.repeat(series, length, axis=-1).astype(np.float32)
    src, dst = np.linspace(0.0, 1.0, steps), np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(dst, src, c) for c in series]).astype(np.float32)


def equal_length(arrays: dict[str, Any], policy: str, length: int | None = None) -> dict[str, Any]:
    """``arrays`` (``x_train``, ``x_test``, optional ``mask_*``) with every series at one length and no
    masks: ``resample`` or zero-``pad`` to ``length`` (default: the longest training series)."""
    rows = {s: _rows(arrays[f"x_{s}"], arrays.get(f"mask_{s}")) for s in ("train", "test")}
    lengths = {s: [r.shape[-1] for r in rows[s]] for s in rows}
    ragged = any(len(set(v)) > 1 for v in lengths.values()) or set(lengths["train"]) != set(lengths["test"])
    if not ragged and length is None:
        return arrays
    target = int(length) if length is not None else max(lengths["train"])
    if policy == "pad" and max(lengths["train"] + lengths["test"]) > target:
        raise ConfigError("data.length", f"policy 'pad' cannot fit series of {max(lengths['train'] + lengths['test'])} "
                          f"steps into length {target}; raise data.length or use data.length_policy=resample")
    out = {k: v for k, v in arrays.items() if not k.startswith("mask_")}
    for split, items in rows.items():
        if policy == "resample":
            out[f"x_{split}"] = np.stack([resample(r, target) for r in items])
        else:
            x = np.zeros((len(items), items[0].shape[0], target), dtype=np.float32)
            for i, r in enumerate(items):
                x[i, :, : r.shape[-1]] = r
            out[f"x_{split}"] = x
    return out


class EqualLengthUCRDataModule(UCRDataModule):
    """A UCR/UEA problem (official split) with every series brought to one length (see the module
    docstring): ``data=ucr_equal data.name=JapaneseVowels data.length_policy=resample``."""

    def __init__(self, name: str, length_policy: choice("resample", "pad") = "resample",
                 length: PositiveInt | None = None, **options: Any) -> None:
        super().__init__(name, **options)
        self.length_policy_name = length_policy
        self.length = length

    def load_arrays(self) -> dict[str, Any]:
        return equal_length(super().load_arrays(), self.length_policy_name, self.length)
