"""Bad user arrays are refused naming what is wrong: row counts that disagree, non-finite values by
the row of the user's file."""

from __future__ import annotations

import numpy as np
import pytest

from fusionlab.config import ConfigError
from fusionlab.data import NPZDataModule


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"x": np.zeros((50, 8)), "y": np.arange(40) % 2}, "x has 50 rows but y has 40"),
        ({"x": np.zeros((40, 8)), "y": np.arange(40) % 2, "mask": np.ones((30, 8), bool)},
         "x has 40 rows but mask has 30"),
        ({"x": np.zeros((40, 8)), "y": np.arange(40) % 2, "x_test": np.zeros((10, 8)), "y_test": np.arange(9) % 2},
         "x_test has 10 rows but y_test has 9"),
        ({"x": np.zeros((40, 8)), "y": np.arange(40) % 2, "x_test": np.zeros((10, 8)), "y_test": np.arange(10) % 2,
          "mask_test": np.ones((12, 8), bool)}, "x_test has 10 rows but mask_test has 12"),
    ],
)
def test_npz_arrays_of_different_row_counts_are_refused_naming_both(tmp_path, arrays, words: str) -> None:
    path = tmp_path / "rows.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=f"data.path: '{path}': {words}"):
        NPZDataModule(str(path)).setup()


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_a_non_finite_value_is_reported_by_its_row_in_the_file(tmp_path, bad: str) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 1, 9)), np.arange(40) % 2
    x[39, 0, 4] = float(bad)  # the file's last row: after the hold-out, no split has a row 39
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(ConfigError, match=r"non-finite values \(NaN/inf\) in row 39 of x"):
        NPZDataModule(str(tmp_path / "bad.npz"), test_size=0.25).setup()


def test_class_names_are_the_labels_in_label_order(tmp_path) -> None:
    path = tmp_path / "names.npz"
    rng = np.random.default_rng(0)
    y_test = np.array(["mole", "zebra", "ant", "ant"])
    np.savez(path, x=rng.normal(size=(30, 6)), y=np.array(["zebra", "ant", "mole"] * 10),
             x_test=rng.normal(size=(4, 6)),
             y_test=y_test)
    dm = NPZDataModule(str(path), val_size=0)
    dm.setup()
    assert dm.class_names == ["ant", "mole", "zebra"]
    assert [dm.class_names[i] for i in dm.splits["test"][1].tolist()] == y_test.tolist()
