"""Training behaviour: run folders, determinism, eval round trip, and the effect of each recipe option."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from fusionlab.config import ConfigError
from fusionlab.config.build import build
from fusionlab.training.run import evaluate, prepare, train
from tests.conftest import read_metrics, run_cli_shared

SHORT = ["debug=limit"]  # 2 epochs x 3 batches, checkpoints and logs as in a real run


def test_run_folder_holds_config_checkpoints_csv_and_metrics(make_cfg, tmp_path: Path) -> None:
    objective = train(make_cfg([*SHORT, "fusion=gated"]))
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and m["seed"] == 0 and m["epochs"] == 2 and m["steps"] == 6
    assert objective == pytest.approx(m["metrics"]["val/acc"]) == pytest.approx(m["objective"])
    for key in ("val/acc", "val/f1", "val/loss", "test/acc", "test/f1", "test/loss",
                "val/weight_cnn", "val/weight_rnn"):
        assert key in m["metrics"]
    assert m["metrics"]["val/weight_cnn"] + m["metrics"]["val/weight_rnn"] == pytest.approx(1.0, abs=1e-5)
    assert m["params"]["total"] == sum(v for k, v in m["params"].items() if k != "total")
    assert m["wall_time_s"] > 0
    assert m["data"]["sizes"] == {"train": 3500, "val": 500, "test": 1000}
    assert m["choices"]["model"] == "cnn_rnn" and m["choices"]["fusion"] == "gated"
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "train/loss", "train/acc", "val/acc", "val/f1"} <= set(header)


def test_same_seed_gives_identical_metrics_and_other_seed_differs(make_cfg, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / name
        train(make_cfg([*SHORT, f"seed={seed}"], out=out))
        runs[name] = read_metrics(out)["metrics"]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_checkpoint_carries_config_and_loads_with_weights_only(make_cfg, tmp_path: Path) -> None:
    train(make_cfg([*SHORT, "fusion=gated"]))
    ckpt = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["fusionlab_config"]["model"]["fusion"]["_target_"] == "fusionlab.fusions.GatedFusion"


# -- recipe options: each changes what it says --------------------------------------------------------
class Recorder(pl.Callback):
    """Records the learning rate at each epoch start and the gradient norm after each step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.step_lrs: list[float] = []
        self.grad_norms: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.step_lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        self.grad_norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())


def fit_with_recorder(make_cfg, overrides: list[str]) -> tuple[Recorder, pl.LightningModule, pl.Trainer]:
    dm, module, trainer = prepare(make_cfg(["debug=limit", "logger=none", "callbacks=none", *overrides]))
    rec = Recorder()
    trainer.callbacks.append(rec)
    trainer.fit(module, datamodule=dm)
    return rec, module, trainer


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["scheduler=none"], lambda e, lr: lr),
        (["scheduler=cosine"], lambda e, lr: lr * (1 + math.cos(math.pi * e / 4)) / 2),
        (["scheduler=step", "scheduler.scheduler.step_size=2", "scheduler.scheduler.gamma=0.5"],
         lambda e, lr: lr * 0.5 ** (e // 2)),
        (["scheduler=multistep", "scheduler.scheduler.milestones=[1,3]", "scheduler.scheduler.gamma=0.5"],
         lambda e, lr: lr * 0.5 ** ((e >= 1) + (e >= 3))),
        (["scheduler=exponential", "scheduler.scheduler.gamma=0.5"], lambda e, lr: lr * 0.5**e),
    ],
)
def test_learning_rate_follows_the_scheduler_formula(make_cfg, overrides, expected) -> None:
    rec, _, _ = fit_with_recorder(make_cfg, [*overrides, "trainer.max_epochs=4", "optimizer.lr=0.01"])
    assert rec.lrs == pytest.approx([expected(e, 0.01) for e in range(4)])


def test_cosine_warmup_steps_every_batch_by_the_formula(make_cfg) -> None:
    rec, _, _ = fit_with_recorder(make_cfg, ["scheduler=cosine_warmup", "scheduler.scheduler.warmup=2",
                                             "scheduler.scheduler.min_ratio=0.1", "optimizer.lr=0.01"])
    total = 6  # debug=limit: 2 epochs x 3 batches, filled in from the trainer

    def expected(t: int) -> float:
        if t < 2:
            return 0.01 * (t + 1) / 2
        return 0.01 * (0.1 + 0.9 * (1 + math.cos(math.pi * (t - 2) / (total - 2))) / 2)

    assert rec.step_lrs == pytest.approx([expected(t) for t in range(total)])


