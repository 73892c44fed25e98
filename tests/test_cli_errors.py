"""One-line composition errors with close matches, without patching Hydra: the behaviour of Hydra that
``fusionlab/cli_errors.py`` relies on is pinned here, and the messages are checked through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli_shared

# a tiny hydra.main app: whether Hydra re-raises a composition error under HYDRA_FULL_ERROR=1
APP = textwrap.dedent("""
    import sys
    import hydra
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    @hydra.main(version_base="1.3", config_path="conf", config_name="app")
    def main(cfg):
        print("ran")

    try:
        main()
    except MissingConfigException as e:
        print("MissingConfigException", e.missing_cfg_file, sorted(e.options))
    except OverrideParseException as e:
        print("OverrideParseException", e.override)
    except ConfigCompositionException as e:
        c = e.__cause__
        print("ConfigCompositionException", type(c).__name__, c.full_key, c.key, sorted(c.parent_node))
""")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "color").mkdir(parents=True)
    (tmp_path / "conf" / "app.yaml").write_text("defaults:\n  - color: red\n  - _self_\nsize: 1\nnode:\n  width: 2\n")
    (tmp_path / "conf" / "color" / "red.yaml").write_text("hue: 0\n")
    (tmp_path / "conf" / "color" / "green.yaml").write_text("hue: 120\n")
    (tmp_path / "app.py").write_text(APP)
    return tmp_path / "app.py"


@pytest.mark.parametrize(("override", "expected"), [
    ("color=gren", "MissingConfigException color/gren ['green', 'red']"),
    ("node.widht=3", "ConfigCompositionException ConfigAttributeError node.widht widht ['width']"),
    ("size=[", "OverrideParseException size=["),
])
def test_hydra_reraises_composition_errors_with_the_details_we_read(app: Path, override: str, expected: str) -> None:
    """Pins: with the documented HYDRA_FULL_ERROR=1 the function hydra.main makes re-raises (instead of
    printing and exiting 1), and the exception carries missing_cfg_file/options or full_key/key/parent_node."""
    r = subprocess.run([sys.executable, str(app), override], cwd=app.parent, capture_output=True, text=True,
                       env={**os.environ, "HYDRA_FULL_ERROR": "1"}, timeout=120)
    assert r.stdout.strip() == expected, r.stderr[-2000:]


@pytest.mark.parametrize(("args", "expected"), [
    (["fusion=gatted"], "Could not find 'fusion/gatted'; did you mean 'gated'"),
    (["data=mnist1"], "did you mean 'mnist1d'?"),
    (["hydra/launcher=jobib"], "did you mean 'joblib'?"),
    (["model.dropuot=0.1"], "model.dropuot: Key 'dropuot' is not in struct; did you mean 'model.dropout'?"),
    (["regularizer.label_smothing=0.1"], "did you mean 'regularizer.label_smoothing'?"),
    (["fusoin=gated"], "did you mean the config group 'fusion'?"),
    (["fusion=gated", "+model.fusion.dimm=3"], "model.fusion.dimm: unknown key for GatedFusion; expected one of "
                                               "['dim']; did you mean 'model.fusion.dim'?"),
    (["optimizer.lr=["], "cannot parse override 'optimizer.lr=['"),
])
def test_a_typo_gets_one_line_with_the_close_match(tmp_path: Path, args: list[str], expected: str) -> None:
    r = run_cli_shared("train.py", *args, env={"FUSIONLAB_LOG_DIR": str(tmp_path)})
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("Error in config: ") and expected in lines[0], r.stderr
    assert not list(tmp_path.rglob("metrics.json"))


def test_an_unknown_option_with_nothing_close_lists_the_options_without_a_guess() -> None:
    r = run_cli_shared("train.py", "fusion=zzzz")
    assert r.returncode == 2 and "did you mean" not in r.stderr and "available options: attention" in r.stderr


def test_full_error_shows_hydras_exception(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "train.py", "fusion=gatted"], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "HYDRA_FULL_ERROR": "1", "FUSIONLAB_LOG_DIR": str(tmp_path)}, timeout=120)
    assert r.returncode == 1 and "Traceback" in r.stderr and "MissingConfigException" in r.stderr


# -- start-up without torch ---------------------------------------------------------------------------
PROBE = ("import atexit, runpy, sys; "
         "atexit.register(lambda: sys.stderr.write('\\nHEAVY=%s\\n' % sorted(m for m in "
         "('torch', 'pytorch_lightning', 'lightning', 'numpy', 'pandas', 'sklearn', 'aeon', 'optuna') "
         "if m in sys.modules))); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


# the value-range errors below: one line naming the key, exit status 2
RANGE_ERRORS = {"regularizer.label_smoothing=1.5": "regularizer.label_smoothing", "threads=0": "threads"}


@pytest.mark.parametrize(("script", "args", "env"), [
    ("train.py", ["--help"], {}),
    ("train.py", ["--cfg", "job"], {}),
    ("train.py", ["--cfg", "job", "hparams_search=fusion_optuna"], {}),
    ("eval.py", ["--help"], {}),
    ("train.py", ["-sc", "query=bash"], {"COMP_LINE": "python train.py fusion=", "COMP_POINT": "23"}),
    ("train.py", ["fusion=gatted"], {}),
    ("train.py", ["regularizer.label_smoothing=1.5"], {}),  # a plain group's range: checked before torch loads
    ("train.py", ["threads=0"], {}),
])
def test_help_cfg_completion_and_config_errors_never_import_torch(script: str, args: list[str],
                                                                  env: dict[str, str]) -> None:
    r = subprocess.run([sys.executable, "-c", PROBE, script, *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=120)
    assert "HEAVY=[]" in r.stderr, r.stderr[-2000:]
    if args[-1] in RANGE_ERRORS:
        assert r.returncode == 2 and r.stderr.startswith(f"Error in config: {RANGE_ERRORS[args[-1]]}: must be ")
    if "COMP_LINE" in env:
        assert "fusion=gated" in r.stdout.split() and "fusion=concat" in r.stdout.split()


def test_a_key_of_a_group_only_a_swept_experiment_selects_gets_the_fix(tmp_path: Path) -> None:
    """``-m data.name=GunPoint experiment=ucr_inception,ucr_rnn``: Hydra composes the primary config
    without the swept experiments, so data is still mnist1d and has no name. The one line says why and
    how to fix it (state ``data=ucr`` too)."""
    args = ["-m", "data.name=GunPoint", "experiment=ucr_inception,ucr_rnn", f"hydra.sweep.dir={tmp_path}"]
    r = run_cli_shared("train.py", *args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "data.name" in lines[0] and "swept group(s) experiment" in lines[0]
    assert "choose data=<option>" in lines[0]
    # a misspelt key with no swept group involved gets no such hint
    typo = run_cli_shared("train.py", "-m", "trainer.max_epoch=3", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert typo.returncode == 2 and "swept group" not in typo.stderr and "max_epochs" in typo.stderr
