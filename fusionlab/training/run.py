"""The two jobs: ``train`` (compose → validate → instantiate → fit → test) and ``evaluate``."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, check_constraints_tree, iter_targets, validate_targets
from fusionlab.config.store import EvalConfig, TrainConfig
from fusionlab.io import atomic_write
from fusionlab.training.checkpoint import AtomicCheckpointIO, checkpoint_step, load_problem, resume_path
from fusionlab.training.divergence import DivergenceGuard, TrainingDiverged
from fusionlab.training.module import FusionClassifier
from fusionlab.training.resumable_csv import CSVLogger as ResumableCSVLogger
from fusionlab.training.schedules import with_total_steps

log = logging.getLogger("fusionlab")


# -- helpers ----------------------------------------------------------------------------------------
def validate(cfg: DictConfig, schema: type = TrainConfig) -> None:
    """Range-check the plain groups and check every ``_target_`` node against its signature."""
    check_constraints_tree(schema, cfg)
    validate_targets(cfg, tuple(cfg.get("allowed_targets") or ()))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename): readers never see half a file."""
    with atomic_write(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=float)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items())}


def build_datamodule(data_cfg: DictConfig) -> pl.LightningDataModule:
    dm = build(data_cfg, "data")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_model(model_cfg: DictConfig, dm: Any) -> torch.nn.Module:
    return build(model_cfg, "model", input_spec=dm.input_spec, num_classes=dm.num_classes)


def probe(factory: Any, key: str, *args: Any) -> Any:
    """Call a ``_partial_`` factory once on stand-in arguments so a bad value (``lr=-1``) is
    reported now, naming ``key``, instead of from inside ``trainer.fit``."""
    try:
        return factory(*args)
    except (ValueError, TypeError) as e:
        message = str(e).splitlines()[0]
        name = _argument_named_in(message, getattr(factory, "keywords", {}))
        if name is None:
            raise ConfigError(key, message) from None
        rule = TORCH_RULES.get(name)
        raise ConfigError(f"{key}.{name}", f"{message}" + (f" (allowed: {rule})" if rule else "")) from None


# what torch's optimizers accept, for the error message (they state only the bad value)
TORCH_RULES = {"lr": ">= 0", "eps": ">= 0", "weight_decay": ">= 0", "momentum": ">= 0", "alpha": ">= 0",
               "betas": "each in [0, 1)", "dampening": "any number", "rho": "in [0, 1]"}
_ALIASES = {"lr": ("learning rate",), "eps": ("epsilon",), "betas": ("beta",)}


def _argument_named_in(message: str, keywords: dict[str, Any]) -> str | None:
    """The keyword argument a constructor's error message is about (``Invalid learning rate`` → lr)."""
    text = message.lower()
    for name in keywords:
        if any(word in text for word in (name.lower(), *_ALIASES.get(name, ()))):
            return name
    return None


def build_module(cfg: DictConfig, dm: Any, config_dict: dict[str, Any]) -> FusionClassifier:
    net = build_model(cfg.model, dm)
    build(cfg.init, "init")(net)
    optimizer = build(cfg.optimizer, "optimizer")
    stand_in = probe(optimizer, "optimizer", [torch.nn.Parameter(torch.zeros(1))])
    scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None
    if scheduler and scheduler.get("scheduler") is not None:
        scheduler["scheduler"] = build(cfg.scheduler.scheduler, "scheduler.scheduler")
        probe(with_total_steps(scheduler["scheduler"], 100), "scheduler.scheduler", stand_in)
    return FusionClassifier(
        net=net,
        num_classes=dm.num_classes,
        optimizer=optimizer,
        scheduler=scheduler,
        label_smoothing=cfg.regularizer.label_smoothing,
        decay_bias_and_norm=cfg.regularizer.decay_bias_and_norm,
        l1=cfg.regularizer.l1,
        l2=cfg.regularizer.l2,
        augmentation=build_augmentation(cfg, dm),
        config=config_dict,
    )


