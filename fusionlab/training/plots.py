"""Plots of one run: ``<run>/plots/learning_curves.png`` and ``<run>/plots/confusion_matrix.png``.

matplotlib is imported only when a plot is written (no pyplot, no global backend: a bare
``Figure`` renders with Agg), so start-up time does not grow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from fusionlab.config.schema import PositiveInt
from fusionlab.registry import register


@register("callback")
class TrainingPlots(pl.Callback):
    """Learning curves after fitting (from the epoch metrics the module logs) and the confusion matrix
    of the test split after testing (from the module's ``test_confusion`` counts, summed over DDP
    processes). Only global rank 0 writes, and nothing is drawn in a ``trainer.fast_dev_run`` smoke
    check (which writes no logs or checkpoints either)."""

    def __init__(self, dirpath: str, metrics: list[str], dpi: PositiveInt) -> None:
        self.dirpath = Path(dirpath)
        self.metrics = list(metrics)  # no defaults here: conf/callbacks/default.yaml states them
        self.dpi = dpi
        self.history: dict[str, dict[int, float]] = {}  # "train/loss" -> {epoch: value}
        self._epoch: int | None = None
        self.confusion: torch.Tensor | None = None  # the last test confusion matrix (rows: true class)

    # -- learning curves: snapshot the logged epoch metrics ------------------------------------------
    def _record(self, trainer: pl.Trainer, stage: str, epoch: int) -> None:
        for key, value in trainer.callback_metrics.items():
            if key.startswith(f"{stage}/") and key.split("/", 1)[1] in self.metrics:
                self.history.setdefault(key, {})[epoch] = float(value)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.history, self._epoch = {}, None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch is not None:  # train/* of the previous epoch, logged at its end
            self._record(trainer, "train", self._epoch)
        self._epoch = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch is not None:
            self._record(trainer, "train", self._epoch)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking and self._epoch is not None:
            self._record(trainer, "val", self._epoch)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.history and not trainer.fast_dev_run:
            self.write_learning_curves(self.dirpath / "learning_curves.png")

    # -- confusion matrix ------------------------------------------------------------------------------
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metric = getattr(pl_module, "test_confusion", None)
        if metric is None:
            return
        with metric.sync_context():
            counts = metric.counts.detach().cpu().view(metric.num_classes, metric.num_classes).clone()
        metric.reset()
        self.confusion = counts
        if trainer.is_global_zero and counts.sum() > 0 and not trainer.fast_dev_run:
            names = getattr(trainer.datamodule, "class_names", None)  # label order; None: indices
            self.write_confusion_matrix(counts, self.dirpath / "confusion_matrix.png", names)

    # -- drawing ---------------------------------------------------------------------------------------
    def write_learning_curves(self, path: Path) -> None:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        names = [m for m in self.metrics if any(k.endswith(f"/{m}") for k in self.history)]
        fig = Figure(figsize=(4.0 * len(names), 3.2), layout="constrained")
        for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
            for stage in ("train", "val"):
                points = sorted(self.history.get(f"{stage}/{name}", {}).items())
                if points:
                    ax.plot([e + 1 for e, _ in points], [v for _, v in points], marker="o", ms=3, label=stage)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend()
        _save(fig, path, self.dpi)

    def write_confusion_matrix(self, counts: torch.Tensor, path: Path, names: Any = None) -> None:
        _save(confusion_figure(counts, names), path, self.dpi)


def confusion_figure(counts: torch.Tensor, names: Any = None) -> Any:
    """The confusion matrix as a matplotlib ``Figure``: rows are true classes, columns predictions,
    colour the fraction of the true class, each cell its count. ``names`` label the classes in label
    order (the datamodule's ``class_names``); without them, the label indices.

    The figure grows with the number of classes and the longest name, never below a size that holds
    the two-line title and the colour bar's label, and constrained layout places them inside it.
    """
    from matplotlib.figure import Figure

    n = counts.shape[0]
    labels = [str(c) for c in (names if names is not None else range(n))]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} class names for a {n}-class confusion matrix")
    rates = counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1)  # rows: true class
    longest = max(len(label) for label in labels)
    label_in = 0.07 * min(longest, 30)  # inches of tick-label text (about 7 points a character)
    cell = 0.45
    fig = Figure(figsize=(max(4.8, 2.2 + cell * n + label_in), max(4.0, 1.6 + cell * n + label_in)),
                 layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the true class", shrink=min(1.0, 0.4 + 0.1 * n))
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), labels, rotation=90 if n > 10 or longest > 6 else 0)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = int(counts.sum())
    accuracy = float(counts.diag().sum()) / max(total, 1)
    ax.set_title(f"test confusion matrix\nacc {accuracy:.3f}, n={total}", fontsize=10)
    return fig


def _save(fig: Any, path: Path, dpi: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
