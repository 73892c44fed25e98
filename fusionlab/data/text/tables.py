"""Reading tables of texts: CSV/TSV/JSONL/Parquet files into a pandas DataFrame, and their columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusionlab.config.schema import ConfigError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | Path, fmt: str = "auto", key: str = "data.path") -> str:
    """``fmt``, or for ``auto`` the format of ``path`` by its extension."""
    if fmt != "auto":
        return fmt
    found = FORMATS.get(Path(path).suffix.lower(), "")
    if not found:
        raise ConfigError(key, f"cannot tell the format of '{path}' from its extension; expected one of "
                          f"{sorted(FORMATS)} or set data.format")
    return found


def read_table(path: str | Path, fmt: str, key: str) -> Any:
    """A pandas DataFrame from a CSV/TSV/JSONL/Parquet file; a ConfigError naming ``key`` when it
    is missing or unreadable."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, f"no file at '{path}'")
    fmt = table_format(p, fmt, key)
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(p, sep="," if fmt == "csv" else "\t")
        if fmt == "jsonl":
            return pd.read_json(p, lines=p.suffix.lower() != ".json" or _is_json_lines(p))
        return pd.read_parquet(p)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(key, f"cannot read '{path}' as {fmt}: {reason}") from None


def _is_json_lines(path: Path) -> bool:
    with path.open() as f:
        return not f.read(1).lstrip().startswith("[")


def column(frame: Any, name: str, where: str, key: str) -> list[Any]:
    """The values of column ``name``; a ConfigError listing the columns present when it is missing."""
    if name not in frame.columns:
        raise ConfigError(key, f"'{name}' is not a column of {where}; columns present: {list(map(str, frame.columns))}")
    return frame[name].tolist()


def file_id(path: Path) -> dict[str, Any]:
    """What identifies a file's content for a cache key: its absolute path, size and modification time."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
