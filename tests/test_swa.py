"""Stochastic weight averaging: the averaged weights are the ones validated and tested."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from fusionlab.training.run import train
from tests.conftest import read_metrics


class RecordWeights(pl.Callback):
    """Records the parameters SWA averages (at the start of each epoch in its window, as Lightning's
    StochasticWeightAveraging does) and the parameters the test runs with. Used through
    ``allowed_targets``, as a user's own callback would be."""

    averaged: list[dict[str, torch.Tensor]] = []
    tested: dict[str, torch.Tensor] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        swa = next(c for c in trainer.callbacks if isinstance(c, pl.callbacks.StochasticWeightAveraging))
        if swa.swa_start <= trainer.current_epoch <= swa.swa_end:  # 0-based: epoch 3 (1-based) is 2
            RecordWeights.averaged.append({k: v.detach().clone() for k, v in pl_module.named_parameters()})

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        RecordWeights.tested = {k: v.detach().clone() for k, v in pl_module.named_parameters()}


def test_the_averaged_weights_are_validated_and_tested(make_cfg, tmp_path: Path) -> None:
    RecordWeights.averaged, RecordWeights.tested = [], {}
    # a GRU model (no BatchNorm), 6 epochs, averaging from epoch 3 at a high SWA lr so the average
    # differs clearly from any single epoch's weights (and from the best checkpoint)
    cfg = make_cfg(["model=rnn", "debug=limit", "trainer.max_epochs=6", "logger=none", "regularizer.swa_lrs=0.05",
                    "regularizer.swa_epoch_start=3", "allowed_targets=[tests.test_swa.RecordWeights]",
                    "+callbacks.record._target_=tests.test_swa.RecordWeights"])
    train(cfg)
    m = read_metrics(tmp_path)
    assert len(RecordWeights.averaged) == 4  # epochs 3 to 6 (1-based)
    average = {k: torch.stack([w[k] for w in RecordWeights.averaged]).mean(0) for k in RecordWeights.averaged[0]}
    for k, v in RecordWeights.tested.items():
        torch.testing.assert_close(v, average[k], rtol=1e-5, atol=1e-6)  # the SWA average was tested
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.allclose(best[f"{k}"], v) for k, v in RecordWeights.tested.items())  # not best.ckpt
    # the averaged weights are saved, and metrics.json names them as the tested checkpoint
    assert m["tested_weights"] == "swa" and m["best_checkpoint"].endswith("checkpoints/swa.ckpt")
    swa = torch.load(m["best_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    for k, v in RecordWeights.tested.items():
        torch.testing.assert_close(swa[k], v)
    assert {"val/acc", "test/acc"} <= set(m["metrics"])


class StopAfterEpoch2(pl.Callback):
    """Stops training after epoch 2 (1-based), as early stopping does, before SWA's window (from epoch 3)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            trainer.should_stop = True


def test_training_stopped_before_the_window_closes_tests_the_best_weights_and_says_so(make_cfg, tmp_path: Path,
                                                                                      caplog) -> None:
    RecordWeights.averaged, RecordWeights.tested = [], {}
    cfg = make_cfg(["model=rnn", "debug=limit", "trainer.max_epochs=6", "logger=none", "regularizer.swa_lrs=0.05",
                    "regularizer.swa_epoch_start=3",
                    "allowed_targets=[tests.test_swa.RecordWeights,tests.test_swa.StopAfterEpoch2]",
                    "+callbacks.record._target_=tests.test_swa.RecordWeights",
                    "+callbacks.stop._target_=tests.test_swa.StopAfterEpoch2"])
    with caplog.at_level("WARNING", logger="fusionlab"):
        train(cfg)
    m = read_metrics(tmp_path)
    assert RecordWeights.averaged == []  # the window never opened
    assert m["tested_weights"] == "best" and m["best_checkpoint"].endswith("checkpoints/best.ckpt")
    assert not (tmp_path / "checkpoints" / "swa.ckpt").exists()
    best = torch.load(m["best_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    for k, v in RecordWeights.tested.items():
        torch.testing.assert_close(best[k], v)  # the best checkpoint is what was tested
    assert "stochastic weight averaging not applied" in caplog.text
