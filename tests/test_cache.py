"""Dataset caches carry a checksum: corrupted or truncated files are detected and rebuilt."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fusionlab.data import MNIST1DDataModule
from fusionlab.data.cache import CHECKSUM_KEY, checksum, load_cached, save_cached


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(20, 1, 8)).astype(np.float32), "y": np.arange(20, dtype=np.int64)}


def test_round_trip_keeps_arrays_and_leaves_no_temp_files(tmp_path: Path, arrays) -> None:
    path = tmp_path / "sub" / "c.npz"
    save_cached(path, arrays)
    loaded = load_cached(path)
    assert loaded is not None and set(loaded) == {"x", "y"}
    for k in arrays:
        np.testing.assert_array_equal(loaded[k], arrays[k])
        assert loaded[k].dtype == arrays[k].dtype
    assert [p.name for p in path.parent.iterdir()] == ["c.npz"]
    with np.load(path) as f:
        assert str(f[CHECKSUM_KEY]) == checksum(arrays)


def test_missing_file_is_none_without_warning(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="fusionlab"):
        assert load_cached(tmp_path / "none.npz") is None
    assert not caplog.records


def flip_byte_in_data(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Change one byte inside the stored ``x`` array (the zip stays readable)."""
    raw = bytearray(path.read_bytes())
    needle = arrays["x"].tobytes()[:16]
    at = raw.find(needle)
    assert at > 0
    raw[at + 3] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "no_checksum"])
def test_damaged_cache_is_refused_with_a_warning(tmp_path: Path, arrays, caplog, damage: str) -> None:
    path = tmp_path / "c.npz"
    save_cached(path, arrays)
    if damage == "flip":
        flip_byte_in_data(path, arrays)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:
        np.savez(path, **arrays)  # an old-style cache without a checksum
    with caplog.at_level(logging.WARNING, logger="fusionlab"):
        assert load_cached(path) is None
    assert any("rebuilding" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_reserved_name_is_refused(tmp_path: Path, arrays) -> None:
    with pytest.raises(ValueError, match=CHECKSUM_KEY):
        save_cached(tmp_path / "c.npz", {**arrays, CHECKSUM_KEY: np.zeros(1)})


def test_corrupted_mnist1d_cache_is_detected_and_rebuilt(tmp_path: Path, caplog) -> None:
    def make() -> MNIST1DDataModule:
        return MNIST1DDataModule(data_dir=str(tmp_path), generation={"num_samples": 300}, val_size=20)

    dm = make()
    original = dm.load_arrays()
    path = dm.cache_path()
    assert path.is_file() and load_cached(path) is not None
    flip_byte_in_data(path, {"x": original["x_test"]})
    assert load_cached(path) is None  # the damage is real and detected

    with caplog.at_level(logging.WARNING, logger="fusionlab"):
        rebuilt = make().load_arrays()
    assert any("rebuilding it" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    for k in original:
        np.testing.assert_array_equal(rebuilt[k], original[k])
    assert load_cached(path) is not None  # the file was rewritten, good again