def build_augmentation(cfg: DictConfig, dm: Any) -> torch.nn.Module | None:
    """The configured augmentation, refused before training when it cannot read the data's modality."""
    if not cfg.get("augmentation"):
        return None
    aug = build(cfg.augmentation, "augmentation")
    modality = dm.input_spec.modality
    reads = getattr(aug, "reads", (modality,))
    if modality not in reads:
        choice = hydra_choices().get("augmentation") or type(aug).__name__
        raise ConfigError("augmentation", f"'{choice}' applies to {' or '.join(reads) or 'no single'} data, "
                          f"but the data is {modality}")
    return aug


def regularizer_callbacks(reg: DictConfig | None) -> list[pl.Callback]:
    """Early stopping and stochastic weight averaging, when the regularizer asks for them."""
    out: list[pl.Callback] = []
    if reg is None:
        return out
    if reg.early_stopping_patience is not None:
        out.append(pl.callbacks.EarlyStopping(monitor=reg.early_stopping_monitor, mode=reg.early_stopping_mode,
                                              patience=reg.early_stopping_patience))
    if reg.swa_lrs is not None:
        out.append(pl.callbacks.StochasticWeightAveraging(swa_lrs=reg.swa_lrs, swa_epoch_start=reg.swa_epoch_start))
    return out


def apply_dropout(cfg: DictConfig) -> None:
    """``regularizer.dropout`` (when set) replaces every ``dropout`` key under ``model``: branches and head."""
    rate = cfg.regularizer.get("dropout")
    if rate is None:
        return

    def visit(node: Any) -> None:
        if isinstance(node, DictConfig):
            for key in node:
                if key == "dropout":
                    node[key] = rate
                else:
                    visit(node[key])

    visit(cfg.model)


def build_trainer(cfg: DictConfig, **overrides: Any) -> pl.Trainer:
    for group in ("callbacks", "logger"):
        for k, c in (cfg.get(group) or {}).items():
            if c and "_target_" not in c:  # e.g. callbacks.model_checkpoint.mode=min with callbacks=none
                raise ConfigError(f"{group}.{k}", f"sets {sorted(c)} but no {k} is configured (no _target_); "
                                  f"choose a {group} option that has one or drop these keys")
    callbacks = [build(c, f"callbacks.{k}") for k, c in (cfg.get("callbacks") or {}).items() if c]
    callbacks += regularizer_callbacks(cfg.get("regularizer"))
    callbacks.append(DivergenceGuard())  # a NaN/inf loss ends the run before a NaN checkpoint is written
    loggers = [build(c, f"logger.{k}") for k, c in (cfg.get("logger") or {}).items() if c]
    # without a configured ModelCheckpoint, Lightning would add its own: no checkpoints means none
    checkpointing = any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks)
    overrides.setdefault("plugins", [AtomicCheckpointIO()])  # a killed job never leaves a truncated .ckpt
    return build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
                 enable_checkpointing=checkpointing, **overrides)


# -- jobs ---------------------------------------------------------------------------------------------
def prepare(cfg: DictConfig) -> tuple[pl.LightningDataModule, FusionClassifier, pl.Trainer]:
    """Validate ``cfg``, seed everything, and build the datamodule, the module and the trainer."""
    validate(cfg)
    set_threads(cfg.get("threads"))
    apply_dropout(cfg)
    quiet_lightning()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    config_dict = OmegaConf.to_container(cfg, resolve=True)
    dm = build_datamodule(cfg.data)
    if monitor_training_loss(cfg, dm):
        config_dict = OmegaConf.to_container(cfg, resolve=True)
    module = build_module(cfg, dm, config_dict)
    reg = cfg.regularizer
    trainer = build_trainer(cfg, gradient_clip_val=reg.gradient_clip_val,
                            gradient_clip_algorithm=reg.gradient_clip_algorithm)
    return dm, module, trainer


