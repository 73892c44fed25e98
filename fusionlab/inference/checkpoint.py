"""Rebuild a trained LightningModule from a self-contained checkpoint, never reopening training data.

A fusionlab checkpoint holds the weights, ``fusionlab_config`` (the resolved config that built the
run) and ``fusionlab_data`` (the data state: input spec, class names, fitted preprocessing, training
length, tokenizer and vocabulary). :func:`load_module` reads it with ``torch.load(weights_only=True)``,
checks every ``_target_`` of the saved config against the exact registry, and builds the network from
the config and the data state alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from fusionlab.config.schema import ConfigError
from fusionlab.inference.state import input_spec, missing_parts

# used only while fusionlab.registry is not there: the prefixes eval.yaml allows today
_FALLBACK_PREFIXES = ("fusionlab.", "torch.optim.", "torch.nn.", "torchmetrics.", "pytorch_lightning.")


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint's dict, loaded with ``weights_only=True``; a ConfigError naming ``key`` when
    the file is missing, unreadable, not fusionlab's, or written before checkpoints carried their data
    state (one line naming what it lacks)."""
    from fusionlab.training.checkpoint import load_problem

    p = Path(path)
    if p.is_dir():
        hint = p / "checkpoints" / "best.ckpt"
        extra = f"; did you mean '{hint}'?" if hint.is_file() else ""
        raise ConfigError(key, f"'{path}' is a folder, expected a checkpoint file{extra}")
    if not p.is_file():
        raise ConfigError(key, f"no checkpoint file at '{path}'")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ConfigError(key, f"'{path}' is not a readable checkpoint ({load_problem(e)})") from None
    if not isinstance(ckpt, dict) or "fusionlab_config" not in ckpt or "state_dict" not in ckpt:
        raise ConfigError(key, f"'{path}' was not written by fusionlab (no saved config)")
    lacking = missing_parts(ckpt.get("fusionlab_data"))
    if lacking:
        raise ConfigError(key, f"'{path}' was written before checkpoints carried their data; it lacks the "
                          f"{', '.join(lacking)}; retrain, or evaluate it with eval.py next to its training data")
    return ckpt


def check_config(saved: DictConfig, extra_allowed: tuple[str, ...] = ()) -> None:
    """Every ``_target_`` of a saved config must be one the exact registry allows."""
    try:
        from fusionlab.registry import check_saved_config
    except ImportError:  # the registry has not landed: the prefix check eval.py uses today
        from fusionlab.training.run import check_saved_targets

        check_saved_targets(saved, tuple(extra_allowed) + _FALLBACK_PREFIXES)
        return
    check_saved_config(saved, tuple(extra_allowed))


def inference_config(saved: dict[str, Any] | DictConfig) -> DictConfig:
    """The saved config, with what inference must not redo switched off: pretrained word vectors are
    not reread (their values are in the weights)."""
    cfg = OmegaConf.create(saved) if not isinstance(saved, DictConfig) else saved.copy()
    embedding = OmegaConf.select(cfg, "model.embedding")
    if isinstance(embedding, DictConfig) and embedding.get("pretrained"):
        with open_dict(cfg):
            cfg.model.embedding.pretrained = None
    return cfg


def build_network(cfg: DictConfig, state: dict[str, Any]) -> torch.nn.Module:
    """The fused network from a saved model config and a data state (no datamodule)."""
    spec, num_classes = input_spec(state), len(state["classes"])
    try:
        from fusionlab.models import build_fusion_net
    except ImportError:
        from fusionlab.config.build import build

        return build(cfg.model, "model", input_spec=spec, num_classes=num_classes)
    return build_fusion_net(cfg.model, spec, num_classes)


def load_module(path: str | os.PathLike, map_location: Any = None, extra_allowed: tuple[str, ...] = ()) -> Any:
    """The trained :class:`~fusionlab.training.module.FusionClassifier` saved at ``path``, in eval mode,
    with ``data_state`` (the checkpoint's data state) attached; ``map_location`` as in ``torch.load``.

    Raises :class:`ConfigError` (one line) for a missing/unreadable file, a checkpoint that lacks its
    data state, or a saved config naming a ``_target_`` the registry does not allow.
    """
    from fusionlab.training.module import FusionClassifier

    ckpt = read_checkpoint(path, map_location if map_location is not None else "cpu")
    saved = ckpt["fusionlab_config"]
    cfg = inference_config(saved)
    check_config(cfg, extra_allowed)
    state = ckpt["fusionlab_data"]
    net = build_network(cfg, state)
    module = FusionClassifier(net=net, num_classes=len(state["classes"]), optimizer=_no_optimizer, config=saved)
    module.load_state_dict(ckpt["state_dict"])
    module.data_state = state
    module.eval()
    if map_location is not None:
        module.to(map_location if not callable(map_location) else "cpu")
    return module


def _no_optimizer(params: Any) -> torch.optim.Optimizer:
    """A module loaded for inference has no optimizer: training resumes through ``train.py ckpt_path=``."""
    raise RuntimeError("a module loaded with fusionlab.inference.load_module is for inference; resume training "
                       "with `python train.py ckpt_path=<checkpoint>`")
