"""Writing a job's results: atomic JSON, metrics as floats, the data description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusionlab.io import atomic_write


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename): readers never see half a file."""
    with atomic_write(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=float)


def as_floats(metrics: dict[str, Any]) -> dict[str, float]:
    """Lightning's metric dict (tensors or numbers) as sorted plain floats."""
    return {k: float(v) for k, v in sorted(metrics.items())}


def describe_data(dm: Any, out: Path) -> dict[str, Any]:
    """``dm.describe()`` for ``metrics.json``; a text vocabulary (index → token, often tens of
    thousands of entries) goes to its own ``vocab.json`` so sweeps' metrics stay small."""
    data = dm.describe()
    vocabulary = data.pop("vocabulary", None)
    if vocabulary is not None:
        write_json(out / "vocab.json", {"tokens": vocabulary})
        data["vocabulary"] = {"file": "vocab.json", "size": len(vocabulary)}
    return data
