"""Optuna pruning for ``hparams_search=...`` trials: a weak trial stops early instead of using its full budget.

Hydra's Optuna sweeper runs each trial as a separate job, so the trial's Python object lives in the
sweeper, not in the job. This callback reopens the trial from the study's database
(``hydra.sweeper.storage``): the sweeper in ``hydra_plugins/fusionlab_optuna`` makes job number ``k``
Optuna trial ``k``. After every training epoch (after its validation) it reports the monitored metric
(``trial.report(value, epoch)``); when the pruner says the trial is behind the others at that epoch,
it stops training and marks the trial, and the sweeper then records it as ``PRUNED`` instead of
``COMPLETE``. The job itself ends normally: its best checkpoint is tested and ``metrics.json`` says
``pruned_at_epoch``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from fusionlab.config.schema import ConfigError
from fusionlab.registry import register

PRUNED_ATTR = "pruned_at_epoch"  # the trial's user attribute the sweeper reads


@register("callback")
class OptunaPruning(pl.Callback):
    """Report ``monitor`` to Optuna trial ``trial`` of ``study_name`` each epoch; stop when ``pruner`` prunes.

    ``pruner`` is any ``optuna.pruners`` object (``MedianPruner``, ``PercentilePruner``,
    ``HyperbandPruner``, ``ThresholdPruner`` ...); steps are epochs, so its warm-up counts epochs.
    """

    def __init__(self, storage: str | None, study_name: str, trial: int, pruner: Any,
                 monitor: str = "val/acc") -> None:
        if not storage:
            raise ConfigError("storage", "pruning reopens the trial from the study's database: set "
                              "hydra.sweeper.storage (e.g. sqlite:///<sweep dir>/optuna.db), got none")
        self.storage, self.study_name, self.trial_number = storage, study_name, int(trial)
        self.pruner, self.monitor = pruner, monitor
        self.pruned_at: int | None = None
        self._trial: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self._trial is not None or trainer.fast_dev_run:
            return
        import optuna

        study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=self.pruner)
        found = [t for t in study.get_trials(deepcopy=False) if t.number == self.trial_number]
        if not found:
            raise ConfigError("trial", f"study '{self.study_name}' has no trial {self.trial_number}")
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        if maximize == self.monitor.endswith("loss"):  # e.g. train/loss after data.val_size=0
            raise ConfigError("monitor", f"the study {'maximizes' if maximize else 'minimizes'} but reports "
                              f"'{self.monitor}'; set hydra.sweeper.direction="
                              f"{'minimize' if maximize else 'maximize'} (and optimized_metric to match)")
        # the trial's id through the storage's public lookup (FrozenTrial keeps it private)
        storage = optuna.storages.get_storage(self.storage)
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(self.study_name), self.trial_number)
        self._trial = optuna.trial.Trial(study, trial_id)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._trial is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        prune = False
        if trainer.is_global_zero and value is not None:
            self._trial.report(float(value), step=trainer.current_epoch)
            prune = self._trial.should_prune()
        if trainer.world_size > 1:  # one decision for every process
            prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            self.pruned_at = trainer.current_epoch
            if trainer.is_global_zero:
                self._trial.set_user_attr(PRUNED_ATTR, self.pruned_at)
            trainer.should_stop = True

    def summary(self) -> dict[str, Any]:
        """Entries for the run's ``metrics.json``."""
        return {PRUNED_ATTR: self.pruned_at}
