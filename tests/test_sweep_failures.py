"""A failing job never ends a multirun: its error is recorded in its folder, the others finish."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tests.conftest import read_metrics, run_cli_shared


def test_any_failure_in_a_multirun_is_recorded_and_the_sweep_goes_on(tmp_path: Path, data_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    bad_dir = "/dev/null/data"  # a data folder that cannot be created: fails only at runtime (OSError)
    r = run_cli_shared("train.py", "-m", "model=cnn", "debug=limit", "logger=none", "callbacks=none",
                "optimizer.lr=1e10,0.001", f"paths.data_dir={data_dir},{bad_dir}", f"hydra.sweep.dir={sweep}",
                env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = {}
    for i in range(4):
        folder = sweep / str(i)
        overrides = (folder / ".hydra" / "overrides.yaml").read_text()
        jobs[("lr=0.001" not in overrides, bad_dir in overrides)] = (folder, read_metrics(folder))

    folder, diverged = jobs[(True, False)]
    assert diverged["status"] == "failed" and diverged["error_type"] == "TrainingDiverged"
    assert math.isnan(diverged["objective"])

    for lr_bad in (True, False):
        folder, crashed = jobs[(lr_bad, True)]
        assert crashed["status"] == "failed" and crashed["error_type"] == "NotADirectoryError"
        assert crashed["error"].startswith("NotADirectoryError: ") and math.isnan(crashed["objective"])
        log = (folder / "error.log").read_text()
        assert log.startswith("Traceback") and "NotADirectoryError" in log
        assert crashed["error_log"] == str(folder / "error.log")

    folder, ok = jobs[(False, False)]
    assert ok["status"] == "ok" and ok["steps"] == 6 and not math.isnan(ok["objective"])
    assert "Error in job: NotADirectoryError" in r.stderr and "Traceback" not in r.stderr
    assert not list(sweep.rglob(".*.tmp"))  # results were written atomically (temp file + rename)


def test_a_crash_in_a_single_run_leaves_metrics_and_error_log(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_cli_shared("train.py", "debug=fast", "paths.data_dir=/dev/null/data", f"hydra.run.dir={out}",
                env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 1 and "NotADirectoryError" in r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "failed" and m["error_type"] == "NotADirectoryError"
    assert "Traceback" in (out / "error.log").read_text()
