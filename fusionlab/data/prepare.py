"""New raw examples as model inputs, prepared exactly as the test split was: :func:`prepare_inputs`
(and :func:`prepare_subwords` for a model with a pretrained sub-word branch).

Only the data state (:mod:`fusionlab.data.state`) is read, never the training data. A row that
does not fit the model is a :class:`~fusionlab.config.schema.ConfigError` (key ``input``) naming the
row and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusionlab.config.schema import ConfigError
from fusionlab.data.impute import impute
from fusionlab.data.lengths import fit_length
from fusionlab.data.loaders import trim_padding
from fusionlab.data.preprocessing import preprocessing_from_state
from fusionlab.data.stacking import stack_examples
from fusionlab.data.text.checks import is_missing
from fusionlab.data.tokenize import PAD_ID, Tokenizer

KEY = "input"


def prepare_inputs(state: dict[str, Any], raw: Any) -> tuple[Tensor, Tensor | None]:
    """``(x, mask)`` for the model from new raw examples (``mask`` None for unpadded data).

    ``raw``: numpy ``(n, c, L)`` or ``(n, L)`` series, a list of unequal-length ``(c, L_i)`` /
    ``(L_i,)`` arrays, images ``(n, c, h, w)`` or ``(n, h, w)``, or a list of strings — whatever the
    state's modality takes. Padded inputs come cut to the longest example given, as the test loader
    cuts each batch. Unknown tokens become ``<unk>``; a series longer than the training length follows
    the state's ``length_policy`` (cut, logged; or refused naming the row).
    """
    modality = state["input_spec"]["modality"]
    if modality == "text":
        return _prepare_texts(state, raw)
    return _prepare_arrays(state, modality, raw)


def prepare_subwords(state: dict[str, Any], raw: Any) -> tuple[Tensor, Tensor] | None:
    """The pretrained encoder's own sub-word ``(ids, mask)`` for new texts, cut to the longest, when the
    model has a sub-word branch (``data.subwords``); None otherwise. New text always enters as ids (the
    branch runs its frozen layers itself), never as cached states."""
    sub = state.get("subwords")
    if not sub or state["input_spec"]["modality"] != "text":
        return None
    from fusionlab.branches.pretrained_transformer import SubwordTokenizer

    ids, mask = SubwordTokenizer.from_state(sub).encode(_texts(raw))
    return torch.as_tensor(ids), torch.as_tensor(mask)


def _texts(raw: Any) -> list[str]:
    """``raw`` as a non-empty list of non-empty strings (a bad row is a ConfigError naming it)."""
    if isinstance(raw, str) or not isinstance(raw, (Sequence, np.ndarray)):
        raise ConfigError(KEY, f"a text model takes a list of strings, got {type(raw).__name__}")
    texts = []
    for row, t in enumerate(raw):
        if is_missing(t) or not str(t).strip():
            raise ConfigError(KEY, f"row {row} has an empty text; every example needs a non-empty text")
        texts.append(str(t))
    if not texts:
        raise ConfigError(KEY, "no examples: the input holds no texts")
    return texts


def _prepare_texts(state: dict[str, Any], raw: Any) -> tuple[Tensor, Tensor]:
    texts = _texts(raw)
    settings = dict(state["tokenizer"])
    tokens = settings.pop("tokens")
    tokenizer = Tokenizer(**settings)
    tokenizer.set_vocabulary(tokens)
    ids = torch.as_tensor(tokenizer.encode(texts))  # the first max_length tokens; unknown ones -> <unk>
    return trim_padding(ids, ids != PAD_ID)


def _examples(modality: str, raw: Any) -> Any:
    """``raw`` as one numeric array ``(n, ...)`` or a list of per-example arrays."""
    if isinstance(raw, Tensor):
        raw = raw.detach().cpu().numpy()
    if isinstance(raw, np.ndarray) and raw.dtype != object:
        if raw.dtype.kind not in "biuf":
            raise ConfigError(KEY, f"inputs have dtype {raw.dtype}, expected numbers")
        if modality == "image" and raw.ndim == 3:
            raw = raw[:, None]  # (n, h, w): one channel
        return raw
    if isinstance(raw, str) or not isinstance(raw, (Sequence, np.ndarray)):
        raise ConfigError(KEY, f"expected a numpy array or a list of arrays for {modality} data, got "
                          f"{type(raw).__name__}")
    items = []
    for row, a in enumerate(raw):
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise ConfigError(KEY, f"row {row} has dtype {a.dtype}, expected numbers")
        if modality == "image" and a.ndim == 2:
            a = a[None]
        if a.ndim == 0 or a.shape[-1] == 0:
            raise ConfigError(KEY, f"row {row} is empty")
        items.append(a)
    if modality == "image":
        shapes = {a.shape for a in items}
        if len(shapes) > 1:
            first = next(i for i, a in enumerate(items) if a.shape != items[0].shape)
            raise ConfigError(KEY, f"row {first} has shape {items[first].shape}, but row 0 {items[0].shape}")
        return np.stack(items) if items else np.zeros((0,))
    return items


def _prepare_arrays(state: dict[str, Any], modality: str, raw: Any) -> tuple[Tensor, Tensor | None]:
    spec = state["input_spec"]
    shape = tuple(int(d) for d in spec["shape"])
    examples = _examples(modality, raw)
    if len(examples) == 0:
        raise ConfigError(KEY, "no examples: the input is empty")
    _check_shapes(modality, shape, examples)
    x, mask = stack_examples(examples, None, modality, "input", "input")
    impute_how = state.get("impute", "none")
    _check_finite(x, impute_how)
    length = int(state.get("length", shape[-1]))
    if modality == "series":
        x, mask = _to_length(x, mask, length, bool(spec.get("masked")), state.get("length_policy", "cut"))
    fill = state.get("impute_fill")
    x = impute(x, mask, impute_how, None if fill is None else np.asarray(fill))
    x = preprocessing_from_state(state.get("preprocessing") or {"kind": "none"}).transform(x, mask)
    xt = torch.as_tensor(x, dtype=torch.float32)
    if mask is None:
        return xt, None
    return trim_padding(xt, torch.as_tensor(mask, dtype=torch.bool))


def _check_shapes(modality: str, shape: tuple[int, ...], examples: Any) -> None:
    """Channel count (series) or the whole shape (images) as in training; names the first bad row."""
    rows = [examples[0]] if isinstance(examples, np.ndarray) else examples
    for row, a in enumerate(rows):
        if modality == "image":
            if tuple(a.shape) != shape:
                raise ConfigError(KEY, f"row {row} has shape {tuple(a.shape)}, expected {shape} "
                                  "(channels, height, width) as in training")
            continue
        if a.ndim not in (1, 2):
            raise ConfigError(KEY, f"row {row} has shape {tuple(a.shape)}, expected (channels, length) or (length,)")
        channels = 1 if a.ndim == 1 else a.shape[0]
        if channels != shape[0]:
            raise ConfigError(KEY, f"row {row} has {channels} channel(s), expected {shape[0]} as in training")


def _check_finite(x: np.ndarray, how: str) -> None:
    """No inf; NaN only when the model was trained with imputation (as for the test split)."""
    flat = x.reshape(len(x), -1)
    bad = np.flatnonzero((~np.isfinite(flat) if how == "none" else np.isinf(flat)).any(axis=1))
    if bad.size:
        hint = "" if how != "none" else " (the model was trained without imputation, data.impute=none)"
        raise ConfigError(KEY, f"row {int(bad[0])} has non-finite values (NaN/inf){hint}")


def _to_length(x: np.ndarray, mask: np.ndarray | None, length: int, masked: bool,
               policy: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Series brought to the training length as the test split was (see :mod:`fusionlab.data.lengths`)."""
    if masked:
        return fit_length(x, mask, length, policy, "input", KEY)
    lengths = np.full(len(x), x.shape[-1]) if mask is None else mask.sum(axis=1)
    short = np.flatnonzero(lengths < length)
    if short.size:
        row = int(short[0])
        raise ConfigError(KEY, f"row {row} has {int(lengths[row])} steps; the model was trained on series of "
                          f"exactly {length} steps (no padding)")
    x, _ = fit_length(x, mask, length, policy, "input", KEY)
    return x, None
