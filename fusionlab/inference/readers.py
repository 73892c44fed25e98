"""Read new examples to predict from a file, in the formats the data groups read.

- ``.npz``: ``x`` (equal-length series ``(n, c, L)`` / ``(n, L)``, images ``(n, c, h, w)`` /
  ``(n, h, w)``) with an optional ``mask`` ``(n, L)`` (True on real steps: the rest is cut off), or
  unequal-length series saved as ``np.savez(path, *list_of_arrays)``; optional labels ``y``.
  (``x_test``/``y_test``/``mask_test`` are read when there is no ``x``.) Pickled arrays are refused.
- ``.npy``: one array ``x``.
- ``.ts``: a UCR/UEA file (aeon's reader); class labels when the file has them.
- ``.csv``/``.tsv``/``.jsonl``/``.json``/``.parquet``: texts in the checkpoint's text column
  (``text_column`` overrides), labels in its label column when present.
- ``.txt``: plain text, one example per line.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError

TABLES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
SUFFIXES = [".npz", ".npy", ".ts", ".txt", *TABLES]


@dataclass
class Examples:
    """Raw examples read from a file, their labels (or None) and where they came from."""

    x: Any
    labels: np.ndarray | None
    source: str
    label_source: str | None = None


def read_examples(path: str | Path, state: dict[str, Any], text_column: str | None = None,
                  label_column: str | None = None, key: str = "input") -> Examples:
    """The examples in ``path`` for a model whose data state is ``state``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, f"no file at '{path}'")
    suffix = p.suffix.lower()
    modality = (state.get("input_spec") or {}).get("modality")
    if suffix in TABLES or suffix == ".txt":
        if modality != "text":
            raise ConfigError(key, f"'{path}' holds texts, but the model reads {modality} data "
                              "(give an .npz, .npy or .ts file)")
        return _read_texts(p, TABLES.get(suffix, "txt"), state, text_column, label_column, key)
    if suffix in (".npz", ".npy", ".ts") and modality == "text":
        raise ConfigError(key, f"'{path}' holds arrays, but the model reads text (give a CSV/TSV/JSONL/Parquet "
                          "or a .txt file with one text per line)")
    if suffix == ".npz":
        return _read_npz(p, key)
    if suffix == ".npy":
        return _read_npy(p, key)
    if suffix == ".ts":
        return _read_ts(p, key)
    raise ConfigError(key, f"cannot tell the format of '{path}' from its extension; expected one of {SUFFIXES}")


def _read_npz(p: Path, key: str) -> Examples:
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        raise ConfigError(key, f"'{p}' holds object (pickled) arrays, which are not loaded ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(key, f"'{p}' is not a readable .npz file ({type(e).__name__})") from None
    numbered = sorted((k for k in arrays if re.fullmatch(r"arr_\d+", k)), key=lambda k: int(k[4:]))
    suffix = "" if "x" in arrays else "_test" if "x_test" in arrays else None
    if suffix is None:
        if not numbered:
            raise ConfigError(key, f"'{p}' has no array 'x' (it has {sorted(arrays)}); expected x [, mask, y] or "
                              "unequal-length series saved with np.savez(path, *arrays)")
        return Examples([arrays[k] for k in numbered], None, f"'{p}'")
    x = arrays[f"x{suffix}"]
    if x.dtype.kind not in "biuf":
        raise ConfigError(key, f"'{p}': x has dtype {x.dtype}, expected numbers")
    mask = arrays.get(f"mask{suffix}")
    labels = arrays.get(f"y{suffix}")
    if labels is not None and len(labels) != len(x):
        raise ConfigError(key, f"'{p}': x has {len(x)} rows but y has {len(labels)}")
    if mask is not None:
        if mask.shape != (x.shape[0], x.shape[-1]):
            raise ConfigError(key, f"'{p}': mask has shape {mask.shape}, expected {(x.shape[0], x.shape[-1])}")
        mask = mask.astype(bool)
        x = [row[..., : int(m.sum())] for row, m in zip(x, mask)]  # real steps only (padding at the end)
    return Examples(x, labels, f"'{p}'", "y" if labels is not None else None)


def _read_npy(p: Path, key: str) -> Examples:
    try:
        x = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise ConfigError(key, f"'{p}' holds an object (pickled) array, which is not loaded ({e})") from None
    return Examples(x, None, f"'{p}'")


def _read_ts(p: Path, key: str) -> Examples:
    from aeon.datasets import load_from_ts_file

    try:
        x, y = load_from_ts_file(str(p))
    except Exception as e:
        raise ConfigError(key, f"'{p}' is not a readable .ts file ({str(e).splitlines()[0][:160]})") from None
    labels = None if y is None or len(y) == 0 else np.asarray(y).astype(str)
    return Examples(x, labels, f"'{p}'", "the file's class labels" if labels is not None else None)


def _read_texts(p: Path, fmt: str, state: dict[str, Any], text_column: str | None, label_column: str | None,
                key: str) -> Examples:
    if fmt == "txt":
        lines = p.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():  # trailing blank lines are not examples
            lines.pop()
        return Examples(lines, None, f"'{p}'")
    from fusionlab.data.text import read_table

    frame = read_table(str(p), fmt, key)
    text = text_column or state.get("text_column") or "text"
    if text not in frame.columns:
        raise ConfigError("text_column", f"'{text}' is not a column of '{p}'; columns present: "
                          f"{list(map(str, frame.columns))} (set text_column=<name>)")
    label = label_column or state.get("label_column") or "label"
    labels = None
    if label in frame.columns:
        labels = np.asarray([str(v) if v is not None else "" for v in frame[label].tolist()])
    elif label_column is not None:
        raise ConfigError("label_column", f"'{label}' is not a column of '{p}'; columns present: "
                          f"{list(map(str, frame.columns))}")
    return Examples(frame[text].tolist(), labels, f"'{p}'", f"column '{label}'" if labels is not None else None)