def test_onecycle_gets_the_run_length_and_matches_torch(make_cfg) -> None:
    rec, _, _ = fit_with_recorder(make_cfg, ["scheduler=onecycle", "scheduler.scheduler.max_lr=0.02"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=6, pct_start=0.3, div_factor=25.0,
                                              final_div_factor=10000.0)
    expected = []
    for _ in range(6):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert rec.step_lrs == pytest.approx(expected)


class ConstantMetric(pl.Callback):
    """Logs a validation metric that never improves."""

    def on_validation_epoch_end(self, trainer, module) -> None:
        module.log("val/constant", 0.5)


def test_plateau_halves_the_rate_when_the_monitored_metric_stalls(make_cfg) -> None:
    cfg = make_cfg(["debug=limit", "logger=none", "callbacks=none", "scheduler=plateau",
                    "scheduler.monitor=val/constant", "scheduler.scheduler.patience=0", "trainer.max_epochs=4",
                    "optimizer.lr=0.01"])
    dm, module, trainer = prepare(cfg)
    rec = Recorder()
    trainer.callbacks.extend([ConstantMetric(), rec])
    trainer.fit(module, datamodule=dm)
    assert rec.lrs == pytest.approx([0.01, 0.01, 0.005, 0.0025])


@pytest.mark.parametrize(("option", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                              ("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop),
                                              ("radam", torch.optim.RAdam)])
def test_optimizer_option_builds_that_optimizer_with_its_settings(make_cfg, option, cls) -> None:
    _, _, trainer = fit_with_recorder(make_cfg, [f"optimizer={option}", "optimizer.lr=0.0123", "scheduler=none"])
    opt = trainer.optimizers[0]
    assert type(opt) is cls and opt.param_groups[0]["lr"] == pytest.approx(0.0123)


def test_no_weight_decay_on_biases_and_norm_weights_as_an_option(make_cfg) -> None:
    _, module, trainer = fit_with_recorder(make_cfg, ["regularizer.decay_bias_and_norm=false",
                                                      "optimizer.weight_decay=0.1", "scheduler=none"])
    decay, no_decay = trainer.optimizers[0].param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() > 1 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    norm = module.net.branches["cnn"].layers[0].norm.weight
    assert any(p is norm for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(module.parameters()))
    _, _, default = fit_with_recorder(make_cfg, ["optimizer.weight_decay=0.1", "scheduler=none"])
    assert len(default.optimizers[0].param_groups) == 1


def test_gradient_clipping_bounds_the_gradient_norm(make_cfg) -> None:
    rec, _, _ = fit_with_recorder(make_cfg, ["regularizer.gradient_clip_val=0.01"])
    assert max(rec.grad_norms) <= 0.01 * 1.001
    free, _, _ = fit_with_recorder(make_cfg, [])
    assert max(free.grad_norms) > 0.05  # without clipping the norm is much larger


def test_label_smoothing_changes_the_training_loss_by_the_formula(make_cfg) -> None:
    dm, module, _ = prepare(make_cfg(["regularizer=smooth", "debug=fast"]))
    x, y = next(iter(dm.train_dataloader()))
    module.net.eval()  # no dropout, so the two forward passes agree
    loss = module._step((x, y), "train")
    logits = module.net(x)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.1).item(), rel=1e-5)
    val_loss = module._step((x, y), "val")  # evaluation loss is never smoothed
    assert val_loss.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)


def test_augmentation_changes_training_batches_only(make_cfg) -> None:
    dm, module, _ = prepare(make_cfg(["augmentation=jitter", "augmentation.sigma=0.5", "debug=fast"]))
    seen: list[torch.Tensor] = []
    module.net.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    x, y = next(iter(dm.train_dataloader()))
    for stage in ("train", "val", "test"):
        module._step((x, y), stage)
    train_x, val_x, test_x = seen
    assert not torch.allclose(train_x, x)
    assert (train_x - x).std().item() == pytest.approx(0.5, rel=0.1)
    assert torch.equal(val_x, x) and torch.equal(test_x, x)


