"""Sweeps and launchers: unique run folders, joblib with per-job threads, the resumable Optuna search,
submitit (local), Ray (a local cluster), the SLURM preset, and Lightning DDP on CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from fusionlab.cli import setup
from fusionlab.config.schema import ConfigError
from fusionlab.training.run import prepare, set_threads
from tests.conftest import CONF, ROOT, read_metrics, run_cli, run_cli_shared


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {"FUSIONLAB_DATA_DIR": str(data_dir), "FUSIONLAB_LOG_DIR": str(tmp_path / "outputs")}


def jobs(sweep: Path) -> list[dict]:
    return [read_metrics(p.parent) for p in sorted(sweep.glob("*/metrics.json"), key=lambda p: int(p.parent.name))]


# -- run folders ----------------------------------------------------------------------------------
def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path, env: dict[str, str]) -> None:
    args = [sys.executable, "train.py", "debug=fast"]
    procs = [subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()[-2000:]
    runs = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").is_file() for r in runs)
    assert all(len(r.name.rsplit("-", 1)[1]) == 6 for r in runs)  # yyyy-mm-dd_hh-mm-ss-ffffff (microseconds)


# -- threads ----------------------------------------------------------------------------------------
def test_threads_sets_torch_and_omp_threads_and_is_range_checked(make_cfg, monkeypatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    try:
        set_threads(None)
        assert torch.get_num_threads() == before and os.environ["OMP_NUM_THREADS"] == "7"
        prepare(make_cfg(["debug=fast", "threads=2"]))
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="threads"):
        prepare(make_cfg(["debug=fast", "threads=0"]))


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes_with_one_thread_each(tmp_path: Path,
                                                                             env: dict[str, str]) -> None:
    sweep = tmp_path / "sweep"
    r = run_cli("train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1",
                "fusion=concat,sum", "debug=fast", f"hydra.sweep.dir={sweep}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in r.stdout + r.stderr
    results = jobs(sweep)
    assert [m["choices"]["fusion"] for m in results] == ["concat", "sum"]
    assert all(m["status"] == "ok" and m["threads"] == 1 for m in results)


@pytest.mark.slow
# -- Optuna ---------------------------------------------------------------------------------------
def test_optuna_search_resumes_its_study_and_survives_failed_trials(tmp_path: Path, env: dict[str, str]) -> None:
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "search"
    common = ["hparams_search=fusion_optuna", "debug=fast", f"hydra.sweep.dir={sweep}"]
    r = run_cli_shared("train.py", *common, "hydra.sweeper.n_trials=2", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    first = (sweep / "0" / ".hydra" / "overrides.yaml").read_text()
    # rerun with n_trials=4: two more trials, both failing (a bad value is a ConfigError → NaN objective)
    r = run_cli_shared("train.py", *common, "hydra.sweeper.n_trials=4", "regularizer.dropout=-0.5", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="fusion_optuna", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]  # 4 in all, not 2 + 4, not restarted
    assert (sweep / "0" / ".hydra" / "overrides.yaml").read_text() == first  # earlier trials kept
    assert [m["status"] for m in jobs(sweep)] == ["ok", "ok", "failed", "failed"]  # folder k = trial k
    assert study.trials[2].params["fusion"] is not None
    assert {k: v for k, v in study.trials[2].params.items() if k != "regularizer.dropout"} != \
        {k: v for k, v in study.trials[0].params.items() if k != "regularizer.dropout"}  # not replayed
    assert study.best_trial.number in (0, 1)


def test_optuna_reports_every_epoch_and_completes_trials_the_pruner_keeps(tmp_path: Path,
                                                                         env: dict[str, str]) -> None:
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "search"
    r = run_cli_shared("train.py", "hparams_search=fusion_optuna", "debug=limit", "trainer.max_epochs=3",
                "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="fusion_optuna", storage=f"sqlite:///{sweep}/optuna.db")
    for trial, metrics in zip(study.trials, jobs(sweep)):
        assert trial.state.name == "COMPLETE"  # the median rule waits for 5 finished trials
        assert sorted(trial.intermediate_values) == [0, 1, 2]  # val/acc reported after every epoch
        assert trial.value == pytest.approx(max(trial.intermediate_values.values()))  # best checkpoint's
        assert metrics["epochs"] == 3 and metrics["pruned_at_epoch"] is None


def test_optuna_pruner_stops_weak_trials_and_the_study_records_them_as_pruned(tmp_path: Path,
                                                                             env: dict[str, str]) -> None:
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "search"
    # a threshold no accuracy reaches: every trial is pruned at the first epoch after the warm-up
    r = run_cli_shared("train.py", "hparams_search=fusion_optuna", "debug=limit", "trainer.max_epochs=5",
                "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}", "~callbacks.optuna_pruning.pruner",
                "+callbacks.optuna_pruning.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 1.01, "
                "n_warmup_steps: 1}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "no trial completed (all pruned or failed)" in r.stdout + r.stderr
    study = optuna.load_study(study_name="fusion_optuna", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(sorted(t.intermediate_values) == [0, 1] for t in study.trials)  # stopped after epoch 1 of 0-4
    for metrics in jobs(sweep):
        assert metrics["status"] == "ok" and metrics["pruned_at_epoch"] == 1
        assert metrics["epochs"] == 2 and "test/acc" in metrics["metrics"]  # the best checkpoint is still tested


def test_pruning_without_a_study_database_is_a_config_error() -> None:
    from fusionlab.training.pruning import OptunaPruning

    with pytest.raises(ConfigError, match="storage"):
        OptunaPruning(storage=None, study_name="s", trial=0, pruner=None)


@pytest.mark.parametrize(("direction", "monitor", "ok"), [("maximize", "val/acc", True), ("minimize", "val/loss", True),
                                                          ("maximize", "train/loss", False),
                                                          ("minimize", "val/acc", False)])
def test_pruning_refuses_a_metric_that_runs_against_the_study(tmp_path: Path, direction: str, monitor: str,
                                                              ok: bool) -> None:
    optuna = pytest.importorskip("optuna")
    from types import SimpleNamespace

    from fusionlab.training.pruning import OptunaPruning

    storage = f"sqlite:///{tmp_path}/optuna.db"
    optuna.create_study(study_name="s", storage=storage, direction=direction).ask()
    callback = OptunaPruning(storage=storage, study_name="s", trial=0, pruner=optuna.pruners.NopPruner(),
                             monitor=monitor)
    trainer = SimpleNamespace(fast_dev_run=False)
    if ok:
        callback.setup(trainer, None, "fit")
        assert callback._trial.number == 0
    else:
        with pytest.raises(ConfigError, match="hydra.sweeper.direction"):
            callback.setup(trainer, None, "fit")


@pytest.mark.slow
# -- clusters ---------------------------------------------------------------------------------------
def test_submitit_local_launcher_completes_a_sweep_job(tmp_path: Path, env: dict[str, str]) -> None:
    sweep = tmp_path / "sweep"
    r = run_cli("train.py", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                "fusion=gated", "debug=fast", f"hydra.sweep.dir={sweep}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [(m["choices"]["fusion"], m["status"]) for m in jobs(sweep)] == [("gated", "ok")]
    assert (sweep / ".submitit").is_dir()


@pytest.mark.slow
def test_ray_launcher_runs_a_job_on_a_local_ray_cluster(tmp_path: Path, env: dict[str, str]) -> None:
    pytest.importorskip("ray")
    ray_tmp = Path("/tmp") / f"ray-{tmp_path.name[:20]}-{os.getpid()}"  # unix socket paths must stay short
    sweep = tmp_path / "sweep"
    try:
        r = run_cli("train.py", "-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                    "+hydra.launcher.ray.init.include_dashboard=false", "fusion=sum", "debug=fast",
                    f"hydra.sweep.dir={sweep}", env={**env, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "disabled",
                                                     "RAY_USAGE_STATS_ENABLED": "0"})
    finally:
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [(m["choices"]["fusion"], m["status"]) for m in jobs(sweep)] == [("sum", "ok")]


def test_slurm_preset_sets_the_submitit_slurm_launcher() -> None:
    setup()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.timeout_min == 240 and launcher.tasks_per_node == 1


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_synced_metrics_once(tmp_path: Path, env: dict[str, str]) -> None:
    run = tmp_path / "run"
    r = run_cli("train.py", "trainer=ddp_cpu", "debug=limit", "threads=1", f"hydra.run.dir={run}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("Run folder:") == 1  # rank 1 (a re-run of train.py) writes nothing
    m = read_metrics(run)
    assert m["status"] == "ok" and m["world_size"] == 2
    assert m["steps"] == 6 and m["epochs"] == 2  # 3 batches per epoch on each process
    for key in ("val/acc", "test/acc", "test/f1"):
        assert 0.0 <= m["metrics"][key] <= 1.0
    assert 0.0 < m["metrics"]["test/loss"] < 10.0
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "plots" / "confusion_matrix.png").is_file()  # test counts summed over both processes
    assert not list(run.glob(".metrics.json*"))
    assert json.loads((run / "metrics.json").read_text())["choices"]["trainer"] == "ddp_cpu"


# -- the sweeper plugin uses public APIs only ----------------------------------------------------------
def test_sweeper_reads_the_pruning_mark_the_callback_writes() -> None:
    from fusionlab.training.pruning import PRUNED_ATTR
    from hydra_plugins.fusionlab_optuna import resumable

    assert resumable.PRUNED_ATTR == PRUNED_ATTR


def test_sweeper_turns_the_shipped_search_space_into_optuna_distributions() -> None:
    pytest.importorskip("optuna")
    from omegaconf import OmegaConf
    from optuna import distributions as d

    from hydra_plugins.fusionlab_optuna.resumable import search_space

    params = OmegaConf.load(CONF / "hparams_search" / "fusion_optuna.yaml").hydra.sweeper.params
    space, fixed = search_space([f"{k}={v}" for k, v in params.items()] + ["seed=3", "optimizer.lr=0.01"])
    assert fixed == {"seed": "3", "optimizer.lr": "0.01"}  # a fixed value replaces the searched one
    assert space["fusion"] == d.CategoricalDistribution(["concat", "sum", "gated", "attention", "lowrank"])
    assert space["model.branches.cnn.channels"].choices == ("[32,64,64]", "[64,64,64]", "[64,128,128]")
    assert space["model.branches.rnn.hidden"] == d.CategoricalDistribution([32, 64, 128])
    assert space["regularizer.dropout"] == d.UniformDistribution(0.0, 0.5)
    assert "optimizer.lr" not in space


def test_no_private_hydra_or_optuna_internals_are_patched_or_read() -> None:
    sources = [ROOT / "hydra_plugins" / "fusionlab_optuna" / "resumable.py", ROOT / "fusionlab" / "cli.py",
               ROOT / "fusionlab" / "cli_errors.py"]
    for path in sources:
        text = path.read_text()
        for private in ("_internal", "._storage", "._backend", "._rng", "._trial_id", "._return_value",
                        "optuna.create_study =", "run_and_report"):
            assert private not in text, f"{path.name} uses {private}"
