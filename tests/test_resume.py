"""Crash and resume: atomic checkpoints, resume=auto after SIGKILL, ckpt_path errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.training import checkpoint as ckpt_mod
from fusionlab.training.checkpoint import atomic_torch_save
from fusionlab.training.run import evaluate, prepare, train
from tests.conftest import ROOT, read_metrics, run_cli_shared

# a real run, shortened: CNN on MNIST-1D, 4 epochs of 10 batches, deterministic on the CPU; one torch
# thread in every process (the in-process reference and the CLI runs), so sums run in the same order
RUN = ["model=cnn", "trainer.max_epochs=4", "+trainer.limit_train_batches=10", "threads=1"]


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {"FUSIONLAB_DATA_DIR": str(data_dir), "FUSIONLAB_LOG_DIR": str(tmp_path / "outputs"),
            "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_metrics(make_cfg, tmp_path: Path, env: dict[str, str]) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train(make_cfg(RUN, out=whole))  # the uninterrupted reference (in-process: the same computation)

    # the same command, killed with SIGKILL as soon as the first epoch's last.ckpt exists
    last = killed / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "train.py", *RUN, f"hydra.run.dir={killed}"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    state = torch.load(last, map_location="cpu", weights_only=True)  # complete, not truncated
    assert state["epoch"] < 3

    # re-running the same command with resume=auto continues from last.ckpt
    r = run_cli_shared("train.py", *RUN, "resume=auto", f"hydra.run.dir={killed}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = read_metrics(whole), read_metrics(killed)
    assert (b["epochs"], b["steps"]) == (a["epochs"], a["steps"]) == (4, 40)
    assert b["metrics"] == a["metrics"], (a["metrics"], b["metrics"])
    print("uninterrupted:", json.dumps(a["metrics"]), "\nkilled+resumed:", json.dumps(b["metrics"]),
          f"\n(killed after epoch {state['epoch']}, step {state['global_step']})")

    # the CSV log keeps the rows written before the kill, without duplicates; only rows logged
    # between the checkpoint and the kill (the killed epoch's train row) may be missing
    def rows(run: Path) -> list[tuple]:
        with (run / "csv" / "metrics.csv").open() as f:
            return [tuple(sorted((k, v) for k, v in r.items() if v)) for r in csv.DictReader(f)]

    whole_rows, resumed_rows = rows(whole), rows(killed)
    assert len(set(resumed_rows)) == len(resumed_rows) and set(resumed_rows) <= set(whole_rows)
    missing = set(whole_rows) - set(resumed_rows)
    assert all(dict(r)["step"] == str(state["global_step"] - 1) for r in missing), missing


def test_resume_auto_without_a_checkpoint_starts_fresh(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=limit", "logger=none", "resume=auto"]))
    assert read_metrics(tmp_path)["steps"] == 6


def test_resume_auto_after_a_finished_run_only_re_evaluates(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=limit", "logger=none"]))
    first = read_metrics(tmp_path)
    train(make_cfg(["debug=limit", "logger=none", "resume=auto"]))
    again = read_metrics(tmp_path)
    assert again["steps"] == first["steps"] == 6 and again["metrics"] == first["metrics"]


def test_resume_from_any_checkpoint_continues_its_step_count(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=limit", "logger=none"], out=tmp_path / "a"))
    start = tmp_path / "a" / "checkpoints" / "last.ckpt"
    train(make_cfg(["debug=limit", "logger=none", "trainer.max_epochs=3", f"ckpt_path={start}"],
                   out=tmp_path / "b"))
    assert read_metrics(tmp_path / "b")["steps"] == 9  # 6 restored + 1 more epoch of 3


@pytest.mark.parametrize(("content", "words"), [
    (None, "ckpt_path: no checkpoint file at"),
    (b"not a checkpoint", "ckpt_path: '{path}' is not a readable checkpoint (UnpicklingError"),
    ("truncated", "ckpt_path: '{path}' is not a readable checkpoint ("),
])
def test_bad_ckpt_path_is_a_config_error(make_cfg, tmp_path: Path, content, words: str) -> None:
    path = tmp_path / "x.ckpt"
    if content == "truncated":
        train(make_cfg(["debug=limit", "logger=none"], out=tmp_path / "a"))
        full = (tmp_path / "a" / "checkpoints" / "last.ckpt").read_bytes()
        path.write_bytes(full[: len(full) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        train(make_cfg(["debug=limit", "logger=none", f"ckpt_path={path}"], out=tmp_path / "b"))
    assert str(e.value).startswith(words.format(path=path)), str(e.value)
    assert "\n" not in str(e.value)


def test_a_checkpoint_that_runs_code_on_load_is_refused(make_cfg, tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Evil()}, path)
    with pytest.raises(ConfigError, match="is not a readable checkpoint"):
        train(make_cfg(["debug=limit", "logger=none", f"ckpt_path={path}"]))


def test_eval_refuses_a_checkpoint_whose_saved_config_names_a_forbidden_target(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=limit", "logger=none"], out=tmp_path / "a"))
    state = torch.load(tmp_path / "a" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    marker = tmp_path / "pwned"
    state["fusionlab_config"]["model"] = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    state["fusionlab_config"]["allowed_targets"] = ["os."]  # the file's own allow-list does not count
    bad = tmp_path / "bad.ckpt"
    torch.save(state, bad)
    refused = r"^ckpt_path: refused: the checkpoint's config has model._target_='os.system'"
    with pytest.raises(ConfigError, match=refused):
        evaluate(make_cfg([f"ckpt_path={bad}"], out=tmp_path / "e", config_name="eval"))
    assert not marker.exists()


def test_resume_must_be_null_or_auto(make_cfg) -> None:
    with pytest.raises(ConfigError, match="resume: must be one of"):
        train(make_cfg(["debug=fast", "resume=always"]))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"w": torch.ones(3)}, path)

    def dies_half_way(obj, f) -> None:
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"w": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))  # the old file, intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_lightning_saves_through_the_atomic_writer_and_every_n_steps(make_cfg, tmp_path: Path,
                                                                      monkeypatch) -> None:
    written: list[tuple[str, int]] = []
    real = ckpt_mod.atomic_torch_save

    def spy(obj, path) -> None:
        written.append((Path(path).name, obj["global_step"]))
        real(obj, path)

    monkeypatch.setattr(ckpt_mod, "atomic_torch_save", spy)
    cfg = make_cfg(["debug=limit", "logger=none", "callbacks.step_checkpoint.every_n_train_steps=2"])
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    # every 2 steps (2, 4) plus best/last at each epoch end (3, 6), always the same two files
    assert {("last.ckpt", 2), ("last.ckpt", 3), ("best.ckpt", 3), ("last.ckpt", 4), ("last.ckpt", 6)} <= set(written)
    assert {name for name, _ in written} == {"last.ckpt", "best.ckpt"}
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    assert isinstance(trainer.strategy.checkpoint_io, ckpt_mod.AtomicCheckpointIO)
