"""End to end: the test metrics of a padded dataset do not depend on the evaluation batch size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli_shared


@pytest.mark.slow
def test_eval_batch_size_does_not_change_the_test_metrics_of_a_padded_dataset(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    done = run_cli_shared("train.py", "data=ucr", "data.name=JapaneseVowels", "trainer.max_epochs=2",
                   f"paths.output_dir={run}", f"paths.data_dir={data_dir}", "threads=1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "longer than the 26 steps of the longest training series" in done.stderr + done.stdout
    metrics = {}
    for size in (1, 7, 1000):
        out = tmp_path / f"eval{size}"
        done = run_cli_shared("eval.py", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
                              f"+data.eval_batch_size={size}", f"paths.output_dir={out}", "threads=1")
        assert done.returncode == 0, done.stderr[-2000:]
        metrics[size] = json.loads((out / "metrics.json").read_text())["metrics"]
    for key in ("test/acc", "test/f1", "test/loss"):
        assert metrics[1][key] == pytest.approx(metrics[7][key], abs=1e-5) == pytest.approx(metrics[1000][key],
                                                                                            abs=1e-5)
