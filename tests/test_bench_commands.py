"""Recorded benchmark commands run from any checkout: absolute paths inside the repository (or the
folder the script ran in) are written relative to it."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_common  # noqa: E402
import paper_common  # noqa: E402


def test_command_line_makes_repository_paths_relative(monkeypatch) -> None:
    argv = ["scripts/bench_scaling.py", "--markdown", f"{ROOT}/docs/results/scaling.md",
            f"hydra.sweep.dir={ROOT}/outputs/bench/x", "--dir", "/tmp/elsewhere/data"]
    line = bench_common.command_line(argv)
    assert line == ("python scripts/bench_scaling.py --markdown docs/results/scaling.md "
                    "hydra.sweep.dir=outputs/bench/x --dir /tmp/elsewhere/data")
    assert str(ROOT) not in line


def test_paper_script_command_is_portable(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["scripts/bench_ucr.py", "--sweep-dir", f"{ROOT}/outputs/bench/ucr"])
    line = paper_common.script_command()
    assert line.endswith("python scripts/bench_ucr.py --sweep-dir outputs/bench/ucr")
    assert str(ROOT) not in line
