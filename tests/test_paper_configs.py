"""Every paper experiment (conf/experiment/paper_*.yaml) composes and trains one step.

The paper scripts (scripts/paper_*.py) launch these files; here each one runs with ``debug=fast`` through
``train.py`` so a broken delta (a renamed key, a missing preset) fails fast; tests/test_config.py trains every
other experiment (the text ones among them) and leaves these to this file. Also checks the sizes the
experiment files promise (the paper's parameter counts) and the no-validation protocol of LSTM-FCN.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fusionlab.training.run import train
from tests.conftest import CONF, run_cli_shared

MNIST1D = sorted(p.stem for p in CONF.glob("experiment/paper_mnist1d_*.yaml"))
LSTM_FCN = sorted(p.stem for p in CONF.glob("experiment/paper_lstm_fcn_*.yaml"))

# parameter counts the experiment files state (the paper's sizes for the MNIST-1D baselines)
PARAMS = {"paper_mnist1d_logistic": 410, "paper_mnist1d_mlp": 15_210, "paper_mnist1d_cnn": 4_210,
          "paper_mnist1d_gru": 5_054}


def _run(make_cfg, experiment: str, tmp_path: Path, *extra: str) -> dict:
    """Compose ``experiment=<name> debug=fast`` as the CLI would and train in process (one batch)."""
    train(make_cfg([f"experiment={experiment}", "debug=fast", *extra]))
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["status"] == "ok" and result["steps"] == 1
    return result


def test_paper_experiment_files_found() -> None:
    assert len(MNIST1D) == 8 and len(LSTM_FCN) == 6


@pytest.mark.parametrize("experiment", MNIST1D)
def test_mnist1d_paper_experiment_trains_one_step(experiment: str, make_cfg, tmp_path: Path) -> None:
    result = _run(make_cfg, experiment, tmp_path)
    assert result["choices"]["optimizer"] == "adam" and result["data"]["source"] == "MNIST-1D"
    if experiment in PARAMS:
        assert result["params"]["total"] == PARAMS[experiment]


@pytest.mark.parametrize("experiment", LSTM_FCN)
def test_lstm_fcn_paper_experiment_trains_one_step(experiment: str, make_cfg, tmp_path: Path) -> None:
    # ItalyPowerDemand: the smallest of the three problems (length 24), shipped with aeon
    result = _run(make_cfg, experiment, tmp_path, "data.name=ItalyPowerDemand")
    assert result["data"]["sizes"] == {"train": 67, "test": 1029}  # official split, no validation part
    assert "val/acc" not in result["metrics"]


def test_lstm_fcn_checkpoint_follows_training_loss(tmp_path: Path, data_dir: Path) -> None:
    """No validation part: the best checkpoint is the one of lowest training loss (the paper's protocol)."""
    out = tmp_path / "run"
    proc = run_cli_shared("train.py", "experiment=paper_lstm_fcn_lstm", "data.name=ItalyPowerDemand",
                   "trainer.max_epochs=2", "logger=none", f"hydra.run.dir={out}", f"paths.data_dir={data_dir}",
                   env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads((out / "metrics.json").read_text())
    assert config["best_checkpoint"].endswith("best.ckpt")
    assert "monitoring train/loss" in proc.stdout + proc.stderr


def test_lstm_fcn_script_runs_its_sweep_and_writes_the_table_with_the_bar(tmp_path: Path, data_dir: Path) -> None:
    """scripts/paper_lstm_fcn.py end to end on a tiny budget: launch, table, published numbers, bar, provenance."""
    out = tmp_path / "table.md"
    proc = run_cli_shared("scripts/paper_lstm_fcn.py", "--epochs", "2", "--seeds", "0", "--datasets",
                          "ItalyPowerDemand", "--experiments", "paper_lstm_fcn_concat", "--n-jobs", "1",
                          "--sweep-dir", str(tmp_path / "sweep"), "--subdir", "part", "--out", str(out),
                          "--override", "data.eval_batch_size=256",
                          env={"OMP_NUM_THREADS": "1", "FUSIONLAB_DATA_DIR": str(data_dir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert (tmp_path / "sweep" / "part" / "0" / "metrics.json").is_file()
    row = next(line for line in text.splitlines() if "`paper_lstm_fcn_concat`" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "– (0)" and cells[2] == "– (0)" and cells[3].endswith("(1)")  # only ItalyPowerDemand ran
    assert "| published: LSTM-FCN (Karim et al. 2017, authors' results, training-loss checkpoint) | 100.00 | 89.71 | " \
           "96.21 |" in text
    assert "| GunPoint | – | 100.00 | – | not run |" in text
    bar = next(line for line in text.splitlines() if line.startswith("| ItalyPowerDemand |"))
    ours = float(bar.split("|")[2])
    assert ours == pytest.approx(float(cells[3].split()[0]), abs=0.06)  # the bar repeats the table's mean
    assert "**2 epochs** here" in text and "trainer.max_epochs=2" in text and "torch " in text
    overrides = (tmp_path / "sweep" / "part" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "data.eval_batch_size=256" in overrides  # --override reaches every job
    nice = os.nice(0)  # the recorded command states the niceness it really ran at
    assert (f"OMP_NUM_THREADS=1 nice -n {nice} python" if nice else "OMP_NUM_THREADS=1 python scripts/") in text
