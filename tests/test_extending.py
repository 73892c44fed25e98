"""docs/extending.md, run: a branch, a fusion, a dataset and an augmentation from a folder outside
the package (an importable module plus ``hydra.searchpath``) train together, nothing inside the
package changes, and the option file generated from the user's fusion is the one the page shows.

The files come from the page itself (code blocks with ``title="<path>"``), so the page and the
test cannot drift apart."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_metrics, run_cli

PAGE = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r'```\w+ title="([^"]+)"\n(.*?)```', re.S)


def write_project(folder: Path) -> dict[str, str]:
    """Write every titled code block of the page under ``folder`` (blocks with one title are
    concatenated, in page order); returns path -> text."""
    files: dict[str, str] = {}
    for path, text in BLOCK.findall(PAGE.read_text()):
        files[path] = files.get(path, "") + text
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return files


def package_files_naming_the_users_parts(files: dict[str, str]) -> list[str]:
    """Files inside the package (tracked or not) that mention ``my_ext`` or are named like one of
    the user's option files: none, unless the user's parts were copied into the package.
    (A comparison of ``git status`` before and after would also see other people's edits.)"""
    grep = subprocess.run(["git", "grep", "--untracked", "-l", "my_ext", "--", "fusionlab", "conf"], cwd=ROOT,
                          capture_output=True, text=True)
    named = [str(p) for name in files if name.startswith("conf/") for p in [ROOT / name] if p.exists()]
    return grep.stdout.split() + named


def test_the_page_defines_one_class_and_one_yaml_per_part_with_a_comment_on_every_key(tmp_path: Path) -> None:
    files = write_project(tmp_path)
    assert set(files) == {"my_ext/__init__.py", "conf/branch/steps.yaml", "conf/fusion/product.yaml",
                          "conf/data/digit_rows.yaml", "conf/augmentation/sign_flip.yaml", "conf/model/steps_cnn.yaml"}
    for path, text in files.items():
        if path.endswith(".yaml"):
            for line in text.splitlines():
                key = re.match(r"\s*(\w+):", line)  # a key (list items of defaults carry their own comments)
                if key and key[1] not in ("_target_", "defaults"):  # _target_: the header says what it builds
                    assert "#" in line, f"{path}: no comment on {line!r}"


@pytest.mark.slow
def test_user_parts_from_a_folder_outside_the_package_train_together(tmp_path: Path) -> None:
    files = write_project(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    r = run_cli("train.py", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "data=digit_rows", "model=steps_cnn",
                "fusion=product", "augmentation=sign_flip", "trainer.max_epochs=4", "callbacks=none", "logger=none",
                "threads=1",
                f"hydra.run.dir={run}", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    m = read_metrics(run)
    assert m["status"] == "ok"
    assert {k: m["choices"][k] for k in ("data", "model", "fusion", "augmentation")} == {
        "data": "digit_rows", "model": "steps_cnn", "fusion": "product", "augmentation": "sign_flip"}
    # the parts that were built are the user's: StepMLPBranch(8 channels, hidden 16), ProductFusion(dim 8)
    assert m["params"]["branch/steps"] == (8 * 16 + 16) + (16 * 16 + 16)
    assert m["params"]["fusion"] == (64 + 1) * 8 + (16 + 1) * 8  # inputs: cnn (64 wide), steps (16 wide)
    saved = (run / ".hydra" / "config.yaml").read_text()
    for target in ("my_ext.DigitRowsDataModule", "my_ext.SignFlip", "my_ext.StepMLPBranch", "my_ext.ProductFusion"):
        assert f"_target_: {target}" in saved
    assert all(math.isfinite(v) for v in m["metrics"].values() if isinstance(v, float))
    assert m["metrics"]["val/acc"] > 0.3  # it learns: 10 classes, chance 0.1 (0.625 measured)
    assert package_files_naming_the_users_parts(files) == []  # nothing was added to the package
    assert "my_ext" not in sys.modules  # and this process never imported the user's code


@pytest.mark.slow
def test_the_option_file_generated_from_the_users_fusion_is_the_one_the_page_shows(tmp_path: Path) -> None:
    write_project(tmp_path)
    code = textwrap.dedent("""
        from my_ext import ProductFusion
        from fusionlab.models.option_files import option_file
        print(option_file(ProductFusion, 'fusion', 'my_ext.ProductFusion'), end='')
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    shown = PAGE.read_text().split("which gives\n\n```yaml\n")[1].split("```")[0]
    assert r.stdout == shown
