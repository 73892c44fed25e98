"""A NaN/inf loss stops the run, keeps the last good checkpoint and records why."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from fusionlab.jobs import train as run  # the train job's module: its prepare is patched below
from fusionlab.training.divergence import DivergenceGuard, TrainingDiverged
from tests.conftest import read_metrics, run_cli_shared
from tests.test_no_host_sync import HostSyncDetector


class PoisonAtEpoch(pl.Callback):
    """Fault injection: fill one weight with NaN before the first batch of ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 0:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path: Path, monkeypatch) -> None:
    real_prepare = run.prepare

    def prepare_with_fault(cfg):
        dm, module, trainer = real_prepare(cfg)
        trainer.callbacks.insert(0, PoisonAtEpoch(1))
        return dm, module, trainer

    monkeypatch.setattr(run, "prepare", prepare_with_fault)
    cfg = make_cfg(["debug=limit", "trainer.max_epochs=3", "logger=none"])  # 3 steps per epoch
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at epoch 1, step 4"):
        run.train(cfg)

    m = read_metrics(tmp_path)
    assert m["status"] == "failed" and (m["epoch"], m["step"]) == (1, 4)
    assert "training diverged: non-finite loss at epoch 1, step 4" in m["error"]
    assert math.isnan(m["objective"]) and m["metrics"] == {}
    for name in ("last.ckpt", "best.ckpt"):  # both still hold epoch 0's finite weights
        state = torch.load(tmp_path / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert state["global_step"] == 3
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert m["last_checkpoint"] == str(tmp_path / "checkpoints" / "last.ckpt")


def test_guard_keeps_the_first_bad_step_on_the_device_without_host_reads() -> None:
    """Per step the guard builds no host tensor and reads nothing back (the detector of
    tests/test_no_host_sync.py watches every call); the one read, in ``check``, names the first bad step."""

    class Trainer:
        global_step, current_epoch = 0, 0

    guard, module = DivergenceGuard(), torch.nn.Linear(2, 2)
    losses = [torch.tensor(v) for v in (1.0, float("inf"), float("nan"), 2.0)]
    with HostSyncDetector() as detector:
        for i, loss in enumerate(losses):
            Trainer.global_step = i + 1
            guard.on_train_batch_end(Trainer(), module, {"loss": loss}, None, i)
    assert detector.calls == []
    with pytest.raises(TrainingDiverged, match="epoch 0, step 2"):  # the first bad step is kept
        guard.check(Trainer(), module)


def test_single_run_that_diverges_exits_3_with_one_line(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    r = run_cli_shared("train.py", "model=cnn", "debug=limit", "logger=none", "optimizer.lr=1e10",
                f"hydra.run.dir={out}", env={"FUSIONLAB_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 3, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: training diverged: non-finite loss at epoch "), r.stderr
    assert "Traceback" not in r.stderr
    m = read_metrics(out)
    assert m["status"] == "failed" and m["error_type"] == "TrainingDiverged"
