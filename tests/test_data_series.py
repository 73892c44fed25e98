"""Series data: padding and masks, label mapping, stratified validation, NaN handling, preprocessing
fitted on training data only, UCR/UEA via aeon, user .npz files, and the CLI's data errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data import ArrayDataModule, NPZDataModule, UCRDataModule
from fusionlab.data.preprocessing import MinMax, NoScaling, Standardize
from fusionlab.training.run import train
from tests.conftest import read_metrics, run_cli_shared


class Arrays(ArrayDataModule):
    """Serves fixed arrays (unit tests only)."""

    def __init__(self, arrays: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrays = arrays

    def load_arrays(self) -> dict[str, Any]:
        return self.arrays


def _series(n: int, c: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(3.0, 2.0, (n, c, length)).astype(np.float32)


def _labels(n: int, k: int) -> np.ndarray:
    return np.arange(n) % k


def _ragged(n: int, c: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(5.0, 3.0, (c, int(rng.integers(3, 12)))) for _ in range(n)]


# -- padding and masks --------------------------------------------------------------------------
def test_unequal_lengths_are_zero_padded_with_a_mask_and_stats_ignore_padding() -> None:
    train, test = _ragged(40, 2, 0), _ragged(10, 2, 1)
    dm = Arrays({"x_train": train, "y_train": _labels(40, 2), "x_test": test, "y_test": _labels(10, 2)},
                val_size=0, batch_size=8)
    dm.setup()
    length = max(a.shape[1] for a in train)  # the training split alone sizes the model
    spec = dm.input_spec
    assert spec.modality == "series" and spec.masked and spec.shape == (2, length)
    x, y, mask = dm.splits["train"]
    assert mask.dtype == torch.bool and mask.shape == (40, length)
    assert mask.sum(1).tolist() == [a.shape[1] for a in train]
    assert torch.all(x.masked_select(~mask[:, None, :].expand_as(x)) == 0)  # padding stays exactly 0
    real = np.concatenate([a.ravel() for a in train])
    assert dm.stats["mean"][0] == pytest.approx(real.mean(), rel=1e-6)
    assert dm.stats["std"][0] == pytest.approx(real.std(), rel=1e-6)
    first = (train[3] - real.mean()) / real.std()
    np.testing.assert_allclose(x[3, :, : train[3].shape[1]].numpy(), first, rtol=1e-5, atol=1e-5)
    xb, yb, mb = next(iter(dm.train_dataloader()))  # batches carry the mask
    assert xb.shape == (8, 2, length) and mb.shape == (8, length)
    assert dm.describe()["train_lengths"] == [min(a.shape[1] for a in train), max(a.shape[1] for a in train)]


@pytest.mark.parametrize("make", [lambda: MinMax(-1.0, 1.0, "channel"), lambda: Standardize("channel"), NoScaling])
def test_padding_stays_zero_and_out_of_the_statistics_for_every_preprocessing(make) -> None:
    train = _ragged(30, 2, 0)
    dm = Arrays({"x_train": train, "y_train": _labels(30, 2), "x_test": _ragged(6, 2, 1), "y_test": _labels(6, 2)},
                val_size=0, preprocessing=make())
    dm.setup()
    for x, _, mask in dm.splits.values():
        assert torch.all(x.masked_select(~mask[:, None, :].expand_as(x)) == 0)
    if isinstance(dm.preprocessing, MinMax):
        real = np.concatenate([a for a in train], axis=1)  # (2, total real steps)
        assert dm.stats["min"] == pytest.approx(real.min(axis=1).tolist())
        assert dm.stats["max"] == pytest.approx(real.max(axis=1).tolist())


def test_equal_length_lists_need_no_mask() -> None:
    xs = [a for a in _series(20, 1, 7)]
    dm = Arrays({"x_train": xs, "y_train": _labels(20, 2), "x_test": xs, "y_test": _labels(20, 2)}, val_size=0)
    dm.setup()
    assert not dm.input_spec.masked and len(next(iter(dm.train_dataloader()))) == 2


# -- labels ------------------------------------------------------------------------------------------
def test_any_labels_map_to_sorted_indices_saved_as_classes() -> None:
    y = np.array(["10", "2", "1"] * 10)
    dm = Arrays({"x_train": _series(30, 1, 5), "y_train": y, "x_test": _series(3, 1, 5), "y_test": y[:3]},
                val_size=0)
    dm.setup()
    assert dm.classes == ["1", "2", "10"] and dm.num_classes == 3  # numbers sort as numbers
    assert dm.splits["test"][1].tolist() == [2, 1, 0]
    assert dm.describe()["classes"] == ["1", "2", "10"]
    ints = Arrays({"x_train": _series(30, 1, 5), "y_train": np.array([7, -3, 40] * 10),
                   "x_test": _series(2, 1, 5), "y_test": np.array([40, -3])}, val_size=0)
    ints.setup()
    assert ints.classes == [-3, 7, 40] and ints.splits["test"][1].tolist() == [2, 0]


@pytest.mark.parametrize(
    ("y_train", "y_test", "words"),
    [
        (np.array(["a", "b"] * 10), np.array(["a", "c"]), r"test label 'c' \(row 1\) does not occur in the training"),
        (np.array(["a"] * 20), np.array(["a", "a"]), "every training label is 'a'; classification needs at least 2"),
    ],
)
def test_bad_labels_are_refused_naming_the_data(y_train, y_test, words: str) -> None:
    dm = Arrays({"x_train": _series(20, 1, 5), "y_train": y_train, "x_test": _series(2, 1, 5), "y_test": y_test})
    with pytest.raises(ConfigError, match=r"Arrays: " + words):
        dm.setup()


# -- validation carve-out ---------------------------------------------------------------------------
@pytest.mark.parametrize("val_size", [25, 0.25])
def test_validation_is_stratified_count_or_fraction(val_size: float) -> None:
    y = np.array([0] * 60 + [1] * 40)
    dm = Arrays({"x_train": _series(100, 1, 5), "y_train": y, "x_test": _series(4, 1, 5), "y_test": y[::25]},
                val_size=val_size)
    dm.setup()
    assert np.bincount(dm.splits["val"][1].numpy()).tolist() == [15, 10]
    assert np.bincount(dm.splits["train"][1].numpy()).tolist() == [45, 30]
    assert set(dm.indices["train"]).isdisjoint(dm.indices["val"])
    again = Arrays(dm.arrays, val_size=val_size, seed=5)  # the run seed does not move the carve-out
    again.setup()
    np.testing.assert_array_equal(again.indices["val"], dm.indices["val"])


def test_no_validation_set_with_val_size_zero() -> None:
    dm = Arrays({"x_train": _series(10, 1, 5), "y_train": _labels(10, 2), "x_test": _series(4, 1, 5),
                 "y_test": _labels(4, 2)}, val_size=0)
    dm.setup()
    assert not dm.has_val and "val" not in dm.splits and dm.val_dataloader() == []
    assert len(dm.splits["train"][1]) == 10


@pytest.mark.parametrize(
    ("y", "val_size", "words"),
    [
        (np.array([0] * 9 + [1]), 2, "class 1 has 1 training example"),
        (_labels(12, 4), 2, "cannot hold all 4 classes"),
        (_labels(12, 2), 1.5, "must be whole"),
    ],
)
def test_impossible_stratification_is_a_clear_error(y: np.ndarray, val_size: float, words: str) -> None:
    dm = Arrays({"x_train": _series(len(y), 1, 5), "y_train": y, "x_test": _series(2, 1, 5), "y_test": y[:2]},
                val_size=val_size)
    with pytest.raises(ConfigError, match=f"data.val_size: .*{words}"):
        dm.setup()


# -- NaN ----------------------------------------------------------------------------------------------
def _with_nan() -> dict[str, Any]:
    x = np.arange(2 * 3 * 6, dtype=np.float32).reshape(2 * 3, 1, 6)
    x = np.concatenate([x, x + 100])  # 12 rows
    x[4, 0, 2] = np.nan  # interior
    x[5, 0, 0] = np.nan  # first step
    return {"x_train": x, "y_train": _labels(12, 2), "x_test": x[:2].copy(), "y_test": _labels(2, 2)}


def test_nan_is_an_error_naming_dataset_split_and_row() -> None:
    with pytest.raises(ConfigError, match=r"Arrays: train split has non-finite values \(NaN/inf\) in row 4; "
                                          "set data.impute"):
        Arrays(_with_nan(), val_size=0).setup()


@pytest.mark.parametrize("how", ["zero", "mean", "linear"])
def test_nan_is_filled_when_asked(how: str) -> None:
    arrays = _with_nan()
    raw = arrays["x_train"].copy()
    dm = Arrays(arrays, val_size=0, impute=how, preprocessing=NoScaling())
    dm.setup()
    x = dm.splits["train"][0].numpy()
    assert np.isfinite(x).all()
    finite = raw[np.isfinite(raw)]
    expected = {
        "zero": (0.0, 0.0),
        "mean": (finite.mean(), finite.mean()),
        "linear": ((raw[4, 0, 1] + raw[4, 0, 3]) / 2, raw[5, 0, 1]),  # held constant before the first value
    }[how]
    assert x[4, 0, 2] == pytest.approx(expected[0], rel=1e-5)
    assert x[5, 0, 0] == pytest.approx(expected[1], rel=1e-5)
    np.testing.assert_array_equal(x[np.isfinite(raw)], raw[np.isfinite(raw)])


# -- preprocessing --------------------------------------------------------------------------------------
def _split_arrays() -> dict[str, Any]:
    x = _series(60, 3, 10)
    x[:, 1] *= 10  # channels on different scales
    return {"x_train": x, "y_train": _labels(60, 3), "x_test": _series(9, 3, 10, seed=1), "y_test": _labels(9, 3)}


@pytest.mark.parametrize(
    "make", [lambda: Standardize("global"), lambda: Standardize("channel"), lambda: MinMax(0.0, 1.0, "channel"),
             lambda: MinMax(-1.0, 1.0)],
)
def test_statistics_come_from_the_training_part_only(make) -> None:
    arrays = _split_arrays()
    dm = Arrays(arrays, val_size=15, preprocessing=make())
    dm.setup()
    poisoned = dict(arrays, x_test=arrays["x_test"] * 50 + 7)
    x_train = poisoned["x_train"].copy()
    x_train[dm.indices["val"]] = x_train[dm.indices["val"]] * 50 + 7  # validation rows changed as well
    poisoned["x_train"] = x_train
    other = Arrays(poisoned, val_size=15, preprocessing=make())
    other.setup()
    assert other.stats == dm.stats
    torch.testing.assert_close(other.splits["train"][0], dm.splits["train"][0])


def test_standardize_per_channel_and_minmax_ranges() -> None:
    arrays = _split_arrays()
    per = Arrays(arrays, val_size=0, preprocessing=Standardize("channel"))
    per.setup()
    x = per.splits["train"][0]
    torch.testing.assert_close(x.mean(dim=(0, 2)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert len(per.stats["mean"]) == 3
    for low, high in ((0.0, 1.0), (-1.0, 1.0)):
        mm = Arrays(arrays, val_size=0, preprocessing=MinMax(low, high, "channel"))
        mm.setup()
        x = mm.splits["train"][0]
        torch.testing.assert_close(x.amin(dim=(0, 2)), torch.full((3,), low))
        torch.testing.assert_close(x.amax(dim=(0, 2)), torch.full((3,), high))
    none = Arrays(arrays, val_size=0, preprocessing=NoScaling())
    none.setup()
    np.testing.assert_array_equal(none.splits["test"][0].numpy(), arrays["x_test"])
    with pytest.raises(ConfigError, match="high"):
        MinMax(1.0, 0.0)


def test_preprocessing_is_a_config_group(make_cfg) -> None:
    cfg = make_cfg(["preprocessing=minmax", "data.preprocessing.low=-1"])
    assert cfg.data.preprocessing._target_.endswith("MinMax") and cfg.data.preprocessing.low == -1
    assert make_cfg([]).data.preprocessing.per == "global"  # MNIST-1D keeps global standardisation


# -- UCR/UEA --------------------------------------------------------------------------------------------
def test_ucr_gunpoint_univariate(data_dir: Path) -> None:
    dm = UCRDataModule("GunPoint", data_dir=str(data_dir))
    dm.setup()
    assert dm.input_spec.shape == (1, 150) and not dm.input_spec.masked
    assert {k: len(v[1]) for k, v in dm.splits.items()} == {"train": 40, "val": 10, "test": 150}
    assert dm.classes == ["1", "2"] and dm.describe()["name"] == "GunPoint"
    assert dm.cache_path().is_file()


def test_ucr_japanese_vowels_multivariate_unequal_and_cached(data_dir: Path, monkeypatch) -> None:
    from aeon.datasets import load_classification

    raw, _ = load_classification("JapaneseVowels", split="test")
    dm = UCRDataModule("JapaneseVowels", data_dir=str(data_dir), val_size=0)
    dm.setup()
    spec = dm.input_spec
    assert spec.masked and spec.shape[0] == 12 and dm.num_classes == 9
    x, _, mask = dm.splits["test"]
    longest = spec.shape[1]  # the longest training series: longer test series are cut to it (data.too_long)
    assert mask.sum(1).tolist() == [min(a.shape[1], longest) for a in raw]
    assert torch.all(x.masked_select(~mask[:, None, :].expand_as(x)) == 0)

    def offline(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cache was not used")

    monkeypatch.setattr("aeon.datasets.load_classification", offline)
    again = UCRDataModule("JapaneseVowels", data_dir=str(data_dir), val_size=0)
    again.setup()
    torch.testing.assert_close(again.splits["test"][0], x)


def test_ucr_unknown_or_unreachable_dataset(data_dir: Path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"data.name: unknown UCR/UEA .* 'GunPiont'; did you mean \['GunPoint'"):
        UCRDataModule("GunPiont", data_dir=str(data_dir)).setup()

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise ValueError("Could not download files for Adiac from Zenodo")

    monkeypatch.setattr("aeon.datasets.load_classification", no_network)
    with pytest.raises(ConfigError, match=r"data.name: 'Adiac' is not shipped with aeon .* offline: \[.*'GunPoint'"):
        UCRDataModule("Adiac", data_dir=str(data_dir)).setup()


# -- user .npz files ---------------------------------------------------------------------------------------
def test_npz_series_round_trip_fixed_split_and_hold_out(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 30)).astype(np.float32), np.array(["cat", "dog"] * 25)
    np.savez(tmp_path / "fixed.npz", x=x, y=y, x_test=x[:6], y_test=y[:6])
    dm = NPZDataModule(str(tmp_path / "fixed.npz"), val_size=0, preprocessing=NoScaling())
    dm.setup()
    assert dm.input_spec.shape == (1, 30) and dm.classes == ["cat", "dog"]
    np.testing.assert_array_equal(dm.splits["test"][0][:, 0].numpy(), x[:6])
    np.testing.assert_array_equal(dm.splits["train"][0][:, 0].numpy(), x)
    np.savez(tmp_path / "one.npz", x=rng.normal(size=(40, 3, 8)), y=np.arange(40) % 4)
    held = NPZDataModule(str(tmp_path / "one.npz"), test_size=0.25, val_size=0)
    held.setup()
    assert held.input_spec.shape == (3, 8)
    assert sorted(np.bincount(held.splits["test"][1].numpy()).tolist()) == [2, 2, 3, 3]  # stratified
    assert len(held.splits["test"][1]) == 10 and len(held.splits["train"][1]) == 30


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"x": np.zeros((4, 5))}, "has no array 'y'"),
        ({"x": np.zeros((4, 5)), "y": np.arange(4), "x_test": np.zeros((2, 5))}, "only one of x_test and y_test"),
        ({"x": np.zeros(4), "y": np.arange(4)}, r"x has shape \(4,\)"),
    ],
)
def test_npz_bad_files_name_the_file_and_the_expected_keys(tmp_path: Path, arrays, words: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=f"data.path: '{path}'.*{words}"):
        NPZDataModule(str(path)).setup()
    with pytest.raises(ConfigError, match="data.path: no file .*expected an .npz with arrays x, y"):
        NPZDataModule(str(tmp_path / "missing.npz")).setup()


# -- through the CLI -----------------------------------------------------------------------------------------
def _bad_file(tmp_path: Path, kind: str) -> Path:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 1, 9)), np.array(["a", "b"] * 10)
    path = tmp_path / f"{kind}.npz"
    if kind == "nan":
        x[13, 0, 4] = np.nan
        np.savez(path, x=x, y=y, x_test=x[:2], y_test=y[:2])
    elif kind == "single":
        np.savez(path, x=x, y=np.array(["a"] * 20), x_test=x[:2], y_test=np.array(["a", "a"]))
    else:  # unseen
        np.savez(path, x=x, y=y, x_test=x[:2], y_test=np.array(["a", "zebra"]))
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["data=ucr", "data.name=NoSuchSet"], "data.name: unknown UCR/UEA classification dataset 'NoSuchSet'"),
        (["data=npz", "data.path=missing.npz"], "data.path: no file"),
        (["data=npz", "data.path={nan}"], "train split has non-finite values (NaN/inf) in row 13"),
    ],
)
def test_bad_data_is_one_line_and_exit_2_before_training(tmp_path: Path, data_dir: Path, args, words) -> None:
    args = [a.format(nan=_bad_file(tmp_path, "nan")) for a in args]
    r = run_cli_shared("train.py", *args, "debug=fast", f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path}")
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and words in lines[0], r.stderr[-2000:]


@pytest.mark.parametrize(
    ("kind", "words"),
    [("single", "data: file '.*single.npz': every training label is 'a'"),
     ("unseen", r"data: file '.*unseen.npz': test label 'zebra' \(row 1\) does not occur")],
)
def test_bad_labels_stop_the_job_before_training(make_cfg, tmp_path: Path, kind: str, words: str) -> None:
    cfg = make_cfg(["data=npz", f"data.path={_bad_file(tmp_path, kind)}", "debug=fast"])
    with pytest.raises(ConfigError, match=words):
        train(cfg)
    assert not (tmp_path / "metrics.json").exists()


def test_ucr_trains_end_to_end(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["data=ucr", "data.name=GunPoint", "model=cnn", "debug=fast"]))
    data = read_metrics(tmp_path)["data"]
    assert data["classes"] == ["1", "2"] and data["input_shape"] == [1, 150] and data["name"] == "GunPoint"


def test_unequal_length_ucr_trains_end_to_end(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["data=ucr", "data.name=JapaneseVowels", "model=cnn_rnn", "debug=fast"]))
    data = read_metrics(tmp_path)["data"]
    assert data["masked"] and data["input_shape"][0] == 12 and data["num_classes"] == 9
