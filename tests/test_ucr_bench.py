"""scripts/bench_ucr.py: reference columns read from the installed aeon, the table and its summary
rows, the goal check, and the end-to-end run; ``init=keras`` (an ArrowHead-gap candidate)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
import yaml

from fusionlab.config.build import build
from fusionlab.data.spec import InputSpec
from tests.conftest import ROOT, run_cli_shared

sys.path.insert(0, str(ROOT / "scripts"))
import bench_ucr  # noqa: E402

pytest.importorskip("aeon")


def test_reference_accuracies_are_read_from_the_installed_aeon_files() -> None:
    """Resample 0 of InceptionTime/HC2 for ArrowHead, as the CSV in the installed package holds it."""
    import pandas as pd

    for name in ("InceptionTime", "HC2"):
        path = bench_ucr.results_dir() / f"{name}_accuracy.csv"
        frame = pd.read_csv(path, index_col=0)
        got = bench_ucr.published(name)
        assert math.isclose(got["ArrowHead"], float(frame.loc["ArrowHead", "0"]))
        assert "BasicMotions" not in got  # univariate results only: the table shows '–'


# the branches (in config order) and fusion of each experiment the fake runs below stand for
BRANCHES = {"ucr_inception_rnn": (["inception", "rnn"], "gated"), "ucr_inception": (["inception"], "concat"),
            "ucr_rnn": (["rnn"], "concat"), "ucr_mine": (["rnn", "inception"], "late")}


def _job(folder, experiment: str, dataset: str, seed: int, acc: float, wall: float = 10.0) -> None:
    """A finished run as train.py leaves it: overrides, the composed config's branches, metrics.json."""
    branches, fusion = BRANCHES[experiment]
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
        [f"data.name={dataset}", f"experiment={experiment}", f"seed={seed}"]))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"model": {"branches": {b: {"_target_": "x"} for b in branches}}}, sort_keys=False))
    (folder / "metrics.json").write_text(json.dumps({
        "status": "ok", "metrics": {"test/acc": acc}, "seed": seed, "epochs": 60, "wall_time_s": wall,
        "params": {"total": 1000}, "choices": {"experiment": experiment, "fusion": fusion}}))


def test_table_summaries_and_goal_from_finished_runs(tmp_path) -> None:
    """Means ± std per cell, MiniRocket from its own file, aeon's columns, mean and rank rows over the
    right sets, wall times, and the goal lines with their verdicts."""
    accs = {"ucr_inception_rnn": {"ArrowHead": [0.90, 0.92, 0.94], "BasicMotions": [1.0, 1.0, 1.0]},
            "ucr_inception": {"ArrowHead": [0.80, 0.82, 0.84], "BasicMotions": [1.0, 0.975, 1.0]},
            "ucr_rnn": {"ArrowHead": [0.60, 0.62, 0.64], "BasicMotions": [0.9, 0.9, 0.9]}}
    i = 0
    for e, per in accs.items():
        for d, values in per.items():
            for seed, a in enumerate(values):
                _job(tmp_path / str(i), e, d, seed, a)
                i += 1
    runs = [{"dataset": d, "seed": s, "acc": a, "seconds": 2.0}
            for d, a in (("ArrowHead", 0.85), ("BasicMotions", 1.0)) for s in range(3)]
    (tmp_path / bench_ucr.MINIROCKET_FILE).write_text(json.dumps({"runs": runs, "versions": "v", "command": "c"}))
    text = bench_ucr.table(tmp_path, ["ArrowHead", "BasicMotions"])
    inception_time = bench_ucr.published("InceptionTime")["ArrowHead"]
    row = next(line for line in text.splitlines() if line.startswith("| ArrowHead |"))
    assert "92.0 ± 2.0" in row and "82.0 ± 2.0" in row and "62.0 ± 2.0" in row and "85.0 ± 0.0" in row
    assert f"{100 * inception_time:.1f}" in row
    assert next(line for line in text.splitlines() if line.startswith("| BasicMotions |")).endswith("| – | – |")
    mean_row = next(line for line in text.splitlines() if line.startswith("| **mean accuracy, 2 sets"))
    assert "| 96.00 |" in mean_row and "| 92.50 |" in mean_row  # fused (92+100)/2; MiniRocket (85+100)/2
    rank_row = next(line for line in text.splitlines() if line.startswith("| **average rank, 2 sets"))
    header = [c.strip() for c in text.splitlines()[next(i for i, line in enumerate(text.splitlines())
                                                       if line.startswith("| dataset |"))].split("|")]
    ranks = dict(zip(header, (c.strip() for c in rank_row.split("|"))))
    assert ranks["Inception+BiGRU (gated)"] == "1.25"  # 1st on ArrowHead, tied 1st-2nd on BasicMotions
    assert ranks["Inception"] == "3.00" and ranks["BiGRU"] == "4.00" and ranks["MiniRocket"] == "1.75"
    assert "| 10 s |" in text and "2.0 s" in text
    assert "vs MiniRocket on 2 sets: mean 96.00 vs 92.50 (≥, met)" in text
    assert "vs its branch alone Inception on 2 sets: 96.00 vs 90.58 (above, met)" in text


