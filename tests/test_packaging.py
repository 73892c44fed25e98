"""The console scripts work from an installed wheel outside the clone, with user config folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it (without dependencies, which the test venv has) into a folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    # build from a copy of the source alone, so no stale build/ folder or local file leaks in
    src = tmp / "src"
    top_level = {".venv", ".git", "build", "dist", "outputs", "data", ".pytest_cache", "fusionlab.egg-info"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__"}
        return skip | (top_level & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, src, ignore=ignore)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    (tmp / "build.log").write_text(build.stdout + build.stderr)
    wheel = next((tmp / "dist").glob("fusionlab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True)
    return tmp / "site"


def run_installed(site: Path, script: str, *args: str, cwd: Path, data_dir: Path):
    env = {**os.environ, "PYTHONPATH": str(site), "FUSIONLAB_DATA_DIR": str(data_dir)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, str(site / "bin" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_wheel_ships_the_configs(installed: Path) -> None:
    conf = installed / "fusionlab" / "conf"
    shipped = {p.relative_to(conf) for p in conf.rglob("*.yaml")}
    in_clone = {p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml")}
    assert shipped == in_clone


@pytest.mark.slow
def test_console_scripts_train_and_eval_outside_the_clone(installed: Path, tmp_path: Path, data_dir: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = run_installed(installed, "fusionlab-train", "debug=limit", cwd=work, data_dir=data_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    run = Path(r.stdout.strip().splitlines()[-1].removeprefix("Run folder: "))
    assert run.is_relative_to(work / "outputs")
    cfg_yaml = (run / ".hydra" / "hydra.yaml").read_text()
    assert "path: fusionlab.conf\n      schema: pkg\n      provider: main" in cfg_yaml  # the wheel's configs
    e = run_installed(installed, "fusionlab-eval", f"ckpt_path={run}/checkpoints/best.ckpt", cwd=work,
                      data_dir=data_dir)
    assert e.returncode == 0, e.stderr[-3000:]
    assert "test/acc:" in e.stdout


def test_user_config_folder_adds_a_fusion_through_the_searchpath(installed: Path, tmp_path: Path,
                                                                 data_dir: Path) -> None:
    mine = tmp_path / "myconf" / "fusion"
    mine.mkdir(parents=True)
    (mine / "narrow_sum.yaml").write_text(
        "# @package model.fusion\n_target_: fusionlab.fusions.SumFusion\ndim: 16\n")
    r = run_installed(installed, "fusionlab-train", "fusion=narrow_sum", "model=cnn_rnn", "debug=fast",
                      f"hydra.searchpath=[file://{tmp_path / 'myconf'}]", cwd=tmp_path, data_dir=data_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    run = Path(r.stdout.strip().splitlines()[-1].removeprefix("Run folder: "))
    m = json.loads((run / "metrics.json").read_text())
    assert m["choices"]["fusion"] == "narrow_sum"
    assert m["params"]["fusion"] == (64 + 1) * 16 + (64 + 1) * 16  # Linear(64->16) per branch


def test_the_build_is_quiet_about_package_data_and_ships_every_package(installed: Path) -> None:
    log = (installed.parent / "build.log").read_text()
    assert "would be ignored" not in log and "absent from the `packages` configuration" not in log
    on_disk = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "fusionlab").rglob("__init__.py")
               if "__pycache__" not in p.parts}
    shipped = {p.parent.relative_to(installed).as_posix() for p in (installed / "fusionlab").rglob("__init__.py")}
    assert on_disk | {"fusionlab/conf"} == shipped  # a new subpackage ships without editing the packaging
    assert (installed / "hydra_plugins" / "fusionlab_optuna" / "resumable.py").is_file()
