"""The data state a checkpoint carries, and turning new raw examples into model inputs with it.

The datamodules provide ``data_state()`` and :func:`fusionlab.data.prepare_inputs` (the data
layer owns the format). This module calls them, and holds the small fallback used while a
datamodule has no ``data_state()``: input spec, class names in label order, the fitted scaling,
the training length and, for text, the tokenizer settings and vocabulary — plain types only,
so a checkpoint holding it loads with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusionlab.config.schema import ConfigError
from fusionlab.data.spec import InputSpec

STATE_VERSION = 1
# what a prediction needs from the data state; a checkpoint lacking one is named in the error
REQUIRED = ("input_spec", "classes")


def data_state(dm: Any) -> dict[str, Any]:
    """``dm.data_state()`` when the datamodule has it, else :func:`fallback_state`."""
    if hasattr(dm, "data_state"):
        return dm.data_state()
    return fallback_state(dm)


def fallback_state(dm: Any) -> dict[str, Any]:
    """The data state of a set-up :class:`~fusionlab.data.ArrayDataModule`, in plain types."""
    spec = dm.input_spec
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "input_spec": {"modality": spec.modality, "shape": list(spec.shape), "vocab_size": spec.vocab_size,
                       "masked": spec.masked},
        "classes": [c.item() if hasattr(c, "item") else c for c in dm.classes],
        "length": int(spec.shape[-1]),
        "length_policy": "error",
        "impute": getattr(dm, "impute", "none"),
    }
    pre = getattr(dm, "preprocessing", None)
    kind = type(pre).__name__
    if kind == "Standardize" and pre.mean is not None:
        state["preprocessing"] = {"kind": "standardize", "mean": torch.as_tensor(pre.mean, dtype=torch.float64),
                                  "std": torch.as_tensor(pre.std, dtype=torch.float64)}
    elif kind == "MinMax" and pre.min is not None:
        state["preprocessing"] = {"kind": "minmax", "min": torch.as_tensor(pre.min, dtype=torch.float64),
                                  "max": torch.as_tensor(pre.max, dtype=torch.float64), "low": pre.low,
                                  "high": pre.high}
    else:
        state["preprocessing"] = {"kind": "none"}
    tokenizer = getattr(dm, "tokenizer", None)
    if spec.modality == "text" and tokenizer is not None:
        state["tokenizer"] = {**tokenizer.config(), "tokens": list(tokenizer.tokens)}
        state["text_column"] = getattr(dm, "text_column", "text")
    label_column = getattr(dm, "label_column", None)
    if label_column is not None:
        state["label_column"] = label_column
    return state


def missing_parts(state: dict[str, Any] | None) -> list[str]:
    """What a checkpoint's data state lacks for prediction (all of it when there is none)."""
    if not state:
        return ["data state (input spec, class names, fitted preprocessing, vocabulary)"]
    out = [k for k in REQUIRED if k not in state]
    spec = state.get("input_spec") or {}
    if spec.get("modality") == "text" and "tokenizer" not in state and "vocabulary" not in state:
        out.append("tokenizer and vocabulary")
    return out


def input_spec(state: dict[str, Any]) -> InputSpec:
    """The :class:`InputSpec` stored in ``state`` (vocabulary tokens included for text)."""
    spec = state["input_spec"]
    if isinstance(spec, InputSpec):
        return spec
    tokens = spec.get("tokens")
    if tokens is None and "tokenizer" in state:
        tokens = state["tokenizer"].get("tokens")
    return InputSpec(spec["modality"], tuple(int(d) for d in spec["shape"]), spec.get("vocab_size"),
                     bool(spec.get("masked")), tuple(tokens) if tokens is not None else None)


def prepare_inputs(state: dict[str, Any], raw: Any) -> tuple[Tensor, Tensor | None]:
    """New raw examples as model inputs, prepared exactly as the test split was.

    Uses :func:`fusionlab.data.prepare_inputs` when the data layer has it, else the fallback below.
    ``raw``: numpy ``(n, c, L)`` / ``(n, L)``, a list of unequal-length ``(c, L_i)`` arrays, images
    ``(n, c, h, w)`` / ``(n, h, w)``, or a list of strings. A row that does not fit the model (wrong
    channel count, a series longer than the training length, an empty text, NaN without imputation)
    is a :class:`ConfigError` naming the row.
    """
    try:
        from fusionlab.data import prepare_inputs as data_prepare_inputs
    except ImportError:
        data_prepare_inputs = None
    if data_prepare_inputs is not None and state.get("version") != STATE_VERSION:
        return data_prepare_inputs(state, raw)
    spec = input_spec(state)
    if spec.modality == "text":
        return _prepare_text(state, raw)
    return _prepare_arrays(state, spec, raw)


