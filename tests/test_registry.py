"""The registry: discovery of options and classes, exact lookups, and a user's own class from a
folder outside the package (importable module + ``hydra.searchpath``) trained and then evaluated."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from fusionlab import registry
from fusionlab.config import ConfigError
from fusionlab.fusions import Fusion
from tests.conftest import read_metrics, run_cli, run_cli_shared


def test_every_option_of_the_class_groups_builds_a_registered_class_of_its_kind() -> None:
    kinds = {"fusion": "fusion", "branch": "branch", "augmentation": "augmentation", "init": "init",
             "optimizer": "optimizer", "scheduler": "scheduler", "data": "datamodule", "preprocessing": "preprocessing"}
    for group, kind in kinds.items():
        for option in registry.options(group):
            target = registry.option_target(group, option)
            if target is None:  # e.g. scheduler=none, augmentation=none may build nothing
                continue
            entry = registry.lookup(target)
            assert entry is not None and entry.kind == kind, (group, option, target, entry)


def test_discovery_lists_classes_and_name_chosen_parts() -> None:
    fusions = registry.registered("fusion")
    assert all(issubclass(cls, Fusion) for cls in fusions.values())
    # every fusion option names one of the registered fusion classes, and each is reachable by option
    named = {registry.lookup(registry.option_target("fusion", o)).target for o in registry.options("fusion")}
    assert named <= set(fusions)
    assert {"mean", "max", "last", "attention"} <= set(registry.named("pooler"))
    assert {"raw", "diff", "fft", "rows"} <= set(registry.named("view"))


def test_a_subclass_registers_itself_where_it_is_defined() -> None:
    class LocalFusion(Fusion):
        pass

    assert registry.registered("fusion")[registry.dotted_name(LocalFusion)] is LocalFusion
    assert registry.lookup(registry.dotted_name(Fusion)) is None  # the abstract base itself is not buildable


@pytest.mark.parametrize(("target", "kind"), [
    ("fusionlab.fusions.GatedFusion", "fusion"),  # a package alias of the class
    ("torch.optim.AdamW", "optimizer"),
    ("torch.optim.adamw.AdamW", "optimizer"),  # the same class by its module
    ("pytorch_lightning.callbacks.ModelCheckpoint", "callback"),
    ("optuna.pruners.MedianPruner", "pruner"),
])
def test_lookup_finds_registered_and_named_classes(target: str, kind: str) -> None:
    entry = registry.lookup(target)
    assert entry is not None and entry.kind == kind


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "torch.load", "torch.hub.load", "pickle.loads",
                                    "fusionlab.io.atomic_write", "fusionlab.registry.importlib.import_module",
                                    "torch.nn.Module.__init__", "not a name", "numpy.load"])
def test_lookup_refuses_everything_else(target: str) -> None:
    assert registry.lookup(target) is None


def test_a_config_naming_an_unregistered_class_is_refused_at_train_time(make_cfg) -> None:
    cfg = make_cfg(["fusion=gated", "model.fusion._target_=collections.OrderedDict"])
    from fusionlab.jobs.builders import validate

    with pytest.raises(ConfigError, match="'collections.OrderedDict' is not a registered class"):
        validate(cfg)


PLUGIN = '''
"""A user's own fusion, in their own package: the element-wise product of the projected inputs."""
import torch
from torch import nn

from fusionlab.fusions import Fusion


class ProductFusion(Fusion):
    def __init__(self, in_dims, dim: int = 8) -> None:
        super().__init__()
        widths = list(in_dims.values()) if hasattr(in_dims, "values") else list(in_dims)
        self.proj = nn.ModuleList(nn.Linear(d, dim) for d in widths)
        self.out_dim = dim

    def forward(self, inputs):
        xs = list(inputs.values()) if hasattr(inputs, "values") else list(inputs)
        out = torch.ones_like(self.proj[0](xs[0]))
        for p, x in zip(self.proj, xs):
            out = out * p(x)
        return out
'''


@pytest.mark.slow
def test_a_user_fusion_from_a_folder_outside_the_package_trains_and_evaluates(tmp_path: Path,
                                                                              data_dir: Path) -> None:
    """The user's package and config folder live outside fusionlab; nothing in the package changes.
    Training needs nothing else (the class subclasses Fusion, so it registers itself on import);
    evaluating its checkpoint names it in allowed_targets (a checkpoint is data: nothing it names
    is imported unless the user lists it)."""
    pkg = tmp_path / "my_fusions"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    conf = tmp_path / "my_conf" / "fusion"
    conf.mkdir(parents=True)
    (conf / "product.yaml").write_text("# @package model.fusion\n_target_: my_fusions.ProductFusion\ndim: 8\n")
    env = {"PYTHONPATH": str(tmp_path), "FUSIONLAB_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    r = run_cli("train.py", "fusion=product", f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "debug=limit",
                "logger=none", f"hydra.run.dir={run}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    m = read_metrics(run)
    assert m["status"] == "ok" and m["choices"]["fusion"] == "product" and m["params"]["fusion"] > 0

    best = run / "checkpoints" / "best.ckpt"
    # refused before anything the checkpoint names is imported: the shared CLI process does (no PYTHONPATH needed)
    r = run_cli_shared("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path / 'e1'}", env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "Error in config: ckpt_path: refused: the checkpoint's config has model.fusion._target_="
        "'my_fusions.ProductFusion', which is not a registered class (a checkpoint is data; if you trust this "
        "file, add the class to allowed_targets)"]
    r = run_cli("eval.py", f"ckpt_path={best}", "allowed_targets=[my_fusions.ProductFusion]",
                f"hydra.run.dir={tmp_path / 'e2'}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_metrics(tmp_path / "e2")["metrics"]["test/acc"] == pytest.approx(m["metrics"]["test/acc"])
    assert "my_fusions" not in sys.modules  # this process never imported the user's code
