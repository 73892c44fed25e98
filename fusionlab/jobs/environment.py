"""The process a job runs in: CPU threads, Lightning's start-up chatter, Hydra's chosen options."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig


def set_threads(n: int | None) -> None:
    """``threads=n``: torch's CPU threads for this job, also exported as ``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS`` for libraries that read them later; ``None`` keeps torch's default. Parallel
    jobs (``hydra/launcher=joblib``) should share the cores: ``n_jobs * threads <= cores``."""
    if n is None:
        return
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def quiet_lightning() -> None:
    """Drop Lightning's start-up chatter (device lines, tips); warnings and errors still show."""
    for name in ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Total length of `list` across ranks is zero.*")  # val_size=0
    warnings.filterwarnings("ignore", message=r".*padding='same' with even kernel lengths.*")  # kernel 4, 8: fine
    # metrics are logged once per epoch, so Lightning's per-step logging interval does not apply
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")


def hydra_choices() -> dict[str, Any]:
    """The option chosen in each config group (empty outside a Hydra job)."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra/")}
