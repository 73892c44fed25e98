"""Rebuild a trained LightningModule from a self-contained checkpoint, never reopening training data.

A fusionlab checkpoint holds the weights, ``fusionlab_config`` (the resolved config that built the
run) and ``fusionlab_data`` (the data state: input spec, class names, fitted preprocessing, training
length, tokenizer and vocabulary). :func:`load_module` reads it with ``torch.load(weights_only=True)``
(:func:`fusionlab.jobs.saved_run.read_saved_run`), checks every ``_target_`` of the saved config
against the exact registry before anything is built, and builds only the network, from the config
and the data state alone (:func:`fusionlab.jobs.builders.build_eval_module`).
"""

from __future__ import annotations

import os
from typing import Any

from fusionlab.config.schema import ConfigError
from fusionlab.inference.state import input_spec, missing_parts


def read_run(path: str | os.PathLike, extra_allowed: tuple[str, ...] = (), key: str = "ckpt_path") -> Any:
    """The checked :class:`~fusionlab.jobs.saved_run.SavedRun` at ``path``; a checkpoint written before
    checkpoints carried their data state is refused with one line naming what it lacks."""
    from fusionlab.jobs.saved_run import read_saved_run

    run = read_saved_run(path, tuple(extra_allowed), key)
    lacking = missing_parts(run.data_state)
    if lacking:
        raise ConfigError(key, f"'{path}' was written before checkpoints carried their data; it lacks the "
                          f"{', '.join(lacking)}; retrain it, or test it with eval.py next to its training data")
    return run


def load_module(path: str | os.PathLike, map_location: Any = None, extra_allowed: tuple[str, ...] = ()) -> Any:
    """The trained :class:`~fusionlab.training.module.FusionClassifier` saved at ``path``, in eval mode,
    with the checkpoint's data state as ``module.data_state``; ``map_location``: a device to move it to.

    Raises :class:`ConfigError` (one line) for a missing/unreadable file, a checkpoint that lacks its
    data state, or a saved config naming a ``_target_`` the registry (plus ``extra_allowed``, exact
    dotted names) does not allow.
    """
    from fusionlab.jobs.builders import build_eval_module
    from fusionlab.jobs.saved_run import for_loading

    run = read_run(path, extra_allowed)
    state = run.data_state
    module = build_eval_module(for_loading(run.config), input_spec(state), len(state["classes"]), run.config_dict)
    module.load_state_dict(run.state_dict)
    module.data_state = state
    module.eval()
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        module.to(map_location)
    return module
