"""Dataclass schemas for the config groups that hold plain values (no ``_target_``).

They are registered in Hydra's ConfigStore and sit first in ``train.yaml``'s defaults, so Hydra
itself rejects a misspelt key or a wrong type in these groups while composing. Nodes with a
``_target_`` are checked against their target's signature by :mod:`fusionlab.config.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from fusionlab.config.schema import OneOf, Range


def ranged(default: Any, *constraints: Any) -> Any:
    """A dataclass field with a default and range/choice constraints checked after composition."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default.copy(), metadata={"constraints": constraints})
    return field(default=default, metadata={"constraints": constraints})


@dataclass
class RegularizerConfig:
    """Regularisation applied by the training loop (dropout lives in the model presets)."""

    label_smoothing: float = ranged(0.0, Range(ge=0.0, lt=1.0))
    gradient_clip_val: Optional[float] = ranged(None, Range(gt=0.0))  # noqa: UP045
    gradient_clip_algorithm: str = ranged("norm", OneOf(("norm", "value")))
    decay_bias_and_norm: bool = True
    dropout: Optional[float] = ranged(None, Range(ge=0.0, lt=1.0))  # noqa: UP045
    l1: float = ranged(0.0, Range(ge=0.0))
    l2: float = ranged(0.0, Range(ge=0.0))
    early_stopping_patience: Optional[int] = ranged(None, Range(ge=0))  # noqa: UP045
    early_stopping_monitor: str = "val/acc"
    early_stopping_mode: str = ranged("max", OneOf(("max", "min")))
    swa_lrs: Optional[float] = ranged(None, Range(gt=0.0))  # noqa: UP045
    swa_epoch_start: float = ranged(0.8, Range(gt=0.0))


@dataclass
class SchedulerConfig:
    """A learning-rate scheduler (``scheduler`` is a ``_partial_`` target, or null for none)."""

    scheduler: Any = None
    interval: str = ranged("epoch", OneOf(("epoch", "step")))
    frequency: int = ranged(1, Range(gt=0))
    monitor: Optional[str] = None  # noqa: UP045


@dataclass
class PathsConfig:
    """Where things live; ``output_dir`` is the Hydra run folder."""

    root_dir: str = "."
    data_dir: str = "data"
    output_dir: str = "."
    log_dir: str = "outputs"


@dataclass
class TrainConfig:
    """The top level of ``train.yaml``."""

    task_name: str = "train"
    seed: int = ranged(0, Range(ge=0))
    threads: Optional[int] = ranged(None, Range(ge=1))  # noqa: UP045
    compile: bool = False  # torch.compile the network (fusionlab/training/compiling.py)
    optimized_metric: str = "val/acc"
    train: bool = True
    test: bool = True
    ckpt_path: Optional[str] = None  # noqa: UP045
    resume: Optional[str] = ranged(None, OneOf((None, "auto")))  # noqa: UP045  null | auto
    allowed_targets: list[str] = field(default_factory=list)
    data: Any = None
    model: Any = None
    optimizer: Any = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    init: Any = None
    augmentation: Any = None
    trainer: Any = None
    logger: Any = None
    callbacks: Any = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    extras: Any = None


@dataclass
class EvalConfig:
    """The top level of ``eval.yaml``."""

    task_name: str = "eval"
    ckpt_path: str = "???"
    threads: Optional[int] = ranged(None, Range(ge=1))  # noqa: UP045
    inputs: Optional[str] = None  # noqa: UP045  a labelled file tested with the checkpoint's data state
    allowed_targets: list[str] = field(default_factory=list)
    data: Any = None
    trainer: Any = None
    logger: Any = None
    paths: PathsConfig = field(default_factory=PathsConfig)


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
