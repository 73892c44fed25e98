"""Image data: scikit-learn digits, image .npz files, the cnn2d branch and the rows view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data import DigitsDataModule, NPZDataModule
from fusionlab.data.preprocessing import NoScaling, Standardize
from fusionlab.training.run import prepare, train
from tests.conftest import read_metrics


def test_digits_fixed_stratified_split_as_images() -> None:
    dm = DigitsDataModule(val_size=0.2)
    dm.setup()
    spec = dm.input_spec
    assert spec.modality == "image" and spec.shape == (1, 8, 8) and not spec.masked
    sizes = {k: len(v[1]) for k, v in dm.splits.items()}
    assert sizes == {"train": 958, "val": 240, "test": 599}
    assert dm.classes == list(range(10))
    test_share = np.bincount(dm.splits["test"][1].numpy()) / np.bincount(
        np.concatenate([dm.splits[k][1].numpy() for k in dm.splits]))
    assert np.allclose(test_share, 1 / 3, atol=0.01)  # stratified
    a = DigitsDataModule(preprocessing=NoScaling())
    b = DigitsDataModule(split_seed=3, seed=4, preprocessing=NoScaling())
    a.setup()
    b.setup()
    torch.testing.assert_close(a.splits["test"][0], b.splits["test"][0])  # no run option moves the test split
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32


def test_digits_channel_statistics_from_training_part() -> None:
    raw = DigitsDataModule(preprocessing=NoScaling())
    raw.setup()
    dm = DigitsDataModule(preprocessing=Standardize("channel"))
    dm.setup()
    x = raw.splits["train"][0]
    assert dm.stats["mean"] == pytest.approx([x.mean().item()], rel=1e-5)
    assert dm.stats["std"] == pytest.approx([x.std(unbiased=False).item()], rel=1e-4)
    assert x.min() == 0 and x.max() == 16  # grey levels as shipped


def test_image_npz_round_trip_and_modality(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 3, 5, 6)).astype(np.float32), np.arange(30) % 3
    np.savez(tmp_path / "img.npz", x=x, y=y, x_test=x[:3], y_test=y[:3])
    dm = NPZDataModule(str(tmp_path / "img.npz"), val_size=0, preprocessing=NoScaling())
    dm.setup()
    assert dm.input_spec.modality == "image" and dm.input_spec.shape == (3, 5, 6)
    np.testing.assert_array_equal(dm.splits["train"][0].numpy(), x)
    np.savez(tmp_path / "grey.npz", x=x[:, 0], y=y)  # (N, H, W): series unless told it is an image
    grey = NPZDataModule(str(tmp_path / "grey.npz"), modality="image", val_size=0)
    grey.setup()
    assert grey.input_spec.shape == (1, 5, 6)
    as_series = NPZDataModule(str(tmp_path / "grey.npz"), val_size=0)
    as_series.setup()
    assert as_series.input_spec.modality == "series" and as_series.input_spec.shape == (5, 6)


def test_cnn2d_branch_returns_positions_as_a_sequence() -> None:
    from fusionlab.branches import CNN2dBranch

    branch = CNN2dBranch(in_channels=2, height=8, width=6, channels=[4, 5], kernel_sizes=[3])
    assert branch.modality == "image" and set(CNN2dBranch.injected) == {"in_channels", "height", "width"}
    x = torch.randn(3, 2, 8, 6)
    seq = branch(x)
    assert seq.shape == (3, 48, 5) and branch.out_dim == 5
    torch.testing.assert_close(branch.pool(seq), seq.mean(dim=1))  # global average pooling
    with pytest.raises(ConfigError, match="kernel_sizes"):
        CNN2dBranch(in_channels=1, height=4, width=4, kernel_sizes=[5])
    with pytest.raises(ConfigError, match="kernel_sizes"):
        CNN2dBranch(in_channels=1, height=8, width=8, channels=[4, 4, 4], kernel_sizes=[3, 3])


def test_rows_view_reads_an_image_row_by_row() -> None:
    from fusionlab.data.spec import InputSpec
    from fusionlab.models.views import make_view

    view, spec = make_view("rows", InputSpec("image", (2, 4, 3)), "model.views.rnn")
    assert spec.modality == "series" and spec.shape == (6, 4)
    x = torch.arange(2 * 2 * 4 * 3, dtype=torch.float32).reshape(2, 2, 4, 3)
    out, _ = view(x)
    torch.testing.assert_close(out[:, :, 1], x[:, :, 1, :].reshape(2, 6))  # step 1 = row 1, all channels


@pytest.mark.parametrize("model", ["cnn2d", "cnn2d_rnn"])
def test_digits_trains_end_to_end(make_cfg, tmp_path: Path, model: str) -> None:
    train(make_cfg(["data=digits", f"model={model}", "debug=fast"]))
    metrics = read_metrics(tmp_path)
    assert metrics["data"]["input_shape"] == [1, 8, 8] and metrics["data"]["modality"] == "image"


def test_series_model_on_images_is_refused(make_cfg) -> None:
    cfg = make_cfg(["data=digits", "model=cnn", "debug=fast"])
    with pytest.raises(ConfigError) as err:
        prepare(cfg)
    assert err.value.key.startswith("model") and "cnn" in str(err.value) and "image" in str(err.value)