def monitor_training_loss(cfg: DictConfig, dm: Any) -> bool:
    """With no validation part (``data.val_size=0``), whatever watched a validation metric (the
    best checkpoint, early stopping, a plateau schedule) watches ``train/loss`` instead (the
    protocol of the LSTM-FCN paper), never the test set. True when the config was changed."""
    if getattr(dm, "has_val", True) or not str(cfg.optimized_metric).startswith("val/"):
        return False
    log.info("no validation data (data.val_size=0): monitoring train/loss instead of %s", cfg.optimized_metric)
    watched = str(cfg.optimized_metric)
    with open_dict(cfg):
        cfg.optimized_metric = "train/loss"
        checkpoint = (cfg.get("callbacks") or {}).get("model_checkpoint")
        if checkpoint is not None and checkpoint.get("monitor") in ("train/loss", watched):
            checkpoint.monitor, checkpoint.mode = "train/loss", "min"
        reg = cfg.regularizer
        if reg.early_stopping_monitor in ("train/loss", watched):
            reg.early_stopping_monitor, reg.early_stopping_mode = "train/loss", "min"
        sched = cfg.get("scheduler")
        if sched and sched.get("monitor") in ("train/loss", watched):
            sched.monitor = "train/loss"
            if sched.get("scheduler") is not None and "mode" in sched.scheduler:
                sched.scheduler.mode = "min"
    return True


def set_threads(n: int | None) -> None:
    """``threads=n``: torch's CPU threads for this job, also exported as ``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS`` for libraries that read them later; ``None`` keeps torch's default. Parallel
    jobs (``hydra/launcher=joblib``) should share the cores: ``n_jobs * threads <= cores``."""
    if n is None:
        return
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def quiet_lightning() -> None:
    """Drop Lightning's start-up chatter (device lines, tips); warnings and errors still show."""
    for name in ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Total length of `list` across ranks is zero.*")  # val_size=0
    warnings.filterwarnings("ignore", message=r".*padding='same' with even kernel lengths.*")  # kernel 4, 8: fine
    # metrics are logged once per epoch, so Lightning's per-step logging interval does not apply
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")


def hydra_choices() -> dict[str, Any]:
    """The option chosen in each config group (empty outside a Hydra job)."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra/")}


def train(cfg: DictConfig) -> float:
    """Train and test the configured model; write ``metrics.json``; return the optimised metric."""
    start = time.perf_counter()
    out = Path(cfg.paths.output_dir)
    dm, module, trainer = prepare(cfg)
    ckpt = trainer.checkpoint_callback
    last = Path(ckpt.dirpath) / f"{ckpt.CHECKPOINT_NAME_LAST}{ckpt.FILE_EXTENSION}" if ckpt and ckpt.dirpath else None
    start_from = resume_path(cfg.get("resume"), cfg.get("ckpt_path"), last)
    if start_from:
        log.info("resuming from %s", start_from)
        for logger in trainer.loggers:  # keep the CSV rows written up to that checkpoint
            if isinstance(logger, ResumableCSVLogger):
                logger.resume_at(checkpoint_step(start_from))  # before anything is logged
    for logger in trainer.loggers:  # the resolved config: MLflow params, TensorBoard hparams, csv/hparams.yaml
        logger.log_hyperparams(module.config)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=start_from, weights_only=True)
    except TrainingDiverged as e:
        good = str(last) if last is not None and last.is_file() else None
        write_json(out / "metrics.json", {
            "status": "failed", "error": f"{e}; last good checkpoint: {good}", "error_type": type(e).__name__,
            "epoch": e.epoch, "step": e.step, "last_checkpoint": good, "metrics": {},
            "optimized_metric": cfg.optimized_metric, "objective": float("nan"), "seed": cfg.seed,
            "choices": hydra_choices(), "wall_time_s": round(time.perf_counter() - start, 3),
        })
        e.last_checkpoint = good
        raise
    best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else None
    metrics: dict[str, float] = {}
    if trainer.interrupted:
        raise KeyboardInterrupt
    last_logged = {k: float(v) for k, v in trainer.callback_metrics.items()}  # before validate/test reset them
    safe = {"ckpt_path": best, "verbose": False, "weights_only": True}
    if getattr(dm, "has_val", True):  # data.val_size=0: nothing to validate on
        metrics.update(_floats(trainer.validate(module, datamodule=dm, **safe)[0]))
    if cfg.get("test"):
        metrics.update(_floats(trainer.test(module, datamodule=dm, **safe)[0]))

    objective = metrics.get(cfg.optimized_metric, float("nan"))
    if cfg.optimized_metric not in metrics:  # e.g. train/loss when there is no validation data
        if ckpt is not None and ckpt.best_model_score is not None:
            objective = float(ckpt.best_model_score)  # of the best checkpoint
        else:
            objective = last_logged.get(cfg.optimized_metric, float("nan"))  # its last logged value
    if not trainer.is_global_zero:  # DDP: every rank holds the synced metrics; rank 0 writes them once
        return objective
    write_json(out / "metrics.json", {
        "status": "ok",
        "metrics": metrics,
        "optimized_metric": cfg.optimized_metric,
        "objective": objective,
        "seed": cfg.seed,
        "params": module.net.param_counts() if hasattr(module.net, "param_counts") else {},
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "best_checkpoint": best,
        "data": describe_data(dm, out),
        "choices": hydra_choices(),
        "wall_time_s": round(time.perf_counter() - start, 3),
        "threads": torch.get_num_threads(),
        "world_size": trainer.world_size,
        **{k: v for c in trainer.callbacks if hasattr(c, "summary") for k, v in c.summary().items()},
    })
    log.info("test: %s", {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")})
    print(f"Run folder: {out.resolve()}")
    return objective


def describe_data(dm: Any, out: Path) -> dict[str, Any]:
    """``dm.describe()`` for ``metrics.json``; a text vocabulary (index → token, often tens of
    thousands of entries) goes to its own ``vocab.json`` so sweeps' metrics stay small."""
    data = dm.describe()
    vocabulary = data.pop("vocabulary", None)
    if vocabulary is not None:
        write_json(out / "vocab.json", {"tokens": vocabulary})
        data["vocabulary"] = {"file": "vocab.json", "size": len(vocabulary)}
    return data


