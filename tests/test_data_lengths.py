"""The training split alone sizes the model; longer test series are cut (logged) or refused (data.too_long)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hydra.utils import instantiate

from fusionlab.config import ConfigError
from fusionlab.data import NPZDataModule
from fusionlab.data.preprocessing import NoScaling
from tests.test_data_series import Arrays


def _ragged(lengths: list[int], channels: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(5.0, 3.0, (channels, n)).astype(np.float32) for n in lengths]


def _arrays(test_lengths: list[int]) -> dict:
    train = _ragged([4, 7, 10, 6] * 5)
    test = _ragged(test_lengths, seed=1)
    return {"x_train": train, "y_train": np.arange(20) % 2, "x_test": test, "y_test": np.arange(len(test)) % 2}


def test_a_longer_test_series_never_sizes_the_model_and_is_cut_with_a_warning(caplog) -> None:
    arrays = _arrays([5, 15, 3, 12])
    dm = Arrays(arrays, val_size=0, preprocessing=NoScaling())
    with caplog.at_level(logging.WARNING, logger="fusionlab"):
        dm.setup()
    assert dm.input_spec.shape == (2, 10)  # the longest training series, not the longest test series
    x, _, mask = dm.splits["test"]
    assert x.shape == (4, 2, 10) and mask.sum(1).tolist() == [5, 10, 3, 10]
    np.testing.assert_allclose(x[1].numpy(), arrays["x_test"][1][:, :10])  # its first 10 steps
    assert "2 series are longer than the 10 steps" in caplog.text and "first at row 1" in caplog.text
    assert dm.describe()["too_long"] == "cut"


def test_too_long_refuse_names_the_row_and_both_lengths() -> None:
    dm = Arrays(_arrays([5, 3, 15]), val_size=0, too_long="refuse")
    with pytest.raises(ConfigError, match=r"test split: row 2 has 15 steps, longer than the 10 steps"):
        dm.setup()


def test_ucr_unequal_lengths_are_sized_by_the_training_split_with_the_yaml_defaults(make_cfg) -> None:
    cfg = make_cfg(["data=ucr", "data.name=JapaneseVowels"])
    assert cfg.data.too_long == "cut"
    dm = instantiate(cfg.data)
    dm.setup()
    arrays = dm.load_arrays()
    train_longest = int(arrays["mask_train"].sum(1).max())
    assert int(arrays["mask_test"].sum(1).max()) > train_longest  # the test split has longer series
    assert dm.input_spec.shape == (12, train_longest)
    assert dm.splits["test"][0].shape[-1] == train_longest


def test_equal_length_npz_with_longer_test_series_is_cut(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "longer.npz"
    np.savez(path, x=rng.normal(size=(20, 30)), y=np.arange(20) % 2, x_test=rng.normal(size=(6, 40)),
             y_test=np.arange(6) % 2)
    dm = NPZDataModule(str(path), val_size=0)
    dm.setup()
    assert dm.input_spec.shape == (1, 30) and not dm.input_spec.masked
    assert dm.splits["test"][0].shape == (6, 1, 30)
    with pytest.raises(ConfigError, match="row 0 has 40 steps, longer than the 30"):
        NPZDataModule(str(path), val_size=0, too_long="refuse").setup()