def test_a_new_fused_experiment_gets_its_column_and_goal_lines_without_editing_the_script(tmp_path) -> None:
    """An experiment the script has no label for: its column is named from its runs' branches and fusion,
    and its goal lines compare it with the experiments that train each of its branches alone."""
    accs = {"ucr_mine": [0.95, 0.93], "ucr_inception": [0.80, 0.82], "ucr_rnn": [0.96, 0.98]}
    for i, (e, values) in enumerate(accs.items()):
        for seed, a in enumerate(values):
            _job(tmp_path / f"{i}{seed}", e, "ArrowHead", seed, a)
    labels, alone = bench_ucr.roles(bench_ucr.jobs_by(tmp_path, ["experiment", "data.name"]))
    assert labels["ucr_mine"] == "rnn+inception (late)" and alone == {"ucr_mine": ["ucr_rnn", "ucr_inception"]}
    text = bench_ucr.table(tmp_path, ["ArrowHead"])
    assert "| dataset | Inception | BiGRU | rnn+inception (late) | MiniRocket |" in text
    assert "`ucr_mine` (rnn+inception (late)):" in text
    assert "vs its branch alone BiGRU on 1 sets: 94.00 vs 97.00 (NOT above)" in text
    assert "vs its branch alone Inception on 1 sets: 94.00 vs 81.00 (above, met)" in text


@pytest.mark.slow
def test_bench_runs_end_to_end_on_one_small_set(tmp_path) -> None:
    """One epoch, one seed, a fused model and one of its branches alone on ItalyPowerDemand: the table is
    written with both models' cells and the reference columns filled from this run, and the recorded launch
    command has no absolute path (means over seeds: the report-only tests below). MiniRocket is skipped here
    (numba compiles it for ~40 s in a fresh environment; its runner: the test below)."""
    out = tmp_path / "table.md"
    sweep = tmp_path / "sweep"
    proc = run_cli_shared("scripts/bench_ucr.py", "--datasets", "ItalyPowerDemand", "--models", "ucr_inception_rnn",
                   "ucr_rnn", "--seeds", "0", "--epochs", "1", "--n-jobs", "1", "--skip-minirocket",
                   "--sweep-dir", str(sweep), "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ItalyPowerDemand |"))
    cells = [c.strip() for c in row.split("|")[2:-1]]
    # 2 models, MiniRocket (skipped: no runs), InceptionTime, HC2
    assert len(cells) == 5 and cells[2] == "–" and all(c != "–" for c in cells[:2] + cells[3:]), row
    assert "failed)" not in row and "## The goal, checked" in text
    assert not (sweep / bench_ucr.MINIROCKET_FILE).exists()


