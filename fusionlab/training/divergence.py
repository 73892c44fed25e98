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

    Each step only updates two tensors on the loss's device (``first bad step``, ``its epoch``).
    They are read at most once per validation, once per epoch end, and every ``check_every_n_steps``
    steps when set. The check runs before any checkpoint callback (Lightning orders those last),
    so ``last.ckpt`` and ``best.ckpt`` keep the last good weights, and raises
    :class:`TrainingDiverged`, which ends ``trainer.fit``.
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._first: Tensor | None = None  # [step, epoch] of the first non-finite loss, -1 while none

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        if self._first is None or self._first.device != loss.device:
            self._first = torch.full((2,), -1, dtype=torch.long, device=loss.device)
        where = torch.tensor([trainer.global_step, trainer.current_epoch], device="cpu").to(loss.device,
                                                                                             non_blocking=True)
        bad = ~torch.isfinite(loss.detach()).all() & (self._first[0] < 0)
        self._first = torch.where(bad, where, self._first)
        n = self.check_every_n_steps
        if n and trainer.global_step % n == 0:
            self.check(trainer, pl_module)

    def check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Raise :class:`TrainingDiverged` if a non-finite loss was seen or the weights are non-finite."""
        if self._first is not None:
            step, epoch = (int(v) for v in self._first.tolist())
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
