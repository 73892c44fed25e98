"""Command-line entry points: ``fusionlab-train`` and ``fusionlab-eval`` (also ``train.py``/``eval.py``).

A :class:`~fusionlab.config.ConfigError` ends the job with one line on stderr naming the key and
exit status 2 (the traceback only with ``HYDRA_FULL_ERROR=1``); so does a config Hydra cannot
compose (unknown key or option, with close matches suggested: see :mod:`fusionlab.cli_errors`).

Nothing here imports torch, Lightning or a data library: ``--help``, ``--cfg job`` and Tab
completion only compose configs. The job code is imported inside the job (:func:`hydra_main`).
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fusionlab.cli_errors import EXIT_CONFIG, config_error_message, full_error, run_with_one_line_errors
from fusionlab.cli_help import print_help, wants_help
from fusionlab.config.schema import ConfigError
from fusionlab.config.store import register_configs

__all__ = ["CONFIG_PACKAGE", "EXIT_CONFIG", "EXIT_DIVERGED", "eval_entry", "hydra_main", "report_errors", "setup",
           "train_entry", "train_job"]

CONFIG_PACKAGE = "pkg://fusionlab.conf"
EXIT_DIVERGED = 3  # the loss became NaN/inf: the run stopped, the last good checkpoint is kept


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("fl.isatty"):
        OmegaConf.register_new_resolver("fl.isatty", lambda: sys.stdout.isatty() and sys.stderr.isatty())


def setup() -> None:
    """Register schemas and resolvers; call before Hydra composes a config."""
    register_configs()
    _register_resolvers()


def _diverged_type() -> type[BaseException] | None:
    """:class:`TrainingDiverged` if the job code (which imports torch) is loaded, else None."""
    module = sys.modules.get("fusionlab.training.divergence")
    return getattr(module, "TrainingDiverged", None)


def report_errors(job: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a failure of ``job`` into a short report instead of a traceback.

    * :class:`ConfigError`: one line on stderr, exit status 2 (no results written).
    * ``TrainingDiverged`` (NaN/inf loss): one line naming epoch and step, exit status 3;
      ``train`` has written ``metrics.json`` with ``status: failed`` and kept the last good checkpoint.
    * any other exception: ``metrics.json`` (``status: failed``, error type and message) and the
      traceback in ``error.log`` in the job folder, then the usual traceback and exit status 1.

    In a multirun every failure is recorded the same way and the job returns NaN as its objective,
    so one bad job never ends the sweep. ``HYDRA_FULL_ERROR=1`` re-raises everything.
    """

    @functools.wraps(job)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        full = full_error()
        try:
            return job(*args, **kwargs)
        except ConfigError as e:
            if full:
                raise
            print(f"Error in config: {config_error_message(e)}", file=sys.stderr)
            if _in_multirun():  # one bad job must not end the sweep: record it, return a non-finite objective
                _record_failure(e)
                return float("nan")
            sys.exit(EXIT_CONFIG)
        except Exception as e:
            diverged = _diverged_type()
            if diverged is not None and isinstance(e, diverged):
                # train() already wrote metrics.json and kept the last good checkpoint
                if full:
                    raise
                print(f"Error: {e}; last good checkpoint: {getattr(e, 'last_checkpoint', None)}", file=sys.stderr)
                if _in_multirun():
                    return float("nan")
                sys.exit(EXIT_DIVERGED)
            where = _record_failure(e, traceback.format_exc())
            if full or not _in_multirun():
                raise
            print(f"Error in job: {type(e).__name__}: {_first_line(e)} (traceback in {where})", file=sys.stderr)
            return float("nan")

    return wrapper


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _record_failure(error: Exception, trace: str | None = None) -> Path | None:
    """Write ``metrics.json`` (status failed) and, given a traceback, ``error.log`` into the job folder."""
    from hydra.core.hydra_config import HydraConfig

    from fusionlab.io import atomic_write

    if not HydraConfig.initialized():
        return None
    out = Path(HydraConfig.get().runtime.output_dir)
    log = None
    if trace is not None:
        log = out / "error.log"
        out.mkdir(parents=True, exist_ok=True)
        log.write_text(trace)
    payload = {"status": "failed", "error": f"{error}" if isinstance(error, ConfigError)
               else f"{type(error).__name__}: {_first_line(error)}",
               "error_type": type(error).__name__, "error_log": str(log) if log else None,
               "metrics": {}, "objective": float("nan")}
    with atomic_write(out / "metrics.json", "w") as f:  # the same format as the job's own metrics.json
        json.dump(payload, f, indent=2, sort_keys=True, default=float)
    return log


def hydra_main(config_path: str, config_name: str) -> Callable[[Callable[..., Any]], Callable[[], Any]]:
    """``hydra.main`` with fusionlab's set-up and error reporting: ``@hydra_main("conf", "train")``.

    The decorated job gets the composed config; import heavy modules (torch, Lightning, data
    libraries) inside it, so that ``--help``, ``--cfg`` and Tab completion never load them.
    """

    def decorate(job: Callable[..., Any]) -> Callable[[], Any]:
        @functools.wraps(job)
        def main() -> Any:
            import hydra

            setup()
            if wants_help(sys.argv[1:]):  # Hydra's own --help copies the ConfigStore once per group: slow
                return run_with_one_line_errors(lambda: print_help(config_path, config_name, sys.argv[1:]),
                                                config_path)
            composed = hydra.main(version_base="1.3", config_path=config_path, config_name=config_name)
            return run_with_one_line_errors(composed(report_errors(job)), config_path)

        return main

    return decorate


def train_job(cfg: Any) -> Any:
    """The training job of ``train.py`` and ``fusionlab-train``: the plain groups' value ranges (seed,
    threads, regularizer, scheduler, paths) are checked before torch and Lightning load, so such a bad
    value fails in well under a second; then :func:`fusionlab.training.run.train` (which checks the rest)."""
    from fusionlab.config.schema import check_constraints_tree
    from fusionlab.config.store import TrainConfig

    check_constraints_tree(TrainConfig, cfg)
    from fusionlab.training.run import train

    return train(cfg)


def _eval_job(cfg: Any) -> Any:
    from fusionlab.training.run import evaluate

    return evaluate(cfg)


def train_entry() -> None:
    """``fusionlab-train``: the same as ``python train.py``."""
    hydra_main(CONFIG_PACKAGE, "train")(train_job)()


def eval_entry() -> None:
    """``fusionlab-eval``: the same as ``python eval.py``."""
    hydra_main(CONFIG_PACKAGE, "eval")(_eval_job)()
