"""One source for every default in the training-recipe groups (init, scheduler, optimizer,
regularizer, trainer, callbacks, logger).

A value a YAML file gives a fusionlab class must not be able to differ from what the class does when
built in Python: for every ``_target_`` node whose class's constructor is fusionlab code, each key
the YAML states is either a parameter without a constructor default (the YAML is the one source) or
equal to that default. Library classes (torch, Lightning) have no fusionlab default to disagree
with: their YAML is the only fusionlab source.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from tests.conftest import CONF

GROUPS = ("init", "scheduler", "optimizer", "regularizer", "trainer", "callbacks", "logger")
FILES = sorted(p for g in GROUPS for p in (CONF / g).glob("*.yaml"))


def target_nodes(node: Any, path: str) -> list[tuple[str, DictConfig]]:
    """Every mapping with a ``_target_`` under ``node`` (nested ones too)."""
    found = []
    if isinstance(node, DictConfig):
        if "_target_" in node:
            found.append((path, node))
        for key in node:
            found += target_nodes(node._get_node(key), f"{path}.{key}")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            found += target_nodes(node._get_node(i), f"{path}[{i}]")
    return found


def defined_by_fusionlab(cls: type) -> bool:
    init = cls.__init__
    return getattr(init, "__module__", "").startswith("fusionlab.")


def disagreements(path: Path) -> list[str]:
    """``file: key`` for each YAML value a fusionlab constructor default could contradict."""
    raw = OmegaConf.load(path)
    problems = []
    for where, node in target_nodes(raw, path.stem):
        cls = get_class(node["_target_"])
        if not defined_by_fusionlab(cls):
            continue
        params = inspect.signature(cls).parameters
        for key in node:
            if str(key).startswith("_") or key not in params:
                continue
            default = params[key].default
            if default is inspect.Parameter.empty:
                continue  # the YAML is the only source
            value = OmegaConf.to_container(node, resolve=False)[key]
            if OmegaConf.is_interpolation(node, key) or _plain(value) != _plain(default):
                problems.append(f"{path.parent.name}/{path.name}: {where}.{key} = {value!r}, but "
                                f"{cls.__name__}'s default is {default!r}")
    return problems


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def test_the_groups_are_found() -> None:
    assert {p.parent.name for p in FILES} == set(GROUPS)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_no_yaml_value_repeats_a_constructor_default_that_could_disagree(path: Path) -> None:
    assert disagreements(path) == []


def test_the_check_finds_a_disagreement(tmp_path: Path) -> None:
    """A YAML that states ``gain: 2.0`` for ``XavierInit`` (constructor default 1.0) is reported."""
    bad = tmp_path / "init" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text("_target_: fusionlab.training.weight_init.XavierInit\ngain: 2.0\nzero_bias: true\n")
    assert disagreements(bad) == ["init/bad.yaml: bad.gain = 2.0, but XavierInit's default is 1.0"]
