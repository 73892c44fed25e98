"""Entry points ``fusionlab-predict`` and ``fusionlab-export`` (also ``predict.py`` / ``export.py``)
and the typed schemas of ``conf/predict.yaml`` and ``conf/export.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from fusionlab.config.schema import OneOf, Range
from fusionlab.config.store import PathsConfig, ranged


@dataclass
class PredictConfig:
    """The top level of ``predict.yaml``."""

    task_name: str = "predict"
    ckpt_path: str = "???"
    input: str = "???"
    output: Optional[str] = None  # noqa: UP045
    text_column: Optional[str] = None  # noqa: UP045
    batch_size: Optional[int] = ranged(None, Range(ge=1))  # noqa: UP045
    device: str = "cpu"
    progress: Optional[bool] = None  # noqa: UP045
    threads: Optional[int] = ranged(None, Range(ge=1))  # noqa: UP045
    allowed_targets: list[str] = field(default_factory=list)
    paths: PathsConfig = field(default_factory=PathsConfig)


@dataclass
class ExportConfig:
    """The top level of ``export.yaml``."""

    task_name: str = "export"
    ckpt_path: str = "???"
    format: str = ranged("onnx", OneOf(("onnx", "torchscript", "exported_program")))
    output: Optional[str] = None  # noqa: UP045
    check_input: Optional[str] = None  # noqa: UP045
    opset: int = ranged(18, Range(ge=9))
    threads: Optional[int] = ranged(None, Range(ge=1))  # noqa: UP045
    allowed_targets: list[str] = field(default_factory=list)
    paths: PathsConfig = field(default_factory=PathsConfig)


def register_schemas() -> None:
    """Put the predict and export schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="predict_schema", node=PredictConfig)
    cs.store(name="export_schema", node=ExportConfig)


def setup() -> None:
    """:func:`fusionlab.cli.setup` plus the predict and export schemas."""
    from fusionlab.cli import setup as cli_setup

    cli_setup()
    register_schemas()


def run_predict(cfg: Any) -> dict:
    from fusionlab.config.schema import check_constraints_tree
    from fusionlab.inference.predict import predict

    check_constraints_tree(PredictConfig, cfg)
    return predict(cfg)


def run_export(cfg: Any) -> dict:
    from fusionlab.config.schema import check_constraints_tree
    from fusionlab.inference.export import export

    check_constraints_tree(ExportConfig, cfg)
    return export(cfg)


def _main(config_name: str, job: Any) -> None:
    from fusionlab.cli import CONFIG_PACKAGE, hydra_main

    register_schemas()
    hydra_main(config_path=CONFIG_PACKAGE, config_name=config_name)(job)()


def predict_entry() -> None:
    """``fusionlab-predict``: the same as ``python predict.py``."""
    _main("predict", run_predict)


def export_entry() -> None:
    """``fusionlab-export``: the same as ``python export.py``."""
    _main("export", run_export)
