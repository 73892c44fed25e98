"""A dataset declares only its own arguments: the base options arrive through ``**options`` and the
config schema still knows, checks and defaults every key, from one source."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fusionlab.config import ConfigError
from fusionlab.config.schema import schema_for, validate_node
from fusionlab.data import ArrayDataModule
from fusionlab.data.base import ArrayDataModule as Base

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"
BASE_KEYS = [p for p in inspect.signature(Base.__init__).parameters if p != "self"]


def _data_yamls() -> list[Path]:
    return sorted(p for p in CONF.glob("*.yaml") if "_target_" in p.read_text() and "defaults:" not in p.read_text())


def _target(node: dict) -> Any:
    from fusionlab.config.schema import locate

    return locate(node["_target_"])


@pytest.mark.parametrize("path", _data_yamls(), ids=lambda p: p.stem)
def test_every_dataset_takes_every_base_option_and_its_yaml_states_the_class_defaults(path: Path) -> None:
    node = yaml.safe_load(path.read_text())
    cls = _target(node)
    params = inspect.signature(cls).parameters
    assert set(BASE_KEYS) <= set(params), f"{cls.__name__} lacks base options"
    for key, value in node.items():
        if key.startswith("_") or isinstance(value, str) and "${" in value or key == "preprocessing":
            continue
        default = params[key].default
        if default is inspect.Parameter.empty:
            continue  # required (??? in the YAML)
        if value == {} and default is None:
            continue  # no overrides, either way
        assert value == default, f"{path.name}: {key}: {value!r} but {cls.__name__} defaults to {default!r}"


def test_unknown_keys_are_refused_and_base_values_are_range_checked() -> None:
    from omegaconf import OmegaConf

    node = OmegaConf.create({"_target_": "fusionlab.data.UCRDataModule", "name": "GunPoint", "batch_sise": 8})
    with pytest.raises(ConfigError, match="data.batch_sise: unknown key for UCRDataModule"):
        validate_node(node, "data")
    node = OmegaConf.create({"_target_": "fusionlab.data.UCRDataModule", "name": "GunPoint", "batch_size": 0})
    with pytest.raises(ConfigError, match="data.batch_size"):
        validate_node(node, "data")
    assert not schema_for(_target({"_target_": "fusionlab.data.text.TextFileDataModule"})).__open_ended__


class Squares(ArrayDataModule):
    """A dataset in a few lines: its own argument, and the base options through ``**options``."""

    defaults = {"batch_size": 4, "val_size": 0}

    def __init__(self, n: int = 12, **options: Any) -> None:
        super().__init__(**options)
        self.n = n

    def load_arrays(self) -> dict[str, Any]:
        x = np.arange(self.n * 5, dtype=np.float32).reshape(self.n, 1, 5) ** 2
        y = np.arange(self.n) % 2
        return {"x_train": x, "y_train": y, "x_test": x[:4], "y_test": y[:4]}


def test_a_new_dataset_is_one_class_with_checked_options_and_its_own_defaults() -> None:
    sig = inspect.signature(Squares)
    assert sig.parameters["batch_size"].default == 4 and sig.parameters["eval_batch_size"].default == 1000
    dm = Squares(n=10, eval_batch_size=3)
    assert (dm.batch_size, dm.eval_batch_size, dm.val_size) == (4, 3, 0)
    dm.setup()
    assert dm.input_spec.shape == (1, 5) and not dm.has_val
    with pytest.raises(TypeError, match="Squares: got an unexpected keyword argument 'batchsize'"):
        Squares(batchsize=2)
    schema = schema_for(Squares)
    assert {"n", *BASE_KEYS} <= {f for f in schema.__dataclass_fields__}