def test_minirocket_runs_fit_the_official_unscaled_split_and_resume(tmp_path, monkeypatch) -> None:
    """run_minirocket hands aeon's MiniRocketClassifier the official training split as float64 and unscaled,
    scores the official test split, records one run per (set, seed) and skips the
    recorded ones on a rerun. (aeon's classifier is replaced by a recording stand-in: the real one spends ~40 s
    in numba's first compilation.)"""
    import aeon.classification.convolution_based as cb
    from aeon.datasets import load_classification

    fits: list[tuple] = []

    class Recording:
        def __init__(self, random_state: int, n_jobs: int) -> None:
            self.seed, self.n_jobs = random_state, n_jobs

        def fit(self, x, y):
            fits.append((self.seed, self.n_jobs, x, y))
            self.label = y[0]
            return self

        def predict(self, x):
            return np.full(len(x), self.label)

    monkeypatch.setattr(cb, "MiniRocketClassifier", Recording)
    sweep = tmp_path / "sweep"
    bench_ucr.run_minirocket(["ItalyPowerDemand"], [0, 1], sweep, tmp_path / "data")
    x_train, _ = load_classification("ItalyPowerDemand", split="train")
    _, y_test = load_classification("ItalyPowerDemand", split="test")
    timed = [f for f in fits if f[2].shape[0] == x_train.shape[0]]  # after the warm-up fits (20 series each)
    assert [(f[0], f[1]) for f in timed] == [(0, 1), (1, 1)]
    assert all(f[2].dtype == "float64" for f in timed)
    np.testing.assert_allclose(timed[0][2], x_train, rtol=0, atol=1e-6)  # the raw series: no scaling
    runs = json.loads((sweep / bench_ucr.MINIROCKET_FILE).read_text())["runs"]
    labels = sorted(set(y_test))
    want = float(np.mean(np.array([labels.index(v) for v in y_test]) == int(timed[0][3][0])))
    assert [(r["dataset"], r["seed"]) for r in runs] == [("ItalyPowerDemand", 0), ("ItalyPowerDemand", 1)]
    assert all(r["acc"] == pytest.approx(want) for r in runs)
    fits.clear()
    bench_ucr.run_minirocket(["ItalyPowerDemand"], [0, 1, 2], sweep, tmp_path / "data")
    assert [f[0] for f in fits if f[2].shape[0] == x_train.shape[0]] == [2]  # seeds 0 and 1 were recorded
    assert len(json.loads((sweep / bench_ucr.MINIROCKET_FILE).read_text())["runs"]) == 3


def test_keras_init_sets_he_uniform_convolutions_and_keras_batchnorm(make_cfg) -> None:
    """``init=keras`` (composed from its YAML) on the LSTM-FCN preset: BatchNorm momentum 0.01 / eps 1e-3
    everywhere, convolution weights uniform within sqrt(6 / fan_in) and with he_uniform's spread (PyTorch's
    default is a third as wide in variance), LSTM forget bias 1."""
    cfg = make_cfg(["model=lstm_fcn", "init=keras"])
    torch.manual_seed(0)
    net = build(cfg.model, "model", input_spec=InputSpec("series", (1, 251)), num_classes=3)
    conv = net.branches["fcn"].layers[1].conv
    default_std = conv.weight.std().item()
    build(cfg.init, "init")(net)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms and all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)
    fan_in = conv.weight.shape[1] * conv.weight.shape[2]
    w = conv.weight.detach()
    assert w.abs().max() <= math.sqrt(6 / fan_in) + 1e-6
    assert math.isclose(w.std().item(), math.sqrt(2 / fan_in), rel_tol=0.05)
    assert math.isclose(w.std().item() / default_std, math.sqrt(3 * 2), rel_tol=0.1)
    lstm = next(m for m in net.modules() if isinstance(m, torch.nn.LSTM))
    h = lstm.hidden_size
    assert torch.all(lstm.bias_ih_l0[h : 2 * h] == 1.0) and torch.all(lstm.bias_hh_l0 == 0)


def test_report_only_rewrites_the_table_and_records_its_own_command(tmp_path) -> None:
    """``--report-only`` writes the table from finished runs (no launch) and ends it with the command that
    rewrote it; the provenance lines say how many jobs ran at a time and the load at the end."""
    from paper_common import RUN_FILE

    for seed, a in enumerate([0.80, 0.82, 0.84]):
        _job(tmp_path / str(seed), "ucr_inception", "ArrowHead", seed, a)
    (tmp_path / RUN_FILE).write_text(json.dumps([{
        "script": "s", "command": "c", "returncode": 0, "wall_time_s": 60.0, "n_jobs": 2, "load_average": 1.5,
        "versions": "v", "hardware": "h", "nice": 0, "finished": "t"}]))
    out = tmp_path / "table.md"
    bench_ucr.main(["--report-only", "--datasets", "ArrowHead", "--sweep-dir", str(tmp_path), "--out", str(out)])
    text = out.read_text()
    assert "| ArrowHead | 82.0 ± 2.0 |" in text
    assert "2 job(s) at a time, 1-minute load average 1.5 at the end" in text
    last = text.rstrip().rsplit("This page was last rewritten from the finished runs with:", 1)
    assert len(last) == 2 and last[1].strip().startswith("```bash") and last[1].strip().endswith("```")
