"""The command line as a user drives it: train.py, eval.py, multirun, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import read_metrics, run_cli_shared


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {"FUSIONLAB_DATA_DIR": str(data_dir), "FUSIONLAB_LOG_DIR": str(tmp_path / "outputs")}


def run_folder(stdout: str) -> Path:
    lines = [line for line in stdout.splitlines() if line.startswith("Run folder: ")]
    assert lines, stdout
    return Path(lines[-1].removeprefix("Run folder: "))


def test_train_then_eval_reproduces_the_test_metrics(tmp_path: Path, env: dict[str, str]) -> None:
    r = run_cli_shared("train.py", "debug=limit", "seed=1", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    run = run_folder(r.stdout)
    assert run.is_relative_to(tmp_path / "outputs" / "train" / "runs")
    trained = read_metrics(run)["metrics"]
    assert (run / ".hydra" / "config.yaml").is_file() and (run / ".hydra" / "hydra.yaml").is_file()

    e = run_cli_shared("eval.py", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", env=env)
    assert e.returncode == 0, e.stderr[-3000:]
    evaluated = read_metrics(run_folder(e.stdout))["metrics"]
    for key in ("test/acc", "test/f1", "test/loss"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6), key
    assert f"test/acc: {trained['test/acc']:.4f}" in e.stdout


def test_multirun_sweeps_fusions_into_separate_folders(tmp_path: Path, env: dict[str, str]) -> None:
    sweep = tmp_path / "sweep"
    r = run_cli_shared("train.py", "-m", "fusion=concat,attention", "debug=fast", f"hydra.sweep.dir={sweep}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    targets = {json.loads((sweep / str(i) / "metrics.json").read_text())["choices"]["fusion"] for i in (0, 1)}
    assert targets == {"concat", "attention"}


def test_unknown_option_lists_the_available_ones(env: dict[str, str]) -> None:
    r = run_cli_shared("train.py", "fusion=gatd", env=env)
    assert r.returncode != 0
    assert "Could not find 'fusion/gatd'" in r.stderr and "gated" in r.stderr and "attention" in r.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model.dropout=-0.5"], "Error in config: model.dropout: must be >= 0.0, got -0.5"),
        (["model=transformer", "model.branches.transformer.heads=5"],
         "Error in config: model.branches.transformer.heads: must divide d_model=64, got 5"),
        (["model.branches.cnn.channels=[32,0]"], "Error in config: model.branches.cnn.channels: must be > 0, got 0"),
        (["fusion=gated", "+model.fusion.hiden=3"], "Error in config: model.fusion.hiden: unknown key for GatedFusion"),
        (["fusion=late", "model.fusion.fused_loss=0"],
         "Error in config: model.fusion.fused_loss: is 0 and so is branch_loss: the training loss would be 0"),
        (["+branch@model.branches.bag=bag_of_ngrams"],
         "Error in config: model.branches.bag: BagOfNgramsBranch reads text (word ids), but the data is series"),
    ],
)
def test_impossible_value_exits_2_with_one_line_and_writes_no_results(tmp_path: Path, env: dict[str, str],
                                                                      args: list[str], expected: str) -> None:
    r = run_cli_shared("train.py", *args, env=env)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "outputs").rglob("metrics.json"))


def test_misspelt_plain_key_fails_at_composition_naming_it(env: dict[str, str]) -> None:
    r = run_cli_shared("train.py", "regularizer.label_smothing=0.1", env=env)
    assert r.returncode != 0 and "label_smothing" in r.stderr and "Traceback" not in r.stderr


def test_eval_of_a_missing_checkpoint_is_a_clear_error(tmp_path: Path, env: dict[str, str]) -> None:
    r = run_cli_shared("eval.py", f"ckpt_path={tmp_path / 'nope.ckpt'}", env=env)
    assert r.returncode == 2 and "ckpt_path: no checkpoint file at" in r.stderr and "Traceback" not in r.stderr


def test_a_bad_job_in_a_multirun_is_recorded_and_the_others_finish(tmp_path: Path, env: dict[str, str]) -> None:
    sweep = tmp_path / "sweep"
    r = run_cli_shared("train.py", "-m", "model.dropout=-0.5,0.1", "debug=fast", f"hydra.sweep.dir={sweep}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    failed, ok = (json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1))
    assert failed["status"] == "failed" and "model.dropout: must be >= 0.0" in failed["error"]
    assert ok["status"] == "ok" and ok["steps"] == 1
    assert "Error in config: model.dropout" in r.stderr and "Traceback" not in r.stderr
