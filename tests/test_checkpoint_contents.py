"""A checkpoint carries what prediction needs (config, data state), loads with ``weights_only=True``,
and ``FusionClassifier.load_from_checkpoint(path)`` rebuilds the trained module without the training data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fusionlab.training.module import FusionClassifier
from fusionlab.training.run import prepare


def fit_short(make_cfg, tmp_path: Path, *overrides: str, data_dir: Path | None = None):
    cfg = make_cfg(["debug=limit", "logger=none", "trainer.max_epochs=1", *overrides])
    if data_dir is not None:
        cfg.paths.data_dir = str(data_dir)
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    return dm, module, tmp_path / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("data", ["mnist1d", "text"])
def test_checkpoint_holds_config_and_data_state_and_loads_with_weights_only(make_cfg, tmp_path: Path,
                                                                             data: str) -> None:
    model = "text_cnn" if data == "text" else "cnn"
    dm, module, path = fit_short(make_cfg, tmp_path, f"data={data}", f"model={model}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain types and tensors only
    assert ckpt["fusionlab_config"]["model"]["_target_"] == module.config["model"]["_target_"]
    state = ckpt["fusionlab_data"]
    assert state["class_names"] == dm.class_names
    assert state["input_spec"]["shape"] == list(dm.input_spec.shape)
    assert "fusionlab_rng" in ckpt
    if data == "text":
        assert state == {**state, **dm.data_state()}  # the vocabulary and tokenizer settings travel too


def test_load_from_checkpoint_needs_no_arguments_and_no_training_data(make_cfg, tmp_path: Path,
                                                                       data_dir: Path) -> None:
    own_copy = tmp_path / "d"
    shutil.copytree(data_dir, own_copy)
    dm, module, path = fit_short(make_cfg, tmp_path, "model=cnn_rnn", "fusion=gated", data_dir=own_copy)
    batch = next(iter(dm.test_dataloader()))
    module.eval()
    with torch.no_grad():
        expected = module(batch[0][:32])
    shutil.rmtree(tmp_path / "d")  # the training data is gone
    loaded = FusionClassifier.load_from_checkpoint(path)
    assert isinstance(loaded, FusionClassifier) and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch[0][:32]), expected)
    assert loaded.data_state["class_names"] == dm.class_names
    loaded_cpu = FusionClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert next(loaded_cpu.parameters()).device.type == "cpu"
    with pytest.raises(TypeError, match="hparams_file"):
        FusionClassifier.load_from_checkpoint(path, hparams_file="h.yaml")
