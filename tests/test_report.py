"""fusionlab-report: grouping by swept keys, statistics, selection on validation (test beside it), failed
jobs, Markdown/CSV/PNG outputs."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fusionlab.report import SelectionError, collect, group, report, swept_keys
from tests.conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def make_job(folder: Path, overrides: list[str], metrics: dict | None = None, status: str = "ok",
             error: str | None = None, wall: float = 2.0, params: int = 1000) -> Path:
    """A job folder as Hydra and fusionlab leave it (files only: report reads nothing else)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status == "ok":
        payload = {"status": "ok", "metrics": metrics or {}, "wall_time_s": wall, "params": {"total": params}}
    elif status == "failed":
        payload = {"status": "failed", "error": error, "metrics": {}}
    else:  # crashed: no metrics.json
        return folder
    (folder / "metrics.json").write_text(json.dumps(payload))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """fusion=concat,gated x seed=0,1,2 (one gated seed failed) + a crashed job, numbered 0..6."""
    root = tmp_path / "multirun"
    accs = {("concat", 0): 0.80, ("concat", 1): 0.84, ("concat", 2): 0.82, ("gated", 0): 0.90, ("gated", 1): 0.94}
    n = 0
    for fusion in ("concat", "gated"):
        for seed in (0, 1, 2):
            overrides = [f"fusion={fusion}", "trainer.max_epochs=5", f"seed={seed}"]
            if (fusion, seed) in accs:
                # validation prefers concat, test prefers gated: the report must select concat
                val = 0.7 if fusion == "concat" else 0.6
                make_job(root / str(n), overrides, {"test/acc": accs[fusion, seed], "val/acc": val},
                         wall=1.0 + seed, params=100 if fusion == "concat" else 200)
            else:
                make_job(root / str(n), overrides, status="failed", error="model.dropout: must be >= 0.0, got -0.5")
            n += 1
    make_job(root / "10", ["fusion=sum", "trainer.max_epochs=5", "seed=0"], status="crashed")
    return root


def test_jobs_are_grouped_by_the_swept_keys_other_than_the_seed(sweep: Path) -> None:
    jobs = collect([sweep])
    assert [j.folder.name for j in jobs] == ["0", "1", "2", "3", "4", "5", "10"]  # natural order
    assert swept_keys(jobs) == ["fusion"]  # trainer.max_epochs is constant, seed is ignored
    assert [(g.setting, len(g.jobs)) for g in group(jobs)] == [("fusion=concat", 3), ("fusion=gated", 3),
                                                                ("fusion=sum", 1)]
    assert [g.setting for g in group(jobs, keys=[])][0] == "fusion=concat trainer.max_epochs=5"


def test_report_writes_markdown_csv_jobs_and_chart_with_statistics(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    text = report([sweep], out=out)
    assert (out / "report.md").read_text() == text
    rows = {r["setting"]: r for r in csv.DictReader((out / "report.csv").open())}
    concat = rows["fusion=concat"]
    assert int(concat["n"]) == 3 and int(concat["failed"]) == 0
    assert float(concat["mean"]) == pytest.approx(0.7)  # the selection metric: val/acc
    assert float(concat["test/acc_mean"]) == pytest.approx(0.82)  # test beside it
    assert float(concat["test/acc_std"]) == pytest.approx(statistics.stdev([0.80, 0.84, 0.82]))
    assert float(concat["wall_time_s"]) == pytest.approx(2.0) and concat["params"] == "100"
    gated = rows["fusion=gated"]
    assert int(gated["n"]) == 2 and int(gated["failed"]) == 1 and float(gated["test/acc_mean"]) == pytest.approx(0.92)
    assert text.startswith("| setting | val/acc (%) mean ± std | n | min | max | test/acc (%) mean ± std |")
    assert "| **`fusion=concat`** (selected) | 70.0 ± 0.0 | 3 | 70.0 | 70.0 | 82.0 ± 2.0 | 2.0 | 100 |" in text
    assert "| `fusion=gated` | 60.0 ± 0.0 | 2 (1 failed) | 60.0 | 60.0 | 92.0 ± 2.8 |" in text
    # failed jobs are listed with their error (recorded, or missing metrics.json)
    assert "Failed jobs (2):" in text
    assert "fusion=gated trainer.max_epochs=5 seed=2): model.dropout: must be >= 0.0, got -0.5" in text
    assert "fusion=sum trainer.max_epochs=5 seed=0): no metrics.json" in text
    jobs = list(csv.DictReader((out / "jobs.csv").open()))
    assert len(jobs) == 7 and sum(j["status"] == "failed" for j in jobs) == 2
    assert (out / "report.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("script", ["scripts/report.py", "scripts/results_table.py"])
def test_scripts_print_the_table_and_write_into_the_first_folder(sweep: Path, script: str) -> None:
    r = subprocess.run([sys.executable, script, str(sweep), "--metric", "val/acc", "--no-plot"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("| setting | val/acc (%) mean ± std |")
    assert "| **`fusion=concat`** (selected) | 70.0 ± 0.0 | 3 |" in r.stdout
    assert (sweep / "report.md").is_file() and (sweep / "report.csv").is_file()
    assert not (sweep / "report.png").exists()


def test_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "fusionlab.report", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "no job folders" in r.stderr and "Traceback" not in r.stderr


def test_settings_are_ranked_and_selected_on_validation_never_on_test(sweep: Path, tmp_path: Path) -> None:
    text = report([sweep], out=tmp_path, plot=False)
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert [r["setting"] for r in rows][:2] == ["fusion=concat", "fusion=gated"]  # val 0.70 > 0.60 (test: 0.82 < 0.92)
    assert [r["selected"] for r in rows] == ["True", "False", "False"] and rows[0]["rank"] == "1"
    assert "Ranked and selected on val/acc (higher is better): `fusion=concat`; test/acc reported beside it" in text
    with pytest.raises(SelectionError, match="never on test"):
        report([sweep], metric="test/acc", out=tmp_path, plot=False)


def test_a_test_metric_is_refused_as_the_selection_metric_on_the_command_line(sweep: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "fusionlab.report", str(sweep), "--metric", "test/acc", "--no-plot"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "settings are selected on validation" in lines[0]
    assert not (sweep / "report.md").exists()


def test_without_validation_the_training_loss_selects_and_lower_is_better(tmp_path: Path) -> None:
    root = tmp_path / "multirun"
    for n, (fusion, loss, test) in enumerate([("sum", 0.9, 0.95), ("gated", 0.3, 0.80)]):
        make_job(root / str(n), [f"fusion={fusion}"], {"train/loss": loss, "test/acc": test})
    text = report([root], out=tmp_path, plot=False)
    assert text.startswith("| setting | train/loss mean ± std |")
    assert "| **`fusion=gated`** (selected) | 0.3000 ± 0.0000 |" in text  # lowest loss, not the best test/acc
    assert "selected on train/loss (lower is better): `fusion=gated`" in text
