"""The two jobs: ``train`` (compose → validate → instantiate → fit → test) and ``evaluate``."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, check_constraints_tree, validate_targets
from fusionlab.config.store import EvalConfig, TrainConfig
from fusionlab.training.module import FusionClassifier
from fusionlab.training.schedules import with_total_steps

log = logging.getLogger("fusionlab")


# -- helpers ----------------------------------------------------------------------------------------
def validate(cfg: DictConfig, schema: type = TrainConfig) -> None:
    """Range-check the plain groups and check every ``_target_`` node against its signature."""
    check_constraints_tree(schema, cfg)
    validate_targets(cfg, tuple(cfg.get("allowed_targets") or ()))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=float)
    os.replace(tmp, path)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items())}


def build_datamodule(data_cfg: DictConfig) -> pl.LightningDataModule:
    dm = build(data_cfg, "data")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_model(model_cfg: DictConfig, dm: Any) -> torch.nn.Module:
    channels, length = dm.input_shape
    return build(model_cfg, "model", in_channels=channels, seq_len=length, num_classes=dm.num_classes)


def probe(factory: Any, key: str, *args: Any) -> Any:
    """Call a ``_partial_`` factory once on stand-in arguments so a bad value (``lr=-1``) is
    reported now, naming ``key``, instead of from inside ``trainer.fit``."""
    try:
        return factory(*args)
    except (ValueError, TypeError) as e:
        raise ConfigError(key, str(e).splitlines()[0]) from None


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
        augmentation=build(cfg.augmentation, "augmentation") if cfg.get("augmentation") else None,
        config=config_dict,
    )


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
    callbacks = [build(c, f"callbacks.{k}") for k, c in (cfg.get("callbacks") or {}).items() if c]
    callbacks += regularizer_callbacks(cfg.get("regularizer"))
    loggers = [build(c, f"logger.{k}") for k, c in (cfg.get("logger") or {}).items() if c]
    # without a configured ModelCheckpoint, Lightning would add its own: no checkpoints means none
    checkpointing = any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks)
    return build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
                 enable_checkpointing=checkpointing, **overrides)


# -- jobs ---------------------------------------------------------------------------------------------
def prepare(cfg: DictConfig) -> tuple[pl.LightningDataModule, FusionClassifier, pl.Trainer]:
    """Validate ``cfg``, seed everything, and build the datamodule, the module and the trainer."""
    validate(cfg)
    apply_dropout(cfg)
    quiet_lightning()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    config_dict = OmegaConf.to_container(cfg, resolve=True)
    dm = build_datamodule(cfg.data)
    module = build_module(cfg, dm, config_dict)
    reg = cfg.regularizer
    trainer = build_trainer(cfg, gradient_clip_val=reg.gradient_clip_val,
                            gradient_clip_algorithm=reg.gradient_clip_algorithm)
    return dm, module, trainer


def quiet_lightning() -> None:
    """Drop Lightning's start-up chatter (device lines, tips); warnings and errors still show."""
    for name in ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
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
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.get("ckpt_path"))
    ckpt = trainer.checkpoint_callback
    best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else None
    metrics: dict[str, float] = {}
    if trainer.interrupted:
        raise KeyboardInterrupt
    metrics.update(_floats(trainer.validate(module, datamodule=dm, ckpt_path=best, verbose=False)[0]))
    if cfg.get("test"):
        metrics.update(_floats(trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)[0]))

    objective = metrics.get(cfg.optimized_metric, float("nan"))
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
        "data": dm.describe(),
        "choices": hydra_choices(),
        "wall_time_s": round(time.perf_counter() - start, 3),
    })
    log.info("test: %s", {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")})
    print(f"Run folder: {out.resolve()}")
    return objective


def load_checkpoint_config(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config saved in a fusionlab checkpoint and its state dict (loaded with weights_only)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("ckpt_path", f"no checkpoint file at '{path}'")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError("ckpt_path", f"'{path}' is not a readable checkpoint ({type(e).__name__})") from None
    if "fusionlab_config" not in ckpt:
        raise ConfigError("ckpt_path", f"'{path}' was not written by fusionlab (no saved config)")
    return ckpt["fusionlab_config"], ckpt["state_dict"]


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild the model from a checkpoint's own config, test it, write ``metrics.json``."""
    validate(cfg, EvalConfig)
    saved, state = load_checkpoint_config(cfg.ckpt_path)
    run_cfg = OmegaConf.create(saved)
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
