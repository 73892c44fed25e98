"""MNIST-1D datamodule: official split, cache keyed by arguments, statistics from training data only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data import MNIST1DDataModule
from fusionlab.data.preprocessing import Standardize


@pytest.fixture
def dm(data_dir: Path) -> MNIST1DDataModule:
    m = MNIST1DDataModule(data_dir=str(data_dir), val_size=500, batch_size=64)
    m.setup()
    return m


def test_official_split_and_validation_carve_out(dm: MNIST1DDataModule) -> None:
    assert dm.input_shape == (1, 40) and dm.num_classes == 10
    sizes = {k: len(v[1]) for k, v in dm.splits.items()}
    assert sizes == {"train": 3500, "val": 500, "test": 1000}
    # the official generator with its official arguments
    from mnist1d.data import get_dataset_args, make_dataset

    official = make_dataset(get_dataset_args())
    raw = np.load(dm.cache_path())
    np.testing.assert_allclose(raw["x_test"], official["x_test"].astype(np.float32))
    np.testing.assert_array_equal(raw["y_train"], official["y"])


def test_cache_is_keyed_by_generation_arguments(data_dir: Path) -> None:
    a = MNIST1DDataModule(data_dir=str(data_dir))
    b = MNIST1DDataModule(data_dir=str(data_dir), generation={"shuffle_seq": True})
    assert a.cache_path() != b.cache_path()
    b.setup()
    assert b.cache_path().is_file()
    a.setup()
    assert not torch.equal(a.splits["test"][0], b.splits["test"][0])
    with pytest.raises(ConfigError, match="data.generation.no_such_arg"):
        MNIST1DDataModule(data_dir=str(data_dir), generation={"no_such_arg": 1}).cache_path()


def test_standardisation_statistics_come_from_training_part_only(data_dir: Path, monkeypatch) -> None:
    base = MNIST1DDataModule(data_dir=str(data_dir))
    arrays = base.load_arrays()
    poisoned = dict(arrays)
    poisoned["x_test"] = arrays["x_test"] * 100 + 50  # a test set with wildly different statistics
    monkeypatch.setattr(MNIST1DDataModule, "load_arrays", lambda self: poisoned)
    dm = MNIST1DDataModule(data_dir=str(data_dir), preprocessing=Standardize("global"))
    dm.setup()
    x_train = dm.splits["train"][0]
    assert abs(x_train.mean().item()) < 1e-4 and x_train.std().item() == pytest.approx(1.0, abs=1e-3)
    raw_train = arrays["x_train"][dm.indices["train"]]
    assert dm.stats["mean"][0] == pytest.approx(float(raw_train.mean()), abs=1e-5)
    assert dm.stats["std"][0] == pytest.approx(float(raw_train.std()), rel=1e-4)
    assert dm.splits["test"][0].mean().item() > 40  # the test set was not used to fit the statistics


def test_batches_are_sliced_in_memory_and_seeded(data_dir: Path) -> None:
    def first_labels(seed: int) -> torch.Tensor:
        m = MNIST1DDataModule(data_dir=str(data_dir), batch_size=32, seed=seed)
        m.setup()
        x, y = next(iter(m.train_dataloader()))
        assert x.shape == (32, 1, 40) and x.dtype == torch.float32 and y.dtype == torch.long
        return y

    assert torch.equal(first_labels(0), first_labels(0))
    assert not torch.equal(first_labels(0), first_labels(1))


def test_validation_and_test_batches_are_fixed_and_complete(dm: MNIST1DDataModule) -> None:
    ys = torch.cat([y for _, y in dm.test_dataloader()])
    torch.testing.assert_close(ys, dm.splits["test"][1])


def test_validation_larger_than_training_split_is_refused(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="data.val_size"):
        MNIST1DDataModule(data_dir=str(data_dir), val_size=4000).setup()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda a: a["x_train"].__setitem__((7, 3), np.nan), "train split has non-finite values (NaN/inf) in row 7"),
        (lambda a: a["y_test"].__setitem__(0, -1), "test label -1 (row 0) does not occur in the training split"),
    ],
)
def test_bad_arrays_are_refused_naming_split_and_row(data_dir: Path, monkeypatch, change, words: str) -> None:
    arrays = {k: v.copy() for k, v in MNIST1DDataModule(data_dir=str(data_dir)).load_arrays().items()}
    change(arrays)
    monkeypatch.setattr(MNIST1DDataModule, "load_arrays", lambda self: arrays)
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        MNIST1DDataModule(data_dir=str(data_dir)).setup()
