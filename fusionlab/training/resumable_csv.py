"""A CSV logger whose file survives a crash and a resume."""

from __future__ import annotations

import csv
import os
from typing import Any

import pytorch_lightning as pl

from fusionlab.registry import register


@register("logger")
class CSVLogger(pl.loggers.CSVLogger):
    """Lightning's ``CSVLogger`` (``<save_dir>/<name>/metrics.csv``), except that a run resumed into
    the same folder keeps the rows written before it stopped, up to the step of the checkpoint it
    resumes from (:meth:`resume_at`); Lightning's own logger empties the file. Rows are flushed as
    they are logged (``flush_logs_every_n_steps=1``: metrics are logged once per epoch)."""

    def __init__(self, save_dir: str, name: str | None, version: int | str | None,
                 prefix: str = "", flush_logs_every_n_steps: int = 1) -> None:
        super().__init__(save_dir, name=name, version=version, prefix=prefix,
                         flush_logs_every_n_steps=flush_logs_every_n_steps)
        self._keep: list[dict[str, Any]] = []

    def resume_at(self, step: int) -> None:
        """Keep the existing rows logged before global step ``step`` (Lightning logs an epoch's metrics
        at ``global_step - 1``); the rest will be logged again by the resumed run."""
        path = os.path.join(self.log_dir, "metrics.csv")
        if os.path.isfile(path):
            with open(path, newline="") as f:
                self._keep = [row for row in csv.DictReader(f) if int(float(row.get("step") or 0)) < step]

    @property
    def experiment(self) -> Any:
        if self._experiment is None:
            writer = super().experiment  # empties metrics.csv
            if self._keep:
                keys = sorted({k for row in self._keep for k in row})
                writer.metrics_keys = keys
                with open(writer.metrics_file_path, "w", newline="") as f:
                    out = csv.DictWriter(f, fieldnames=keys)
                    out.writeheader()
                    out.writerows(self._keep)
                self._keep = []
        return self._experiment
