"""Reading new examples from a file for prediction or evaluation: :func:`read_inputs`.

Formats (by extension):

- ``.npz``: ``x`` ``(n, c, L)`` / ``(n, L)`` series or ``(n, c, h, w)`` / ``(n, h, w)`` images, with an
  optional ``mask`` ``(n, L)`` (True on real steps) for padded series; or unequal-length series saved
  one array each with ``np.savez(path, *series)`` (``arr_0``, ``arr_1``, ...). Labels: ``y``.
  Object (pickled) arrays are refused. ``.npy``: one array, no labels.
- ``.ts``: a UCR/UEA file (aeon's loader), labels from the file when it has them.
- ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.json`` / ``.parquet``: texts from the state's text column
  (``text_column`` overrides it); labels from its label column when present.
- ``.txt``: plain text, one example per line, no labels.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError
from fusionlab.data.labels import label_indices
from fusionlab.data.text.tables import FORMATS, read_table

KEY = "input"
ARRAYS = (".npz", ".npy")


def read_inputs(path: str | Path, state: dict[str, Any], text_column: str | None = None,
                key: str = KEY) -> tuple[Any, np.ndarray | None]:
    """``(raw, labels)`` from ``path``: raw examples for :func:`~fusionlab.data.prepare_inputs` and the
    labels the file holds (None when it has none). ``key`` names the option in errors."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, f"no file at '{path}'")
    suffix = p.suffix.lower()
    modality = state["input_spec"]["modality"]
    if suffix in FORMATS or suffix == ".txt":
        if modality != "text":
            raise ConfigError(key, f"'{path}' is a text file, but the model takes {modality} data "
                              f"(give {' or '.join(ARRAYS + ('.ts',))})")
        return _read_texts(p, suffix, state, text_column, key)
    if modality == "text":
        raise ConfigError(key, f"'{path}' is not a text file; the model takes texts (give .csv, .tsv, .jsonl, "
                          ".parquet or .txt with one text per line)")
    if suffix == ".ts":
        return _read_ts(p, key)
    if suffix in ARRAYS:
        return _read_arrays(p, key)
    raise ConfigError(key, f"cannot tell the format of '{path}' from its extension; expected .npz, .npy, .ts, "
                      f"{', '.join(sorted(FORMATS))} or .txt")


def _read_texts(p: Path, suffix: str, state: dict[str, Any], text_column: str | None,
                key: str) -> tuple[list[Any], np.ndarray | None]:
    if suffix == ".txt":
        return p.read_text(encoding="utf-8").splitlines(), None
    frame = read_table(p, "auto", key)
    column = text_column or state.get("text_column", "text")
    if column not in frame.columns:
        raise ConfigError(key, f"'{column}' is not a column of '{p}'; columns present: "
                          f"{list(map(str, frame.columns))} (choose one with text_column=...)")
    label = state.get("label_column")
    labels = np.asarray(frame[label].tolist()) if label is not None and label in frame.columns else None
    return frame[column].tolist(), labels


def _read_ts(p: Path, key: str) -> tuple[Any, np.ndarray | None]:
    from aeon.datasets import load_from_ts_file

    try:
        x, y = load_from_ts_file(str(p))
    except Exception as e:  # aeon raises several kinds for a malformed file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(key, f"cannot read '{p}' as a .ts file: {reason}") from None
    labels = None if y is None or len(y) == 0 else np.asarray(y).astype(str)
    if isinstance(x, np.ndarray) and x.dtype != object:
        return x.astype(np.float32), labels
    return [np.asarray(a, dtype=np.float32) for a in x], labels


def _read_arrays(p: Path, key: str) -> tuple[Any, np.ndarray | None]:
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise ConfigError(key, f"'{p}' holds object (pickled) arrays, which are not loaded ({e}); save "
                          "plain arrays: x (+ mask), or unequal-length series with np.savez(path, *series)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(key, f"'{p}' is not a readable {p.suffix} file ({type(e).__name__})") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded as f:
        arrays = {k: f[k] for k in f.files}
    labels = arrays.get("y")
    if "x" in arrays:
        x, mask = arrays["x"], arrays.get("mask")
        if labels is not None and len(labels) != len(x):
            raise ConfigError(key, f"'{p}': x has {len(x)} rows but y has {len(labels)}")
        if mask is None:
            return x, labels
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(x), x.shape[-1]):
            raise ConfigError(key, f"'{p}': mask has shape {mask.shape}, expected {(len(x), x.shape[-1])}")
        return [a[..., : int(m.sum())] for a, m in zip(x, mask)], labels
    numbered = sorted((k for k in arrays if k.startswith("arr_") and k[4:].isdigit()), key=lambda k: int(k[4:]))
    if not numbered:
        raise ConfigError(key, f"'{p}' has neither 'x' nor arr_0, arr_1, ... (it has {sorted(arrays)}); save "
                          "np.savez(path, x=..., mask=..., y=...) or np.savez(path, *series)")
    return [arrays[k] for k in numbered], labels


def encode_labels(state: dict[str, Any], labels: Any, where: str = "input") -> np.ndarray:
    """``labels`` (as a file gives them) as label indices of the state's classes; a label the model does
    not know is an error naming its row. Labels are matched as written or as text (``"1"`` and ``1``)."""
    classes = list(state["classes"])
    values = np.asarray(labels)
    as_text = [str(c) for c in classes]
    if values.dtype.kind in "US" or any(isinstance(c, str) for c in classes):
        values = np.asarray([str(v) for v in values.tolist()])
        try:
            return label_indices(values, as_text, where, "input")
        except ConfigError as e:
            raise ConfigError(KEY, str(e).split(": ", 1)[-1]) from None
    try:
        return label_indices(values, classes, where, "input")
    except ConfigError as e:
        raise ConfigError(KEY, str(e).split(": ", 1)[-1]) from None
