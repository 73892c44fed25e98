"""Checksummed, atomically written array caches for datasets (``.npz`` files).

Usage in a datamodule::

    arrays = load_cached(path)          # None: missing, unreadable or corrupted (a warning is logged)
    if arrays is None:
        arrays = build_the_arrays()     # generate / download / parse
        save_cached(path, arrays)

The file is a plain ``.npz`` holding the arrays plus one extra entry, ``__sha256__``: the SHA-256
of every array's name, dtype, shape and bytes (in name order). A truncated file, a flipped bit or
an old cache without a checksum fails the check, is reported with a warning and is rebuilt: a
cache is never used silently when it does not match what was written. Writes go to a temporary
file in the same folder and are renamed into place, so concurrent jobs never read half a file.
Arrays must not be object arrays (files are loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from fusionlab.io import atomic_write

log = logging.getLogger("fusionlab")

CHECKSUM_KEY = "__sha256__"


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and contents, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_cached(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and their checksum to ``path`` (an ``.npz``) atomically."""
    path = Path(path)
    if CHECKSUM_KEY in arrays:
        raise ValueError(f"'{CHECKSUM_KEY}' is reserved for the checksum")
    with atomic_write(path) as f:
        np.savez(f, **arrays, **{CHECKSUM_KEY: np.array(checksum(arrays))})


def load_cached(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays saved by :func:`save_cached` at ``path``; ``None`` when the file is missing, or
    (with a warning) unreadable, truncated, without a checksum or not matching it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        log.warning("cache %s is unreadable (%s: %s); rebuilding it", path, type(e).__name__, e)
        return None
    stored = arrays.pop(CHECKSUM_KEY, None)
    if stored is None:
        log.warning("cache %s has no checksum (written by an older version); rebuilding it", path)
        return None
    if str(stored) != checksum(arrays):
        log.warning("cache %s does not match its checksum (corrupted); rebuilding it", path)
        return None
    return arrays
