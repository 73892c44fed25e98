"""Crash-safe checkpoints: atomic writes, ``last.ckpt`` every n steps, resume, RNG state.

A job killed at any moment (SIGKILL, out of memory, a pre-empted node) leaves either the previous
``last.ckpt`` or the new one, never a truncated file: checkpoints are written to a temporary file
in the same folder, flushed to disk, and renamed over the target (``os.replace`` is atomic on
POSIX). ``resume=auto`` then continues from ``<run>/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from fusionlab.config.schema import ConfigError, PositiveInt
from fusionlab.io import atomic_write
from fusionlab.registry import register


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file next to ``path``, fsync, then ``os.replace`` onto ``path``."""
    with atomic_write(path) as f:
        torch.save(obj, f)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer with atomic local writes (remote URLs use Lightning's own)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)


def weights_finite(module: torch.nn.Module) -> bool:
    """True when every parameter is finite (one host sync for the whole model)."""
    flags = [torch.isfinite(p).all() for p in module.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


@register("callback")
class StepCheckpoint(pl.Callback):
    """Refresh ``<dirpath>/last.ckpt`` every ``every_n_train_steps`` optimizer steps, on top of the
    per-epoch ``last.ckpt`` that ModelCheckpoint writes; ``None`` turns it off. A save is skipped
    while the weights are non-finite, so a diverging run never replaces a good checkpoint."""

    def __init__(self, dirpath: str, every_n_train_steps: PositiveInt | None = None, filename: str = "last") -> None:
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.filename = filename

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        n = self.every_n_train_steps
        if not n or trainer.global_step == 0 or trainer.global_step % n or trainer.sanity_checking:
            return
        if trainer.fast_dev_run or not weights_finite(pl_module):
            return
        trainer.save_checkpoint(self.dirpath / f"{self.filename}.ckpt", weights_only=False)  # full state


# -- random state, saved in every checkpoint so a resumed run draws the same numbers ---------------
def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states, as tensors and plain values that
    ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state((s["kind"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["gauss"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- which checkpoint a run resumes from ------------------------------------------------------------
RESUME_CHOICES = (None, "auto")


def checkpoint_file(path: str | os.PathLike, key: str = "ckpt_path") -> Path:
    """``path`` as a checkpoint file, or a :class:`ConfigError` naming ``key``: missing, or a run
    folder (with a hint at the checkpoint inside it)."""
    p = Path(path)
    if p.is_dir():
        inside = [c for c in (p / "checkpoints" / "best.ckpt", p / "checkpoints" / "last.ckpt", p / "best.ckpt",
                              p / "last.ckpt") if c.is_file()]
        hint = f"; did you mean {key}={inside[0]}?" if inside else (
            "; a run keeps its checkpoints in <run>/checkpoints/best.ckpt and last.ckpt")
        raise ConfigError(key, f"'{path}' is a folder, not a checkpoint file{hint}")
    if not p.is_file():
        raise ConfigError(key, f"no checkpoint file at '{path}'")
    return p


def load_checkpoint(path: str | os.PathLike, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint at ``path`` loaded with ``weights_only=True`` (no code runs while reading it),
    or a :class:`ConfigError` naming ``key``."""
    p = checkpoint_file(path, key)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(key, f"'{path}' is not a readable checkpoint ({load_problem(e)})") from None
    if not isinstance(ckpt, dict):
        raise ConfigError(key, f"'{path}' is not a checkpoint (it holds a {type(ckpt).__name__})")
    return ckpt


def check_checkpoint(path: str | os.PathLike, key: str = "ckpt_path", allowed_targets: Sequence[str] = ()) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``path`` is a checkpoint that loads with
    ``weights_only=True`` and whose saved config (if any) names only classes the registry allows
    (``allowed_targets``: the running job's additions; the file's own are ignored)."""
    from fusionlab.registry import check_saved_config

    ckpt = load_checkpoint(path, key)
    if "fusionlab_config" in ckpt:
        check_saved_config(ckpt["fusionlab_config"], allowed_targets, key)


def load_problem(error: Exception) -> str:
    """A short reason from torch.load's (long, multi-line) error."""
    text = str(error).strip()
    if "Weights only load failed" in text:
        found = [line.strip() for line in text.splitlines() if "GLOBAL" in line or "Unsupported" in line]
        detail = f": {found[0][:160]}" if found else ""
        return f"{type(error).__name__}: refused by torch.load(weights_only=True){detail}"
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first[:160]}"


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step a checkpoint was saved at (read without loading the tensors)."""
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))


def resume_path(resume: str | None, ckpt_path: str | None, last: Path | None,
                allowed_targets: Sequence[str] = ()) -> str | None:
    """The checkpoint ``trainer.fit`` starts from.

    ``resume=auto`` takes the run folder's ``last.ckpt`` when it exists (a re-run of an interrupted
    job), else ``ckpt_path`` (if given), else a fresh start; ``resume=null`` takes ``ckpt_path``.
    """
    if resume not in RESUME_CHOICES:
        raise ConfigError("resume", f"must be one of [null, 'auto'], got {resume!r}")
    chosen = None
    if resume == "auto" and last is not None and last.is_file():
        chosen, key = str(last), "resume"
    elif ckpt_path:
        chosen, key = str(ckpt_path), "ckpt_path"
    if chosen is not None:
        check_checkpoint(chosen, key, allowed_targets)
    return chosen
