"""Command-line entry points: ``fusionlab-train`` and ``fusionlab-eval`` (also ``train.py``/``eval.py``).

A :class:`~fusionlab.config.ConfigError` ends the job with one line on stderr naming the key and
exit status 2 (the traceback only with ``HYDRA_FULL_ERROR=1``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fusionlab.config.schema import ConfigError
from fusionlab.config.store import register_configs

CONFIG_PACKAGE = "pkg://fusionlab.conf"


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("fl.isatty"):
        OmegaConf.register_new_resolver("fl.isatty", lambda: sys.stdout.isatty() and sys.stderr.isatty())


def setup() -> None:
    """Register schemas and resolvers; call before Hydra composes a config."""
    register_configs()
    _register_resolvers()


def report_errors(job: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ConfigError raised by ``job`` into one line on stderr and exit status 2."""

    @functools.wraps(job)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return job(*args, **kwargs)
        except ConfigError as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"Error in config: {e}", file=sys.stderr)
            if _in_multirun():  # one bad job must not end the sweep: record it, return a non-finite objective
                _record_failure(e)
                return float("nan")
            sys.exit(2)

    return wrapper


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _record_failure(error: ConfigError) -> None:
    from hydra.core.hydra_config import HydraConfig

    from fusionlab.training.run import write_json

    out = Path(HydraConfig.get().runtime.output_dir)
    write_json(out / "metrics.json", {"status": "failed", "error": f"{error}", "metrics": {}})


def _main(config_name: str, job_name: str) -> None:
    import hydra

    from fusionlab.training import run

    setup()
    job = report_errors(getattr(run, job_name))
    hydra.main(version_base="1.3", config_path=CONFIG_PACKAGE, config_name=config_name)(job)()


def train_entry() -> None:
    """``fusionlab-train``: the same as ``python train.py``."""
    _main("train", "train")


def eval_entry() -> None:
    """``fusionlab-eval``: the same as ``python eval.py``."""
    _main("eval", "evaluate")
