"""Builders: the datamodule, the network, the LightningModule and the Trainer from a config.

:func:`build_net` and :func:`build_eval_module` need no datamodule: a saved config plus the data's
``input_spec`` and ``num_classes`` (from a checkpoint's data state) rebuild a trained model for
eval, predict and export.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, check_constraints_tree, validate_targets
from fusionlab.config.store import TrainConfig
from fusionlab.data.spec import InputSpec
from fusionlab.jobs.config_rewrites import apply_dropout, monitor_training_loss
from fusionlab.jobs.environment import hydra_choices, quiet_lightning, set_threads
from fusionlab.jobs.probes import probe
from fusionlab.training.checkpoint import AtomicCheckpointIO
from fusionlab.training.divergence import DivergenceGuard
from fusionlab.training.module import FusionClassifier
from fusionlab.training.schedules import with_total_steps


def validate(cfg: DictConfig, schema: type = TrainConfig) -> None:
    """Range-check the plain groups and check every ``_target_`` node against the registry and its
    signature (the user's own config: ``allowed_targets`` adds exact class names)."""
    check_constraints_tree(schema, cfg)
    validate_targets(cfg, tuple(cfg.get("allowed_targets") or ()))


def build_datamodule(data_cfg: DictConfig, stage: str = "fit") -> pl.LightningDataModule:
    """The datamodule, prepared and set up for ``stage``."""
    dm = build(data_cfg, "data")
    dm.prepare_data()
    dm.setup(stage)
    return dm


def build_net(model_cfg: DictConfig, input_spec: InputSpec | dict[str, Any], num_classes: int) -> torch.nn.Module:
    """The fused network from its config and the data's shape (no datamodule needed)."""
    try:
        from fusionlab.models import build_fusion_net  # the models' own factory, once it exists
    except ImportError:
        build_fusion_net = None
    spec = InputSpec.coerce(input_spec)
    if build_fusion_net is not None:
        try:
            return build_fusion_net(model_cfg, spec, num_classes)
        except ConfigError as e:
            raise e.under("model") from None
    return build(model_cfg, "model", input_spec=spec, num_classes=num_classes)


def build_model(model_cfg: DictConfig, dm: Any) -> torch.nn.Module:
    """The fused network sized by a set-up datamodule."""
    return build_net(model_cfg, dm.input_spec, dm.num_classes)


def build_optimization(cfg: DictConfig) -> tuple[Any, dict[str, Any] | None]:
    """The optimizer factory and the scheduler spec, each probed once on stand-ins so a bad value
    is reported now, naming its key."""
    optimizer = build(cfg.optimizer, "optimizer")
    stand_in = probe(optimizer, "optimizer", [torch.nn.Parameter(torch.zeros(1))])
    scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None
    if scheduler and scheduler.get("scheduler") is not None:
        scheduler["scheduler"] = build(cfg.scheduler.scheduler, "scheduler.scheduler")
        probe(with_total_steps(scheduler["scheduler"], 100), "scheduler.scheduler", stand_in)
    return optimizer, scheduler


def build_module(cfg: DictConfig, dm: Any, config_dict: dict[str, Any]) -> FusionClassifier:
    """The LightningModule to train: network (initialised), optimizer, scheduler, regularisation,
    augmentation; ``config_dict`` is saved in its checkpoints."""
    net = build_model(cfg.model, dm)
    build(cfg.init, "init")(net)
    optimizer, scheduler = build_optimization(cfg)
    return FusionClassifier(
        net=net,
        num_classes=dm.num_classes,
        optimizer=optimizer,
        scheduler=scheduler,
        label_smoothing=cfg.regularizer.label_smoothing,
        decay_bias_and_norm=cfg.regularizer.decay_bias_and_norm,
        l1=cfg.regularizer.l1,
        l2=cfg.regularizer.l2,
        augmentation=build_augmentation(cfg, dm.input_spec.modality),
        config=config_dict,
    )


def build_eval_module(saved: DictConfig, input_spec: InputSpec | dict[str, Any], num_classes: int,
                      config_dict: dict[str, Any] | None = None) -> FusionClassifier:
    """A LightningModule to load trained weights into, for testing or prediction: only the network is
    built from the saved config (its optimizer, schedule, augmentation and initialisation are not
    needed, so nothing else in the file is instantiated). Check ``saved`` with
    :func:`fusionlab.registry.check_saved_config` first."""
    net = build_net(saved.model, input_spec, num_classes)
    return FusionClassifier(net=net, num_classes=num_classes, optimizer=_no_optimizer,
                            config=config_dict if config_dict is not None else OmegaConf.to_container(saved))


def _no_optimizer(params: Any) -> torch.optim.Optimizer:
    raise RuntimeError("a module rebuilt from a checkpoint is for testing and prediction; resume training with "
                       "`python train.py ckpt_path=<checkpoint>`")


def build_augmentation(cfg: DictConfig, modality: str) -> torch.nn.Module | None:
    """The configured augmentation, refused before training when it cannot read the data's modality."""
    if not cfg.get("augmentation"):
        return None
    aug = build(cfg.augmentation, "augmentation")
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
        start = reg.swa_epoch_start  # a fraction of the epochs, or (>= 1) the epoch itself
        out.append(pl.callbacks.StochasticWeightAveraging(swa_lrs=reg.swa_lrs,
                                                          swa_epoch_start=int(start) if start >= 1 else start))
    return out


def build_trainer(cfg: DictConfig, **overrides: Any) -> pl.Trainer:
    """The Trainer with the configured callbacks and loggers, the divergence guard and atomic
    checkpoint writes."""
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


def prepare(cfg: DictConfig, make_datamodule: Callable[[DictConfig], Any] | None = None,
            **trainer_overrides: Any) -> tuple[pl.LightningDataModule, FusionClassifier, pl.Trainer]:
    """Validate ``cfg``, seed everything, and build the datamodule, the module and the trainer.

    ``make_datamodule(cfg)`` replaces building ``cfg.data`` (the estimator's in-memory arrays); it
    returns a datamodule already set up for fitting."""
    validate(cfg)
    set_threads(cfg.get("threads"))
    apply_dropout(cfg)
    quiet_lightning()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    config_dict = OmegaConf.to_container(cfg, resolve=True)
    dm = make_datamodule(cfg) if make_datamodule is not None else build_datamodule(cfg.data)
    if monitor_training_loss(cfg, dm):
        config_dict = OmegaConf.to_container(cfg, resolve=True)
    module = build_module(cfg, dm, config_dict)
    reg = cfg.regularizer
    trainer = build_trainer(cfg, gradient_clip_val=reg.gradient_clip_val,
                            gradient_clip_algorithm=reg.gradient_clip_algorithm, **trainer_overrides)
    return dm, module, trainer