def test_logger_and_callback_options_decide_what_is_written(make_cfg, tmp_path: Path) -> None:
    train(make_cfg([*SHORT, "logger=none", "callbacks=none"], out=tmp_path / "bare"))
    assert not (tmp_path / "bare" / "csv").exists() and not (tmp_path / "bare" / "checkpoints").exists()
    assert read_metrics(tmp_path / "bare")["best_checkpoint"] is None
    train(make_cfg(SHORT, out=tmp_path / "full"))
    assert (tmp_path / "full" / "csv" / "metrics.csv").exists()
    assert (tmp_path / "full" / "checkpoints" / "best.ckpt").exists()


def test_debug_options(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=fast"], out=tmp_path / "fast"))
    assert read_metrics(tmp_path / "fast")["steps"] == 1
    assert not (tmp_path / "fast" / "checkpoints").exists()
    cfg = make_cfg(["debug=overfit", "trainer.max_epochs=60", "data.batch_size=32", "scheduler=none",
                    "model.dropout=0"], out=tmp_path / "overfit")
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    assert trainer.num_training_batches == 1
    assert trainer.callback_metrics["train/acc"].item() == 1.0  # a single batch is memorised
    assert trainer.callback_metrics["train/loss"].item() < 0.05


def test_experiment_states_only_its_deltas(make_cfg) -> None:
    cfg = make_cfg(["experiment=mnist1d_cnn_rnn_gated"])
    assert cfg.task_name == "mnist1d_cnn_rnn_gated"
    assert cfg.model.fusion._target_.endswith("GatedFusion")


def test_l1_and_l2_penalties_add_the_expected_amount(make_cfg) -> None:
    dm, plain, _ = prepare(make_cfg(["debug=fast", "model.dropout=0"]))
    _, penalised, _ = prepare(make_cfg(["debug=fast", "model.dropout=0", "regularizer.l1=0.01", "regularizer.l2=0.1"]))
    x, y = next(iter(dm.train_dataloader()))
    plain.eval()
    penalised.eval()  # BatchNorm in eval mode: both forward passes see the same statistics
    weights = [p for p in penalised.net.parameters() if p.dim() > 1]
    expected = 0.01 * sum(w.abs().sum() for w in weights) + 0.1 * sum(w.pow(2).sum() for w in weights)
    diff = penalised._step((x, y), "train") - plain._step((x, y), "train")  # same seed, same weights
    assert diff.item() == pytest.approx(expected.item(), rel=1e-5)
    assert penalised._step((x, y), "val").item() == pytest.approx(plain._step((x, y), "val").item(), rel=1e-6)


def test_early_stopping_stops_when_the_metric_stalls(make_cfg) -> None:
    cfg = make_cfg(["debug=limit", "logger=none", "callbacks=none", "trainer.max_epochs=10",
                    "regularizer.early_stopping_patience=1", "regularizer.early_stopping_monitor=val/constant"])
    dm, module, trainer = prepare(cfg)
    trainer.callbacks.append(ConstantMetric())
    trainer.fit(module, datamodule=dm)
    assert trainer.should_stop and trainer.current_epoch == 2  # best at epoch 0, one stalled epoch, stop


def test_regularizer_dropout_replaces_every_rate(make_cfg) -> None:
    cfg = make_cfg(["debug=fast", "model=cnn_rnn_transformer", "regularizer.dropout=0.25"])
    _, module, _ = prepare(cfg)
    rates = [m.p for m in module.net.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates and set(rates) == {0.25}
    assert cfg.model.branches.cnn.dropout == 0.25 and cfg.model.dropout == 0.25
    assert any(isinstance(m, torch.nn.Dropout) for m in module.net.branches["cnn"].modules())


def test_stochastic_weight_averaging_runs_at_its_learning_rate(make_cfg) -> None:
    cfg = make_cfg(["debug=limit", "logger=none", "callbacks=none", "trainer.max_epochs=3",
                    "regularizer.swa_lrs=0.001", "regularizer.swa_epoch_start=1"])
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    swa = next(c for c in trainer.callbacks if isinstance(c, pl.callbacks.StochasticWeightAveraging))
    assert swa.n_averaged is not None and int(swa.n_averaged) >= 1  # weights were averaged
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr != pytest.approx(cfg.optimizer.lr) and 0.0005 < lr < cfg.optimizer.lr  # annealing towards swa_lrs


def test_without_validation_data_checkpoints_follow_the_training_loss(make_cfg, tmp_path) -> None:
    """``data.val_size=0`` (the LSTM-FCN protocol): the best checkpoint is the lowest training loss,
    early stopping and the plateau schedule watch it too, and the test set is never used to select."""
    cfg = make_cfg(["data=ucr", "data.name=GunPoint", "data.val_size=0", "model=cnn", "trainer.max_epochs=3",
                    "scheduler=plateau", "regularizer.early_stopping_patience=5", "logger=csv"])
    objective = train(cfg)
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and m["optimized_metric"] == "train/loss"
    assert not any(k.startswith("val/") for k in m["metrics"]) and "test/acc" in m["metrics"]
    saved = m["best_checkpoint"]
    ckpt = torch.load(saved, map_location="cpu", weights_only=True)
    (cb_state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert cb_state["monitor"] == "train/loss"
    import csv

    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    losses = [float(r["train/loss"]) for r in rows]
    assert objective == pytest.approx(min(losses), rel=1e-5)  # the lowest training loss was kept
    assert any(k.startswith("EarlyStopping") and "train/loss" in k for k in ckpt["callbacks"])
    assert ckpt["lr_schedulers"][0]["mode"] == "min"  # the plateau schedule waits for the loss to fall


def test_keys_for_a_callback_that_is_not_configured_are_a_clear_error(make_cfg) -> None:
    from fusionlab.config.schema import ConfigError

    cfg = make_cfg(["debug=fast", "+callbacks.model_checkpoint.mode=min"])  # debug=fast: callbacks=none
    with pytest.raises(ConfigError, match=r"callbacks\.model_checkpoint: sets \['mode'\] but no model_checkpoint"):
        prepare(cfg)


# -- eval.py and bad values: one line naming the key ------------------------------------------------
def test_eval_without_ckpt_path_is_one_line(tmp_path: Path) -> None:
    r = run_cli_shared("eval.py", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        "Error in config: ckpt_path: which checkpoint to test? e.g. python eval.py "
        "ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt"]


def test_eval_accepts_threads_and_hints_at_the_checkpoint_in_a_run_folder(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=limit", "logger=none"], out=tmp_path / "run"))
    with pytest.raises(ConfigError) as e:
        evaluate(make_cfg([f"ckpt_path={tmp_path / 'run'}"], out=tmp_path / "e1", config_name="eval"))
    assert e.value.key == "ckpt_path" and e.value.message == (
        f"'{tmp_path / 'run'}' is a folder, not a checkpoint file; did you mean "
        f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'best.ckpt'}?")
    metrics = evaluate(make_cfg([f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'best.ckpt'}", "threads=1"],
                                out=tmp_path / "e2", config_name="eval"))
    assert torch.get_num_threads() == 1 and "test/acc" in metrics
    assert read_metrics(tmp_path / "run")["metrics"]["test/acc"] == pytest.approx(metrics["test/acc"])


def test_a_learning_rate_that_is_not_a_number_names_the_key(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        train(make_cfg(["optimizer.lr=abc"]))
    assert (e.value.key, e.value.message) == ("optimizer.lr", "expected a number, got 'abc'")
    assert not (tmp_path / "metrics.json").exists()


def test_eval_inputs_tests_a_labelled_file_with_the_checkpoints_data_state(make_cfg, tmp_path: Path) -> None:
    """``eval.py inputs=<file>``: the model is tested on a user's labelled file prepared with the data
    state saved in the checkpoint; the run's data config is not built (here its folder is gone)."""
    train(make_cfg(["debug=limit", "logger=none"], out=tmp_path / "run"))
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    own = evaluate(make_cfg([f"ckpt_path={best}"], out=tmp_path / "e1", config_name="eval"))  # its own test split
    dm = build(make_cfg(["debug=limit"]).data, "data")
    raw = dm.load_arrays()  # the MNIST-1D test split as the user's file: raw values, labels as in the source
    np.savez(tmp_path / "test.npz", x=np.asarray(raw["x_test"]), y=np.asarray(raw["y_test"]))
    from_file = evaluate(make_cfg([f"ckpt_path={best}", f"inputs={tmp_path / 'test.npz'}",
                                   "+data.data_dir=/nonexistent"], out=tmp_path / "e2", config_name="eval"))
    assert from_file["test/acc"] == pytest.approx(own["test/acc"]) and from_file["test/loss"] == pytest.approx(
        own["test/loss"], rel=1e-5)
    assert read_metrics(tmp_path / "e2")["inputs"] == str(tmp_path / "test.npz")
