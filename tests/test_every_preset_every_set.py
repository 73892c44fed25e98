"""Every series model preset trains one step on every offline UCR/UEA classification set aeon ships;
presets that cannot honour padding masks get one length from ``data=ucr_equal``; per-series z-norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError
from fusionlab.data.length_policy import EqualLengthUCRDataModule, equal_length, resample
from fusionlab.data.series_norm import PerSeriesZNorm
from fusionlab.data.ucr import UCRDataModule, offline_datasets
from tests.conftest import CONF, read_metrics, run_cli_shared

pytest.importorskip("aeon")

# presets for other modalities (images: digits; text) — everything else reads series
NOT_SERIES = {"cnn2d": "images", "cnn2d_rnn": "images", "text_cnn": "text"}
SERIES_PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if p.stem not in NOT_SERIES)
OFFLINE = offline_datasets()


def test_the_offline_sets_are_the_ones_aeon_ships() -> None:
    """Nine problems, among them unequal-length ones and a series of more than a thousand steps."""
    assert {"ArrowHead", "GunPoint", "JapaneseVowels", "ACSF1", "PickupGestureWiimoteZ"} <= set(OFFLINE)


@pytest.fixture(scope="module")
def offline_batches(data_dir) -> dict[str, dict]:
    """Per offline set: 2 training series as padded data (``data=ucr``) and at one length (``data=ucr_equal``)."""
    out = {}
    for name in OFFLINE:
        entry = {}
        for key, cls in (("ucr", UCRDataModule), ("ucr_equal", EqualLengthUCRDataModule)):
            dm = cls(name, data_dir=str(data_dir), val_size=0)
            dm.setup("fit")
            tensors = dm.splits["train"]
            idx = torch.arange(2)
            entry[key] = (dm.input_spec, dm.num_classes, tuple(t[idx] for t in tensors))
        out[name] = entry
    return out


def _one_step(net: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> None:
    x, y = batch[0], batch[1]
    mask = batch[2] if len(batch) > 2 else None
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    loss = F.cross_entropy(net(x, mask), y)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters())), "no parameter moved"
    net.eval()
    with torch.no_grad():
        logits = net(x, mask)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("preset", SERIES_PRESETS)
def test_every_preset_trains_a_step_on_every_offline_set(make_cfg, offline_batches, preset: str) -> None:
    """With the preset's own defaults: padded data where the preset honours masks; where it refuses
    them (a clear ConfigError about padding masks), the same set through ``data=ucr_equal`` trains."""
    cfg = make_cfg([f"model={preset}"])
    equalised = []
    for name in OFFLINE:
        spec, classes, batch = offline_batches[name]["ucr"]
        torch.manual_seed(0)
        try:
            net = build(cfg.model, "model", input_spec=spec, num_classes=classes)
        except ConfigError as e:
            assert spec.masked and "cannot honour padding masks" in str(e), f"{preset} on {name}: {e}"
            spec, classes, batch = offline_batches[name]["ucr_equal"]
            assert not spec.masked
            net = build(cfg.model, "model", input_spec=spec, num_classes=classes)
            equalised.append(name)
        _one_step(net, batch)
    if preset in ("lstm_fcn", "alstm_fcn"):
        assert {"JapaneseVowels", "PickupGestureWiimoteZ"} <= set(equalised)


def test_lstm_fcn_trains_on_unequal_length_data_through_the_cli(tmp_path, data_dir) -> None:
    """``model=lstm_fcn`` on JapaneseVowels: refused with data=ucr (one line, no traceback), trained with
    data=ucr_equal (resampled to the longest training series, no mask left)."""
    common = ["model=lstm_fcn", "data.name=JapaneseVowels", "trainer.fast_dev_run=true", "threads=1",
              f"paths.data_dir={data_dir}"]
    refused = run_cli_shared("train.py", "data=ucr", *common, f"hydra.run.dir={tmp_path / 'a'}")
    assert refused.returncode != 0 and "cannot honour padding masks" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    ok = run_cli_shared("train.py", "data=ucr_equal", *common, f"hydra.run.dir={tmp_path / 'b'}")
    assert ok.returncode == 0, ok.stderr[-2000:]
    data = read_metrics(tmp_path / "b")["data"]
    assert data["masked"] is False and data["input_shape"][-1] == 26  # the longest training series


def test_resample_and_pad_policies() -> None:
    """Resampling keeps the end points and interpolates linearly; pad puts zeros after the real steps;
    no mask is left either way; pad refuses a length shorter than a series."""
    x = np.zeros((2, 1, 5), dtype=np.float32)
    x[0, 0, :3] = [0.0, 1.0, 2.0]
    x[1, 0, :5] = [4.0, 3.0, 2.0, 1.0, 0.0]
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    arrays = {"x_train": x, "mask_train": mask, "y_train": np.array([0, 1]),
              "x_test": x[:1, :, :3], "y_test": np.array([0])}
    out = equal_length(arrays, "resample")
    assert "mask_train" not in out and out["x_train"].shape == (2, 1, 5)
    np.testing.assert_allclose(out["x_train"][0, 0], [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(out["x_train"][1, 0], x[1, 0])
    np.testing.assert_allclose(out["x_test"][0, 0], [0.0, 0.5, 1.0, 1.5, 2.0])
    padded = equal_length(arrays, "pad", length=6)
    np.testing.assert_allclose(padded["x_train"][0, 0], [0.0, 1.0, 2.0, 0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="data.length"):
        equal_length(arrays, "pad", length=4)
    np.testing.assert_allclose(resample(np.array([[1.0, 3.0]]), 3), [[1.0, 2.0, 3.0]])


def test_per_series_znorm_normalises_each_series_over_its_real_steps(make_cfg, tmp_path) -> None:
    """``preprocessing=znorm`` (composed from its YAML): every channel of every series has mean 0 and
    std 1 over its real steps whatever its offset and scale; padding stays 0."""
    cfg = make_cfg(["data=ucr", "data.name=JapaneseVowels", "preprocessing=znorm"])
    prep = build(cfg.data.preprocessing, "data.preprocessing")
    assert isinstance(prep, PerSeriesZNorm) and prep.per == "channel"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 10)) * np.array([1.0, 50.0])[None, :, None] + 7.0
    mask = np.arange(10)[None, :] < np.array([[10], [6], [3]])
    x = np.where(mask[:, None, :], x, 0.0)
    y = prep.fit(x, mask).transform(x, mask)
    for i, n in enumerate([10, 6, 3]):
        np.testing.assert_allclose(y[i, :, :n].mean(axis=-1), 0.0, atol=1e-5)
        np.testing.assert_allclose(y[i, :, :n].std(axis=-1), 1.0, atol=1e-5)
        assert (y[i, :, n:] == 0).all()
