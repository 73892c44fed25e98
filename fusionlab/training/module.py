"""The LightningModule that trains any fused network as a classifier."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.augmentations.base import apply_augmentation
from fusionlab.models.subword_routing import own_param_groups
from fusionlab.training.checkpoint import rng_state, set_rng_state
from fusionlab.training.compiling import (
    CompilePlan,
    CompileReport,
    compile_network,
    describe_optimizer,
    with_fused_step,
)
from fusionlab.training.metrics import ConfusionMetrics, make_metrics
from fusionlab.training.schedules import with_total_steps

log = logging.getLogger("fusionlab")


class FusionClassifier(pl.LightningModule):
    """Cross-entropy training of ``net`` with epoch-level metrics.

    Nothing is synchronised to the host during a step: metric states and the summed loss stay
    on the device and are read once per epoch.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        decay_bias_and_norm: bool = True,
        l1: float = 0.0,
        l2: float = 0.0,
        augmentation: nn.Module | None = None,
        config: dict[str, Any] | None = None,
        compile: bool | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler = scheduler
        self.label_smoothing = label_smoothing
        self.decay_bias_and_norm = decay_bias_and_norm
        self.l1, self.l2 = l1, l2
        self.augmentation = augmentation
        self.config = config or {}
        # compile=true (train.yaml): torch.compile of `net` when fitting starts; None: as the run config says
        self.compile_net = bool(self.config.get("compile", False)) if compile is None else compile
        self.compile_plan: CompilePlan | None = None
        self.metrics = nn.ModuleDict({f"{s}_": make_metrics(num_classes, f"{s}/") for s in ("train", "val", "test")})
        # the test confusion matrix (one scatter_add per batch on the device), read by fusionlab.training.plots
        self.test_confusion = ConfusionMetrics(num_classes)
        self._loss_sum: dict[str, Tensor] = {}
        self._count: dict[str, int] = {}
        self.branch_weight_sum: dict[str, Tensor] = {}

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.net(x, mask)

    # -- compile=true ---------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Compile the network (not this LightningModule) once, when fitting starts: whole, or part by
        part around recurrent layers (:mod:`fusionlab.training.compiling`)."""
        if stage == "fit" and self.compile_net and self.compile_plan is None:
            strategy = getattr(self._trainer, "strategy", None)  # where the network will train
            device_type = strategy.root_device.type if strategy is not None else "cpu"
            self.compile_plan = compile_network(self.net, device_type)
            log.info("torch.compile: %s", self.compile_plan.describe())

    def configure_callbacks(self) -> list[pl.Callback]:
        """With ``compile=true``: :class:`~fusionlab.training.compiling.CompileReport` times the compile."""
        if not self.compile_net:
            return []
        if getattr(self, "_compile_report", None) is None:  # one report across fit, validate and test
            self._compile_report = CompileReport()
        return [self._compile_report]

    # -- steps ----------------------------------------------------------------------------------
    def _step(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        """``batch`` is ``(x, y)`` or ``(x, y, mask)`` (padded data, mask True on real steps)."""
        x, y = batch[0], batch[1]
        mask = batch[2] if len(batch) > 2 else None
        target = y
        if stage == "train":  # augmentations honour the mask; mixup/cutmix give soft targets (and may change it)
            x, target, mask = apply_augmentation(self.augmentation, x, y, mask, self.num_classes)
        logits = self.net(x, mask, *batch[3:])  # text with data.subwords: + sub-word inputs and their mask
        smoothing = self.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(logits, target, label_smoothing=smoothing)
        if stage == "train":
            weight = getattr(getattr(self.net, "fusion", None), "fused_loss", 1.0)
            if weight != 1.0:  # e.g. late fusion's uni-modal ensemble (0: the branches' own losses only)
                loss = weight * loss
            extra = self.auxiliary_loss(target, smoothing)  # e.g. late fusion's per-branch losses
            if extra is not None:
                loss = loss + extra
            if self.l1 or self.l2:
                loss = loss + self.weight_penalty()
        n = y.shape[0]
        detached = loss.detach() * n
        self._loss_sum[stage] = self._loss_sum[stage] + detached if stage in self._loss_sum else detached
        self._count[stage] = self._count.get(stage, 0) + n
        self.metrics[f"{stage}_"].update(logits.detach(), y)
        if stage == "test":
            self.test_confusion.update(logits.detach(), y)
        weights = getattr(getattr(self.net, "fusion", None), "branch_weights", None)
        if stage != "train" and weights is not None:
            s = weights.sum(dim=0)
            self.branch_weight_sum[stage] = self.branch_weight_sum[stage] + s if stage in self.branch_weight_sum else s
        return loss

    def auxiliary_loss(self, target: Tensor, label_smoothing: float) -> Tensor | None:
        """The fusion's own term for the last training forward (:meth:`Fusion.auxiliary_loss`), if any."""
        method = getattr(getattr(self.net, "fusion", None), "auxiliary_loss", None)
        return method(target, label_smoothing) if callable(method) else None

    def weight_penalty(self) -> Tensor:
        """``l1 * sum |w| + l2 * sum w^2`` over the weight matrices (biases and norms excluded)."""
        weights = [p for p in self.net.parameters() if p.dim() > 1 and p.requires_grad]
        penalty = torch.zeros((), device=weights[0].device)
        if self.l1:
            penalty = penalty + self.l1 * sum(w.abs().sum() for w in weights)
        if self.l2:
            penalty = penalty + self.l2 * sum(w.pow(2).sum() for w in weights)
        return penalty

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    # -- epoch-level logging --------------------------------------------------------------------
    def _log_epoch(self, stage: str) -> None:
        if stage not in self._count:
            return
        values = dict(self.metrics[f"{stage}_"].compute())
        values[f"{stage}/loss"] = self._loss_sum.pop(stage) / self._count.pop(stage)
        weights = self.branch_weight_sum.pop(stage, None)
        if weights is not None:
            weights = weights / weights.sum()
            for name, w in zip(getattr(self.net, "input_names", list(self.net.branches)), weights):
                values[f"{stage}/weight_{name}"] = w
        self.metrics[f"{stage}_"].reset()
        # sync_dist: under DDP the per-process loss is averaged over processes (torchmetrics values are
        # already global); a no-op in a single process
        self.log_dict(values, prog_bar=stage != "train", sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        # compile=true: the fused step where the optimizer has one (fusionlab.training.compiling.with_fused_step)
        factory = with_fused_step(self.optimizer_factory) if self.compile_net else self.optimizer_factory
        optimizer = factory(self.param_groups())
        if self.compile_plan is not None:
            self.compile_plan.optimizer = describe_optimizer(optimizer)
        if not self.scheduler or self.scheduler.get("scheduler") is None:
            return optimizer
        spec = dict(self.scheduler)
        # per-step schedules over the whole run (OneCycleLR, WarmupCosine) need the step count;
        # per-epoch ones count epochs
        total = self.trainer.estimated_stepping_batches if spec.get("interval") == "step" else self.trainer.max_epochs
        spec["scheduler"] = with_total_steps(spec["scheduler"], int(total))(optimizer)
        if spec.get("monitor") is None:
            spec.pop("monitor", None)
        return {"optimizer": optimizer, "lr_scheduler": spec}

    def param_groups(self) -> list[dict[str, Any]]:
        """All parameters, or with ``decay_bias_and_norm=False`` two groups: weight matrices (with the
        optimizer's weight decay) and biases / normalisation weights (vectors, ``weight_decay=0``); plus
        one group per part with ``param_group_options`` (a fine-tuned pretrained branch's own ``lr``)."""
        own = own_param_groups(self.net)  # e.g. a fine-tuned pretrained branch with its own lr
        taken = {id(p) for g in own for p in g["params"]}
        params = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        if self.decay_bias_and_norm:
            return [{"params": params}, *own]
        return [{"params": [p for p in params if p.dim() > 1]},
                {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}, *own]

    # -- checkpoints carry what prediction needs -------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Besides weights and trainer state: ``fusionlab_config`` (the resolved run config),
        ``fusionlab_data`` (the datamodule's ``data_state()``: input spec, class names, fitted
        preprocessing, vocabulary; plain types and tensors) and ``fusionlab_rng``. Everything loads
        with ``torch.load(..., weights_only=True)``."""
        checkpoint["fusionlab_config"] = self.config
        data = self._data_state()
        if data is not None:
            checkpoint["fusionlab_data"] = data
        checkpoint["fusionlab_rng"] = rng_state()  # a resumed run draws the same dropout masks etc.

    def _data_state(self) -> dict[str, Any] | None:
        """The datamodule's data state, computed once per datamodule (it does not change while fitting)."""
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is None or not callable(getattr(dm, "data_state", None)):
            return getattr(self, "data_state", None)  # a module loaded from a checkpoint keeps its own
        cached = getattr(self, "_data_state_cache", None)
        if cached is None or cached[0] is not dm:
            cached = (dm, dm.data_state())
            self._data_state_cache = cached
        return cached[1]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "fusionlab_rng" in checkpoint:
            set_rng_state(checkpoint["fusionlab_rng"])

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | os.PathLike, map_location: Any = None,
                             hparams_file: Any = None, strict: bool | None = None, **kwargs: Any) -> FusionClassifier:
        """The trained module saved at ``checkpoint_path``, in eval mode, built from the checkpoint's own
        config and data state (no training data, no constructor arguments): the same as
        :func:`fusionlab.inference.load_module`. Loading is always ``weights_only=True`` and strict;
        ``map_location`` is a device to move the module to."""
        if hparams_file is not None:
            raise TypeError("FusionClassifier.load_from_checkpoint: hparams_file is not used; the checkpoint "
                            "carries its own config")
        unknown = set(kwargs) - {"weights_only"}
        if unknown or strict is False:
            raise TypeError(f"FusionClassifier.load_from_checkpoint: unexpected argument(s) "
                            f"{sorted(unknown) or ['strict=False']}; the module is built from the checkpoint's own "
                            f"config and loaded strictly")
        from fusionlab.inference import load_module

        return load_module(checkpoint_path, map_location=map_location)
