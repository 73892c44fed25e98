"""``train.py --help`` prints Hydra's help page (groups, options, composed config) without Hydra's slow path."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


def test_help_lists_groups_and_the_config_with_overrides_applied() -> None:
    r = run_cli("train.py", "--help", "model=cnn", "fusion=gated")
    assert r.returncode == 0, r.stderr
    groups = dict(line.split(": ", 1) for line in r.stdout.split("== Config ==")[0].splitlines() if ": " in line)
    assert "gated" in groups["fusion"].split(", ") and "mnist1d" in groups["data"].split(", ")
    assert not any(g.startswith("hydra") for g in groups)
    config = r.stdout.split("== Config ==")[1]
    assert "_target_: fusionlab.branches.CNNBranch" in config and "\nhydra:" not in config


def test_help_with_a_typo_is_a_one_line_config_error() -> None:
    r = run_cli("train.py", "--help", "fusion=gatted")
    assert r.returncode == 2 and r.stderr.strip().startswith("Error in config: Could not find 'fusion/gatted'")


@pytest.mark.slow
def test_help_is_the_page_hydra_itself_prints() -> None:
    ours = run_cli("train.py", "--help", "model=cnn")
    hydras = run_cli("train.py", "--help", "model=cnn", "--config-name=train")  # a Hydra flag: Hydra's own help
    assert ours.returncode == hydras.returncode == 0, hydras.stderr
    assert ours.stdout == hydras.stdout
