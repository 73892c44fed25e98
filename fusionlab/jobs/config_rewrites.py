"""Rewrites of a composed config before it is built: ``regularizer.dropout`` applied to every
dropout key of the model, and the no-validation protocol (watch ``train/loss``)."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, open_dict

log = logging.getLogger("fusionlab")


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
