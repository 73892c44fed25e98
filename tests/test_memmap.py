"""data=npy: a folder of .npy arrays read memory-mapped gives the same splits, statistics, batches and
metrics as data=npz on the same arrays held in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data import MNIST1DDataModule
from fusionlab.data.memmap import MemmapRows
from fusionlab.training.run import build_datamodule, train
from tests.conftest import read_metrics


@pytest.fixture
def arrays(data_dir: Path) -> dict[str, np.ndarray]:
    """A slice of MNIST-1D (real series), (N, L) as a user would save it."""
    a = MNIST1DDataModule(data_dir=str(data_dir)).load_arrays()
    return {"x": a["x_train"][:800], "y": a["y_train"][:800], "x_test": a["x_test"][:200], "y_test": a["y_test"][:200]}


def save_both(arrays: dict[str, np.ndarray], tmp_path: Path, keys=("x", "y", "x_test", "y_test")) -> tuple[Path, Path]:
    npz, folder = tmp_path / "data.npz", tmp_path / "npy"
    folder.mkdir()
    np.savez(npz, **{k: arrays[k] for k in keys})
    for k in keys:
        np.save(folder / f"{k}.npy", arrays[k])
    return npz, folder


@pytest.mark.parametrize("fixed_test", [True, False])
@pytest.mark.parametrize("scaling", ["standardize", "minmax"])
def test_memmap_batches_equal_the_in_memory_ones(make_cfg, arrays, tmp_path: Path, fixed_test: bool,
                                                 scaling: str) -> None:
    keys = ("x", "y", "x_test", "y_test") if fixed_test else ("x", "y")
    npz, folder = save_both(arrays, tmp_path, keys)
    dm_mem = build_datamodule(make_cfg(["data=npz", f"data.path={npz}", f"preprocessing={scaling}"]).data)
    cfg = make_cfg(["data=npy", f"data.path={folder}", f"preprocessing={scaling}", "data.chunk_rows=97"])
    dm_map = build_datamodule(cfg.data)
    assert isinstance(dm_map.splits["train"][0], MemmapRows)  # not read into memory
    assert dm_map.input_spec == dm_mem.input_spec and dm_map.classes == dm_mem.classes
    assert {k: len(v[1]) for k, v in dm_map.splits.items()} == {k: len(v[1]) for k, v in dm_mem.splits.items()}
    for key, value in dm_mem.stats.items():  # one streaming pass in chunks of 97 rows = the whole-array fit
        np.testing.assert_allclose(dm_map.stats[key], value, rtol=1e-9) if key != "per" else None
    for split in ("train", "val", "test"):
        loader_mem = getattr(dm_mem, f"{split}_dataloader")()
        loader_map = getattr(dm_map, f"{split}_dataloader")()
        for (xa, ya), (xb, yb) in zip(loader_mem, loader_map, strict=True):
            torch.testing.assert_close(xb, xa, rtol=1e-6, atol=1e-6)
            assert torch.equal(ya, yb)


def test_memmap_run_gives_the_in_memory_metrics(make_cfg, arrays, tmp_path: Path) -> None:
    npz, folder = save_both(arrays, tmp_path)
    runs = {}
    for name, data in (("mem", ["data=npz", f"data.path={npz}"]), ("map", ["data=npy", f"data.path={folder}"])):
        out = tmp_path / name
        train(make_cfg(["debug=limit", "model=cnn", *data], out=out))
        runs[name] = read_metrics(out)["metrics"]
    for key in ("val/acc", "test/acc"):
        assert runs["map"][key] == pytest.approx(runs["mem"][key], abs=1e-6)
    assert runs["map"]["test/loss"] == pytest.approx(runs["mem"]["test/loss"], rel=1e-4)


def test_a_nan_row_is_named(make_cfg, arrays, tmp_path: Path) -> None:
    arrays["x"] = arrays["x"].copy()
    arrays["x"][123, 7] = np.nan
    _, folder = save_both(arrays, tmp_path)
    with pytest.raises(ConfigError, match="x.npy' row 123 holds NaN"):
        build_datamodule(make_cfg(["data=npy", f"data.path={folder}"]).data)
