"""The train job: compose → validate → build → fit → validate/test the final weights → ``metrics.json``.

The weights that are validated and tested are the best checkpoint's, or, with stochastic weight
averaging (``regularizer.swa_lrs``), the averaged weights (saved as ``checkpoints/swa.ckpt``).
Ctrl-C ends a run with one line naming the last checkpoint and ``metrics.json`` with
``status: interrupted``; ``resume=auto`` continues it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from fusionlab.jobs.builders import prepare
from fusionlab.jobs.environment import hydra_choices
from fusionlab.jobs.results import as_floats, describe_data, write_json
from fusionlab.training.checkpoint import checkpoint_step, resume_path
from fusionlab.training.divergence import TrainingDiverged
from fusionlab.training.resumable_csv import CSVLogger as ResumableCSVLogger

log = logging.getLogger("fusionlab")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a job ended by Ctrl-C


def train(cfg: DictConfig) -> float:
    """Train and test the configured model; write ``metrics.json``; return the optimised metric."""
    start = time.perf_counter()
    out = Path(cfg.paths.output_dir)
    trainer: pl.Trainer | None = None
    try:
        dm, module, trainer = prepare(cfg)
        return _fit_and_test(cfg, dm, module, trainer, out, start)
    except (KeyboardInterrupt, SystemExit) as e:
        # Lightning turns Ctrl-C inside fit/validate/test into SystemExit(1) after its own clean-up
        if isinstance(e, SystemExit) and not (trainer is not None and trainer.interrupted):
            raise
        report_interrupted(cfg, trainer, out, start)
        sys.exit(EXIT_INTERRUPTED)


def _last_checkpoint(trainer: pl.Trainer) -> Path | None:
    ckpt = trainer.checkpoint_callback
    if ckpt is None or not ckpt.dirpath:
        return None
    return Path(ckpt.dirpath) / f"{ckpt.CHECKPOINT_NAME_LAST}{ckpt.FILE_EXTENSION}"


def _fit_and_test(cfg: DictConfig, dm: Any, module: Any, trainer: pl.Trainer, out: Path, start: float) -> float:
    ckpt = trainer.checkpoint_callback
    last = _last_checkpoint(trainer)
    start_from = resume_path(cfg.get("resume"), cfg.get("ckpt_path"), last, tuple(cfg.get("allowed_targets") or ()))
    if start_from:
        log.info("resuming from %s", start_from)
        for logger in trainer.loggers:  # keep the CSV rows written up to that checkpoint
            if isinstance(logger, ResumableCSVLogger):
                logger.resume_at(checkpoint_step(start_from))  # before anything is logged
    for logger in trainer.loggers:  # the resolved config: MLflow params, TensorBoard hparams, csv/hparams.yaml
        logger.log_hyperparams(module.config)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=start_from, weights_only=True)
    except TrainingDiverged as e:
        good = str(last) if last is not None and last.is_file() else None
        write_json(out / "metrics.json", {
            "status": "failed", "error": f"{e}; last good checkpoint: {good}", "error_type": type(e).__name__,
            "epoch": e.epoch, "step": e.step, "last_checkpoint": good, "metrics": {},
            "optimized_metric": cfg.optimized_metric, "objective": float("nan"), "seed": cfg.seed,
            "choices": hydra_choices(), "wall_time_s": round(time.perf_counter() - start, 3),
        })
        e.last_checkpoint = good
        raise
    if trainer.interrupted:
        raise KeyboardInterrupt
    tested, weights = final_weights(trainer)
    metrics: dict[str, float] = {}
    last_logged = {k: float(v) for k, v in trainer.callback_metrics.items()}  # before validate/test reset them
    safe = {"ckpt_path": tested, "verbose": False, "weights_only": True}
    if getattr(dm, "has_val", True):  # data.val_size=0: nothing to validate on
        metrics.update(as_floats(trainer.validate(module, datamodule=dm, **safe)[0]))
    if cfg.get("test"):
        metrics.update(as_floats(trainer.test(module, datamodule=dm, **safe)[0]))

    objective = metrics.get(cfg.optimized_metric, float("nan"))
    if cfg.optimized_metric not in metrics:  # e.g. train/loss when there is no validation data
        if weights == "best" and ckpt is not None and ckpt.best_model_score is not None:
            objective = float(ckpt.best_model_score)  # of the best checkpoint
        else:
            objective = last_logged.get(cfg.optimized_metric, float("nan"))  # its last logged value
    if not trainer.is_global_zero:  # DDP: every rank holds the synced metrics; rank 0 writes them once
        return objective
    write_json(out / "metrics.json", {
        "status": "ok",
        "metrics": metrics,
        "optimized_metric": cfg.optimized_metric,
        "objective": objective,
        "seed": cfg.seed,
        "params": module.net.param_counts() if hasattr(module.net, "param_counts") else {},
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "best_checkpoint": tested,
        "tested_weights": weights,
        "data": describe_data(dm, out),
        "choices": hydra_choices(),
        "wall_time_s": round(time.perf_counter() - start, 3),
        "threads": torch.get_num_threads(),
        "world_size": trainer.world_size,
        **{k: v for c in trainer.callbacks if hasattr(c, "summary") for k, v in c.summary().items()},
    })
    log.info("test: %s", {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")})
    print(f"Run folder: {out.resolve()}")
    return objective


def final_weights(trainer: pl.Trainer) -> tuple[str | None, str]:
    """The checkpoint to validate and test, and which weights it holds: with stochastic weight
    averaging the averaged weights the module holds after ``fit`` (saved as ``swa.ckpt`` next to
    ``best.ckpt``, or tested in memory without checkpoints) when its window closed; otherwise the best
    checkpoint (or the final weights when there is none)."""
    swa = next((c for c in trainer.callbacks if isinstance(c, pl.callbacks.StochasticWeightAveraging)), None)
    ckpt = trainer.checkpoint_callback
    if swa is not None and trainer.current_epoch - 1 < swa.swa_end:
        # stopped (early stopping, a callback) before the averaging window closed: Lightning keeps the
        # last weights, not an average, so the averaged weights do not exist to be tested
        log.warning("stochastic weight averaging not applied: training stopped after epoch %d, before its window "
                    "closed (epoch %d); testing the %s weights instead", trainer.current_epoch,
                    swa.swa_end + 1, "best" if ckpt is not None and ckpt.best_model_path else "last")
        swa = None
    if swa is not None:
        if ckpt is None or not ckpt.dirpath:
            return None, "swa"
        path = Path(ckpt.dirpath) / "swa.ckpt"
        trainer.save_checkpoint(path)
        return str(path), "swa"
    if ckpt is not None and ckpt.best_model_path:
        return ckpt.best_model_path, "best"
    return None, "last"


def report_interrupted(cfg: DictConfig, trainer: pl.Trainer | None, out: Path, start: float) -> None:
    """One line on stderr (where the last checkpoint is, how to continue) and ``metrics.json`` with
    ``status: interrupted``."""
    last = _last_checkpoint(trainer) if trainer is not None else None
    good = str(last) if last is not None and last.is_file() else None
    epoch, step = (trainer.current_epoch, trainer.global_step) if trainer is not None else (0, 0)
    if trainer is None or trainer.is_global_zero:
        write_json(out / "metrics.json", {
            "status": "interrupted", "epoch": epoch, "step": step, "last_checkpoint": good, "metrics": {},
            "optimized_metric": cfg.optimized_metric, "objective": float("nan"), "seed": cfg.seed,
            "choices": hydra_choices(), "wall_time_s": round(time.perf_counter() - start, 3),
        })
    where = (f"last checkpoint: {good}; run the same command with resume=auto to continue from it" if good
             else "no checkpoint was written yet; rerunning the command starts afresh")
    print(f"Interrupted at epoch {epoch}, step {step}: {where}", file=sys.stderr)