# -- fallback preparation ----------------------------------------------------------------------------
def _prepare_text(state: dict[str, Any], raw: Any) -> tuple[Tensor, Tensor]:
    from fusionlab.data.tokenize import PAD_ID, Tokenizer

    if isinstance(raw, str) or not isinstance(raw, Sequence | np.ndarray):
        raise ConfigError("input", "text models take a list of strings")
    texts = []
    for row, t in enumerate(raw):
        if t is None or (isinstance(t, float) and np.isnan(t)) or not str(t).strip():
            raise ConfigError("input", f"row {row} has an empty text; every example needs a non-empty text")
        texts.append(str(t))
    settings = dict(state["tokenizer"])
    tokens = settings.pop("tokens")
    tokenizer = Tokenizer(**settings)
    tokenizer.set_vocabulary(tokens)
    ids = torch.as_tensor(tokenizer.encode(texts))  # truncated to the training max_length; unknown -> <unk>
    return ids, ids != PAD_ID


def _as_examples(spec: InputSpec, raw: Any) -> list[np.ndarray] | np.ndarray:
    """``raw`` as one float array ``(n, *example)`` or a list of per-example arrays."""
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    if isinstance(raw, np.ndarray) and raw.dtype != object:
        x = raw.astype(np.float32, copy=False)
        if spec.modality == "series" and x.ndim == 2:
            x = x[:, None, :]
        if spec.modality == "image" and x.ndim == 3:
            x = x[:, None]
        return x
    if isinstance(raw, str) or not isinstance(raw, Sequence | np.ndarray):
        raise ConfigError("input", f"expected a numpy array or a list of arrays for {spec.modality} data, "
                          f"got {type(raw).__name__}")
    items = []
    for a in raw:
        a = np.asarray(a, dtype=np.float32)
        if spec.modality == "series" and a.ndim == 1:
            a = a[None, :]
        if spec.modality == "image" and a.ndim == 2:
            a = a[None]
        items.append(a)
    return items


def _prepare_arrays(state: dict[str, Any], spec: InputSpec, raw: Any) -> tuple[Tensor, Tensor | None]:
    from fusionlab.data.base import pad_to_longest

    examples = _as_examples(spec, raw)
    if len(examples) == 0:
        raise ConfigError("input", "no examples to predict")
    lead, length = spec.shape[:-1], int(state.get("length", spec.shape[-1]))
    what = {"series": "(channels, length)", "image": "(channels, height, width)"}[spec.modality]
    expected = f"{what} = {(*lead, '<= ' + str(length)) if spec.modality == 'series' else tuple(spec.shape)}"
    shapes = [a.shape for a in examples]
    for row, shape in enumerate(shapes):
        if len(shape) != len(spec.shape) or shape[:-1] != lead:
            raise ConfigError("input", f"row {row} has shape {tuple(shape)}, expected {expected}")
        if spec.modality == "image" and shape != spec.shape:
            raise ConfigError("input", f"row {row} has shape {tuple(shape)}, expected {expected}")
        if shape[-1] > length and state.get("length_policy", "error") == "error":
            raise ConfigError("input", f"row {row} has {shape[-1]} steps, longer than the {length} the model was "
                              "trained on (length policy: error)")
        if shape[-1] == 0:
            raise ConfigError("input", f"row {row} is empty, expected {expected}")
    if isinstance(examples, np.ndarray):
        x, mask = examples, None
    else:
        x, full = pad_to_longest(examples)
        mask = None if full.all() else full
    if spec.modality == "series" and (mask is not None or x.shape[-1] < length) and mask is None:
        mask = np.ones((len(x), x.shape[-1]), dtype=bool)  # shorter than training: the rest is padding
    x = _impute(state, x, mask)
    x = _scale(state.get("preprocessing") or {"kind": "none"}, x, mask)
    return torch.as_tensor(x, dtype=torch.float32), None if mask is None else torch.as_tensor(mask)


def _impute(state: dict[str, Any], x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    from fusionlab.data.base import _impute as impute_values
    from fusionlab.data.base import _real

    real = _real(x, mask)
    bad = ~np.isfinite(x) & real
    if not bad.any():
        return np.where(real, x, 0.0).astype(np.float32)
    how = state.get("impute", "none")
    rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
    if how == "none" or np.isinf(x[real]).any():
        raise ConfigError("input", f"row {int(rows[0])} has non-finite values (NaN/inf); the model was trained "
                          f"with impute={how}")
    fill = state.get("impute_fill")
    if how != "zero" and fill is None:
        raise ConfigError("input", f"row {int(rows[0])} has NaN values, but the checkpoint holds no fill values "
                          f"for impute={how}")
    fill_array = None if fill is None else np.asarray(fill, dtype=np.float32)
    return impute_values(x, mask, how, fill_array)


def _scale(pre: dict[str, Any], x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    kind = pre.get("kind", "none")
    if kind == "standardize":
        y = (x - np.asarray(pre["mean"])) / np.asarray(pre["std"])
    elif kind == "minmax":
        lo, hi = np.asarray(pre["min"]), np.asarray(pre["max"])
        span = np.where(hi > lo, hi - lo, 1.0)
        y = pre["low"] + (pre["high"] - pre["low"]) * (x - lo) / span
    else:
        y = x
    y = y.astype(np.float32)
    if mask is not None:
        y = y * mask.reshape(mask.shape[0], *([1] * (x.ndim - 2)), -1).astype(np.float32)
    return y
