"""A crafted checkpoint cannot run code or write a file: every trick in its saved config is refused
with one line, before anything it names is imported, through ``eval.py`` and ``train.py ckpt_path=``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.registry import check_saved_config
from tests.conftest import compose_cfg, run_cli_shared

MARKER = "PWNED"  # each case tries to create <tmp>/PWNED (or run code); none may


def _cases(marker: Path, pickled: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """name → (changes to the saved config, words the one-line refusal must contain)."""
    touch = f"touch {marker}"
    return {
        # a project helper that writes files (it was allowed by the old module-prefix check)
        "project_helper_writes_a_file": (
            {"model": {"_target_": "fusionlab.training.checkpoint.atomic_torch_save", "_args_": [{}, str(marker)]}},
            "model._target_='fusionlab.training.checkpoint.atomic_torch_save', which is not a registered class"),
        # library functions that unpickle (run code while loading a file)
        "torch_load_unpickles": (
            {"model": {"_target_": "torch.load", "f": str(pickled), "weights_only": False}},
            "model._target_='torch.load', which is not a registered class"),
        "torch_serialization_alias": (
            {"model": {"_target_": "torch.serialization.load", "f": str(pickled), "weights_only": False}},
            "model._target_='torch.serialization.load', which is not a registered class"),
        "builtins_eval": (
            {"model": {"_target_": "builtins.eval", "_args_": [f"__import__('os').system('{touch}')"]}},
            "model._target_='builtins.eval', which is not a registered class"),
        # a library function reached through a module attribute of an allowed package
        "attribute_path_through_a_module": (
            {"model": {"_target_": "fusionlab.registry.importlib.import_module", "_args_": ["antigravity"]}},
            "model._target_='fusionlab.registry.importlib.import_module', which is not a registered class"),
        # a registered class hides a forbidden one in its positional arguments
        "args_nesting": (
            {"model": {"_target_": "fusionlab.models.FusionNet",
                       "_args_": [{"_target_": "os.system", "_args_": [touch]}]}},
            "model._args_[0]._target_='os.system', which is not a registered class"),
        # a partial is called later, with the model's parameters
        "partial": (
            {"optimizer": {"_target_": "subprocess.run", "_partial_": True, "args": ["touch", str(marker)]}},
            "optimizer._target_='subprocess.run', which is not a registered class"),
        "partial_flag_not_a_bool": (
            {"optimizer": {"_target_": "torch.optim.AdamW", "_partial_": "${oc.env:HOME}"}},
            "optimizer._partial_='${oc.env:HOME}' (expected true or false)"),
        "convert_flag_not_a_mode": (
            {"model": {"_target_": "fusionlab.models.FusionNet", "_convert_": {"_target_": "os.system"}}},
            "model._convert_={'_target_': 'os.system'} (expected none, partial, object or all)"),
        # resolvers run when a value is read: refused in any saved value
        "interpolation_resolver": (
            {"data": {"data_dir": "${oc.env:HOME}"}},
            "has an interpolation at data.data_dir: '${oc.env:HOME}'"),
        # targets hidden deep in nested dicts and lists
        "target_in_a_nested_dict": (
            {"model": {"branches": {"cnn": {"extra": {"deeper": {"_target_": "os.system", "command": touch}}}}}},
            "model.branches.cnn.extra.deeper._target_='os.system', which is not a registered class"),
        "target_in_a_nested_list": (
            {"data": {"preprocessing": {"steps": [1, [{"_target_": "posix.system", "command": touch}]]}}},
            "data.preprocessing.steps[1][0]._target_='posix.system', which is not a registered class"),
        # a registered class that writes files, named where only model parts may be built
        "registered_logger_as_the_model": (
            {"model": {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": str(marker)}},
            "model._target_='pytorch_lightning.loggers.CSVLogger', a logger, where only "
            "branch/embedding/fusion/net/pooler/view may be built"),
        # the file's own allow-list does not count
        "own_allowed_targets": (
            {"allowed_targets": ["os.system", "os."], "model": {"_target_": "os.system", "_args_": [touch]}},
            "model._target_='os.system', which is not a registered class"),
    }


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and "_target_" not in v:
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {MARKER}",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Any]:
    """A real checkpoint of a short run (MNIST-1D, CNN)."""
    from fusionlab.jobs.train import train

    out = tmp_path_factory.mktemp("run")
    train(compose_cfg(["model=cnn", "debug=limit", "trainer.max_epochs=1", "logger=none"], out, data_dir))
    return torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)


CASES = list(_cases(Path("m"), Path("p")))


def _crafted(trained: dict[str, Any], case: str, tmp_path: Path) -> tuple[Path, Path, str]:
    """The checkpoint of ``case`` written to ``tmp_path``; also the marker and the expected words."""
    marker, pickled = tmp_path / MARKER, tmp_path / "evil.pkl"
    torch.save(_Evil(), pickled)
    changes, words = _cases(marker, pickled)[case]
    state = dict(trained)
    state["fusionlab_config"] = _merge(trained["fusionlab_config"], changes)
    crafted = tmp_path / "crafted.ckpt"
    torch.save(state, crafted)
    return crafted, marker, words


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_checkpoint_is_refused_by_the_eval_job_with_one_line(trained, case: str, tmp_path: Path,
                                                                       data_dir: Path, capsys) -> None:
    """eval.py's own path (``report_errors(evaluate)``) in this process: exit 2, one line, nothing written."""
    from fusionlab.cli import report_errors
    from fusionlab.jobs.evaluate import evaluate

    crafted, marker, words = _crafted(trained, case, tmp_path)
    cfg = compose_cfg([f"ckpt_path={crafted}"], tmp_path / "eval", data_dir, config_name="eval")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        report_errors(evaluate)(cfg)
    lines = capsys.readouterr().err.strip().splitlines()
    print(f"{case}: {lines}")
    assert e.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Error in config: ckpt_path: refused: the checkpoint's config ") and words in lines[0]
    assert not marker.exists() and not (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.parametrize("case", ["builtins_eval", "args_nesting", "interpolation_resolver"])
@pytest.mark.slow
def test_eval_py_refuses_a_crafted_checkpoint(trained, case: str, tmp_path: Path, data_dir: Path) -> None:
    """The same through ``python eval.py`` in its own process: no traceback, no file written."""
    crafted, marker, words = _crafted(trained, case, tmp_path)
    run_dir = tmp_path / "eval"
    r = run_cli_shared("eval.py", f"ckpt_path={crafted}", f"hydra.run.dir={run_dir}",
                env={"FUSIONLAB_DATA_DIR": str(data_dir)})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[0].startswith("Error in config: ckpt_path: refused: the checkpoint's config ") and words in lines[0]
    assert not marker.exists() and not (run_dir / "metrics.json").exists()


@pytest.mark.slow
def test_resume_from_a_crafted_checkpoint_is_refused(trained, tmp_path: Path, data_dir: Path) -> None:
    marker = tmp_path / MARKER
    state = dict(trained)
    state["fusionlab_config"] = _merge(trained["fusionlab_config"],
                                       {"model": {"_target_": "builtins.exec", "_args_": [f"open('{marker}', 'w')"]}})
    crafted = tmp_path / "crafted.ckpt"
    torch.save(state, crafted)
    run_dir = tmp_path / "train"
    r = run_cli_shared("train.py", "debug=limit", "logger=none", f"ckpt_path={crafted}", f"hydra.run.dir={run_dir}",
                env={"FUSIONLAB_DATA_DIR": str(data_dir)})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip() == ("Error in config: ckpt_path: refused: the checkpoint's config has "
                                "model._target_='builtins.exec', which is not a registered class (a checkpoint is "
                                "data; if you trust this file, add the class to allowed_targets)")
    assert not marker.exists() and not (run_dir / "metrics.json").exists()
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize("case", CASES)
def test_check_saved_config_refuses_each_trick_before_importing(trained, case: str, tmp_path: Path) -> None:
    """The same cases in-process: refused, and no module the file names was imported on the way."""
    import sys

    changes, words = _cases(tmp_path / MARKER, tmp_path / "evil.pkl")[case]
    saved = _merge(trained["fusionlab_config"], changes)
    before = set(sys.modules)
    with pytest.raises(ConfigError) as e:
        check_saved_config(saved)
    assert words in e.value.message and "\n" not in str(e.value)
    assert set(sys.modules) - before <= {m for m in sys.modules if m.startswith("fusionlab")}
    assert "antigravity" not in sys.modules


def test_the_untouched_checkpoint_passes_and_allowed_targets_extend_it(trained) -> None:
    check_saved_config(trained["fusionlab_config"])  # everything a real run saves is registered
    saved = _merge(trained["fusionlab_config"], {"model": {"_target_": "my_pkg.nets.MyNet"}})
    with pytest.raises(ConfigError, match="my_pkg.nets.MyNet', which is not a registered class"):
        check_saved_config(saved)
    check_saved_config(saved, extra_allowed=["my_pkg.nets.MyNet"])  # the running job's own list
