"""Command-line entry points: ``fusionlab-train`` and ``fusionlab-eval`` (also ``train.py``/``eval.py``).

A :class:`~fusionlab.config.ConfigError` ends the job with one line on stderr naming the key and
exit status 2 (the traceback only with ``HYDRA_FULL_ERROR=1``).
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fusionlab.config.schema import ConfigError
from fusionlab.config.store import register_configs
from fusionlab.training.divergence import TrainingDiverged

CONFIG_PACKAGE = "pkg://fusionlab.conf"


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("fl.isatty"):
        OmegaConf.register_new_resolver("fl.isatty", lambda: sys.stdout.isatty() and sys.stderr.isatty())


def setup() -> None:
    """Register schemas and resolvers, and make composition errors one line (exit 2); call
    before Hydra composes a config."""
    register_configs()
    _register_resolvers()
    _report_composition_errors()


def report_errors(job: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a failure of ``job`` into a short report instead of a traceback.

    * :class:`ConfigError`: one line on stderr, exit status 2 (no results written).
    * :class:`TrainingDiverged` (NaN/inf loss): one line naming epoch and step, exit status 3;
      ``train`` has written ``metrics.json`` with ``status: failed`` and kept the last good checkpoint.
    * any other exception: ``metrics.json`` (``status: failed``, error type and message) and the
      traceback in ``error.log`` in the job folder, then the usual traceback and exit status 1.

    In a multirun every failure is recorded the same way and the job returns NaN as its objective,
    so one bad job never ends the sweep. ``HYDRA_FULL_ERROR=1`` re-raises everything.
    """

    @functools.wraps(job)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        full = os.environ.get("HYDRA_FULL_ERROR") == "1"
        try:
            return job(*args, **kwargs)
        except ConfigError as e:
            if full:
                raise
            print(f"Error in config: {e}", file=sys.stderr)
            if _in_multirun():  # one bad job must not end the sweep: record it, return a non-finite objective
                _record_failure(e)
                return float("nan")
            sys.exit(EXIT_CONFIG)
        except TrainingDiverged as e:  # train() already wrote metrics.json and kept the last good checkpoint
            if full:
                raise
            print(f"Error: {e}; last good checkpoint: {getattr(e, 'last_checkpoint', None)}", file=sys.stderr)
            if _in_multirun():
                return float("nan")
            sys.exit(EXIT_DIVERGED)
        except Exception as e:
            where = _record_failure(e, traceback.format_exc())
            if full or not _in_multirun():
                raise
            print(f"Error in job: {type(e).__name__}: {_first_line(e)} (traceback in {where})", file=sys.stderr)
            return float("nan")

    return wrapper


EXIT_CONFIG = 2  # invalid config: nothing ran
EXIT_DIVERGED = 3  # the loss became NaN/inf: the run stopped, the last good checkpoint is kept


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

    from fusionlab.training.run import write_json

    if not HydraConfig.initialized():
        return None
    out = Path(HydraConfig.get().runtime.output_dir)
    log = None
    if trace is not None:
        log = out / "error.log"
        out.mkdir(parents=True, exist_ok=True)
        log.write_text(trace)
    write_json(out / "metrics.json", {"status": "failed", "error": f"{error}" if isinstance(error, ConfigError)
                                      else f"{type(error).__name__}: {_first_line(error)}",
                                      "error_type": type(error).__name__, "error_log": str(log) if log else None,
                                      "metrics": {}, "objective": float("nan")})
    return log


def _composition_message(error: Exception) -> str:
    """One line for a config Hydra could not compose: the key, the value, and what is allowed."""
    import dataclasses

    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, MissingConfigException):
        first = lines[0].split(": ", 1)[-1] if lines else "missing config"
        options = ", ".join(error.options or [])
        return f"{first}; available options: {options}" if options else first
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        value = next((line.rsplit("=", 1)[1] for line in lines if "=" in line and "override" in line.lower()), None)
        problem = (getattr(cause, "msg", None) or str(cause)).splitlines()[0]
        text = f"{cause.full_key}: {problem}" + (f" (got {value})" if value is not None else "")
        kind = getattr(cause, "object_type", None)
        unknown_key = isinstance(cause, (ConfigKeyError, ConfigAttributeError))
        if unknown_key and isinstance(kind, type) and dataclasses.is_dataclass(kind):
            text += f"; expected one of {sorted(f.name for f in dataclasses.fields(kind))}"
        elif unknown_key and "+" in str(error):
            text += "; check the spelling (adding a new key needs a leading +, e.g. +key=value)"
        return text
    return "; ".join(lines[:2])


def _report_composition_errors() -> None:
    """Make Hydra report a config it cannot compose (unknown key or option, wrong type, bad
    override syntax) as one line on stderr with exit status 2, like any other config error."""
    import hydra._internal.utils as hydra_utils
    from hydra.errors import ConfigCompositionException, OverrideParseException

    original = hydra_utils.run_and_report
    if getattr(original, "fusionlab", False):
        return

    def run_and_report(func: Any) -> Any:
        def guarded() -> Any:
            try:
                return func()
            except (ConfigCompositionException, OverrideParseException) as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"Error in config: {_composition_message(e)}", file=sys.stderr)
                sys.exit(EXIT_CONFIG)

        return original(guarded)

    run_and_report.fusionlab = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report


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
