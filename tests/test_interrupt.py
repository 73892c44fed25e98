"""Ctrl-C (SIGINT) ends a training run with one line and ``metrics.json`` saying so; ``resume=auto``
then finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_metrics, run_cli_shared

RUN = ["model=cnn", "trainer.max_epochs=50", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=1",
       "+trainer.limit_test_batches=1", "logger=none", "threads=1"]


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_records_an_interrupted_run(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "FUSIONLAB_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    last = run / "checkpoints" / "last.ckpt"
    # Ctrl-C as a shell delivers it: to a process that does not ignore SIGINT (a test process may ignore it)
    proc = subprocess.Popen([sys.executable, "train.py", *RUN, f"hydra.run.dir={run}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("Interrupted at epoch ") and f"last checkpoint: {last}" in lines[0]
    assert "resume=auto" in lines[0]
    m = read_metrics(run)
    assert m["status"] == "interrupted" and m["last_checkpoint"] == str(last) and m["metrics"] == {}
    print(lines[0], "\n", json.dumps(m))

    # the same command with resume=auto finishes the run (fewer epochs now, so it is quick)
    r = run_cli_shared("train.py", *RUN[:1], "trainer.max_epochs=2", *RUN[2:], "resume=auto", f"hydra.run.dir={run}",
                env={"FUSIONLAB_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_metrics(run)["status"] == "ok"
