"""A trained run read back from its checkpoint, as data: loaded with ``weights_only=True``, its
saved config checked against the exact registry (:func:`fusionlab.registry.check_saved_config`)
before anything in it is built."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from fusionlab.config.schema import ConfigError
from fusionlab.data.spec import InputSpec
from fusionlab.data.state import state_input_spec
from fusionlab.registry import check_saved_config
from fusionlab.training.checkpoint import load_checkpoint


@dataclass
class SavedRun:
    """What a fusionlab checkpoint holds: the config that built it (checked), the weights, and the
    data state (input spec, classes, fitted preprocessing, ...) when the checkpoint carries one."""

    path: Path
    config: DictConfig
    config_dict: dict[str, Any]
    state_dict: dict[str, Any]
    data_state: dict[str, Any] | None

    def input_spec(self) -> InputSpec | None:
        """The input spec the network was built for (from the data state: with the vocabulary and, for a
        pretrained branch, its sub-word ids), or None. A run that read cached frozen states gets them from
        its data: :func:`fusionlab.jobs.evaluate.network_spec`."""
        if (self.data_state or {}).get("input_spec") is None:
            return None
        return state_input_spec(self.data_state)

    def classes(self) -> list[Any] | None:
        """The class names in label order (from the data state), or None."""
        classes = (self.data_state or {}).get("classes")
        return list(classes) if classes is not None else None


def read_saved_run(path: str | os.PathLike, allowed_targets: Sequence[str] = (), key: str = "ckpt_path") -> SavedRun:
    """Read and check the checkpoint at ``path``; one-line :class:`ConfigError` naming ``key`` for a
    missing file, a run folder, an unreadable or foreign file, or a saved config that names a class
    the registry (plus this job's ``allowed_targets``) does not allow."""
    ckpt = load_checkpoint(path, key)
    saved = ckpt.get("fusionlab_config")
    if not isinstance(saved, dict) or "state_dict" not in ckpt:
        raise ConfigError(key, f"'{path}' was not written by fusionlab (no saved config)")
    check_saved_config(saved, allowed_targets, key)
    config = OmegaConf.create(saved)
    if not isinstance(config.get("model"), DictConfig):
        raise ConfigError(key, f"'{path}': its saved config has no model")
    data_state = ckpt.get("fusionlab_data")
    return SavedRun(Path(path), config, saved, ckpt["state_dict"], data_state if isinstance(data_state, dict) else None)


def for_loading(cfg: DictConfig) -> DictConfig:
    """The saved config with what loading trained weights must not redo switched off: pretrained
    word vectors are not reread from their file (their values are in the weights)."""
    cfg = cfg.copy()
    embedding = OmegaConf.select(cfg, "model.embedding")
    if isinstance(embedding, DictConfig) and embedding.get("pretrained"):
        with open_dict(cfg):
            cfg.model.embedding.pretrained = None
    return cfg
