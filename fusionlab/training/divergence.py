"""Stop a run whose loss turned non-finite, before a NaN checkpoint replaces a good one."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor

from fusionlab.training.checkpoint import weights_finite


class TrainingDiverged(RuntimeError):
    """The training loss (or the weights) became NaN/inf; ``epoch`` and ``step`` say where first."""

    def __init__(self, epoch: int, step: int, what: str = "loss") -> None:
        super().__init__(f"training diverged: non-finite {what} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.what = epoch, step, what


class DivergenceGuard(pl.Callback):
    """Watch the training loss for NaN/inf without a host sync per step.

    Each step only runs device ops on the loss's device: ``torch.where`` keeps the global step and
    epoch of the first non-finite loss in two 0-dim tensors (-1 while none); the step and epoch
    enter the kernel as scalar arguments, so no host tensor is built or copied. The flags are read
    at most once per validation, once per epoch end, and every ``check_every_n_steps`` steps when
    set. The check runs before any checkpoint callback (Lightning orders those last), so
    ``last.ckpt`` and ``best.ckpt`` keep the last good weights, and raises
    :class:`TrainingDiverged`, which ends ``trainer.fit``.
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._step: Tensor | None = None  # global step of the first non-finite loss, -1 while none
        self._epoch: Tensor | None = None  # its epoch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        if self._step is None or self._step.device != loss.device:
            self._step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._epoch = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()).all() & (self._step < 0)
        self._step = torch.where(bad, trainer.global_step, self._step)
        self._epoch = torch.where(bad, trainer.current_epoch, self._epoch)
        n = self.check_every_n_steps
        if n and trainer.global_step % n == 0:
            self.check(trainer, pl_module)

    def check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Raise :class:`TrainingDiverged` if a non-finite loss was seen or the weights are non-finite
        (the one host read)."""
        if self._step is not None and self._epoch is not None:
            step, epoch = int(self._step), int(self._epoch)
            if step >= 0:
                raise TrainingDiverged(epoch, step)
        if not weights_finite(pl_module):
            raise TrainingDiverged(trainer.current_epoch, trainer.global_step, "weights")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:  # not trainer.validate()
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)
