"""Loggers (csv, tensorboard, mlflow, several at once) leave their artefacts; the progress bar is
Rich on an interactive terminal and off otherwise."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest
from pytorch_lightning.callbacks import RichProgressBar

from fusionlab.training.run import prepare, train
from tests.conftest import read_metrics

SHORT = ["debug=limit", "callbacks=none"]
VAL_POINTS = 3  # two epochs, then train() validates the final model once more


def tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[float]] = {}
    for events in sorted(folder.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return scalars


def mlflow_run(tracking_uri: str, experiment: str = "train"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_tensorboard_logger_writes_event_files_with_the_epoch_metrics(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    train(make_cfg([*SHORT, "logger=tensorboard"]))
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert len(scalars["val/acc"]) == VAL_POINTS and len(scalars["train/loss"]) == 2  # one point per epoch
    assert scalars["test/acc"][-1] == pytest.approx(read_metrics(tmp_path)["metrics"]["test/acc"])
    assert not (tmp_path / "csv").exists()


def test_mlflow_logger_records_a_run_with_params_and_metrics(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    train(make_cfg([*SHORT, "logger=mlflow"]))
    client, run = mlflow_run(f"sqlite:///{tmp_path}/mlflow.db")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/acc"] == pytest.approx(read_metrics(tmp_path)["metrics"]["test/acc"])
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == VAL_POINTS
    assert run.data.params["seed"] == "0" and run.data.params["model/_target_"] == "fusionlab.models.make_fusion_net"


def test_several_loggers_at_once(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    train(make_cfg([*SHORT, "logger=many"]))
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert sum(1 for r in rows if r.get("val/acc")) == VAL_POINTS
    assert len(tensorboard_scalars(tmp_path / "tensorboard")["val/acc"]) == VAL_POINTS
    _, run = mlflow_run(f"sqlite:///{tmp_path}/mlflow.db")
    assert "val/acc" in run.data.metrics


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_rich_progress_bar_only_on_an_interactive_terminal(make_cfg, monkeypatch, tty: bool) -> None:
    stream = Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    _, _, trainer = prepare(make_cfg(["debug=limit", "logger=none"]))
    if tty:
        assert isinstance(trainer.progress_bar_callback, RichProgressBar)
    else:
        assert trainer.progress_bar_callback is None