def load_checkpoint_config(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config saved in a fusionlab checkpoint and its state dict (loaded with weights_only)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("ckpt_path", f"no checkpoint file at '{path}'")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError("ckpt_path", f"'{path}' is not a readable checkpoint ({load_problem(e)})") from None
    if "fusionlab_config" not in ckpt:
        raise ConfigError("ckpt_path", f"'{path}' was not written by fusionlab (no saved config)")
    return ckpt["fusionlab_config"], ckpt["state_dict"]


def check_saved_targets(saved: DictConfig, allowed: tuple[str, ...]) -> None:
    """A checkpoint's saved config is data from a file: it may only name targets that this job's
    ``allowed_targets`` allow (its own ``allowed_targets`` are ignored)."""
    for path, node in iter_targets(saved):
        target = str(node.get("_target_"))
        if allowed and not target.startswith(allowed):
            raise ConfigError("ckpt_path", f"the checkpoint's config has {path}._target_='{target}', not under an "
                              f"allowed module prefix {list(allowed)}")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild the model from a checkpoint's own config, test it, write ``metrics.json``."""
    validate(cfg, EvalConfig)
    saved, state = load_checkpoint_config(cfg.ckpt_path)
    run_cfg = OmegaConf.create(saved)
    check_saved_targets(run_cfg, tuple(cfg.get("allowed_targets") or ()))
    data_cfg = run_cfg.data
    if cfg.get("data"):  # e.g. data.data_dir=... when the run was made elsewhere
        data_cfg = OmegaConf.merge(data_cfg, cfg.data)
    quiet_lightning()
    pl.seed_everything(run_cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(data_cfg)
    module = build_module(run_cfg, dm, saved)
    module.load_state_dict(state)
    trainer = build_trainer(cfg)
    metrics = _floats(trainer.test(module, datamodule=dm, verbose=False)[0])
    out = Path(cfg.paths.output_dir)
    write_json(out / "metrics.json", {"status": "ok", "metrics": metrics, "ckpt_path": str(cfg.ckpt_path)})
    for k, v in metrics.items():
        print(f"{k}: {v:.4f}")
    print(f"Run folder: {out.resolve()}")
    return metrics
