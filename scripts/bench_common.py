"""What the benchmark scripts share: composing ``train.yaml`` as a real job sees it, and writing results.

Imported by ``scripts/bench_*.py`` (run as ``python scripts/bench_x.py``, so this folder is on
``sys.path``). Heavy imports stay inside the functions: ``bench_gpu.py`` must exit at once without CUDA.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# a measured run: no logger, callbacks, progress bar, validation or checkpoint files
QUIET_RUN = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false", "+trainer.limit_val_batches=0",
             "+trainer.enable_checkpointing=false"]


def compose_train_config(overrides: list[str], out_dir: str) -> Any:
    """``train.yaml`` with ``overrides`` (plus the run folder and ``<repo>/data``), validated, with the
    Hydra node set as in a job and removed from the config (a real job never sees it)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from fusionlab.cli import setup
    from fusionlab.jobs.builders import validate

    setup()  # the schemas in Hydra's ConfigStore and the resolvers (idempotent)
    overrides = [*overrides, f"paths.output_dir={out_dir}", f"paths.data_dir={REPO / 'data'}"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    validate(cfg)
    return cfg


def portable(arg: str, root: Path = REPO) -> str:
    """``arg`` with the repository's (or the working folder's) absolute path made relative, so a
    recorded command runs from any checkout: ``--out /work/x/docs/a.md`` -> ``--out docs/a.md``."""
    for base in {str(root), os.getcwd()}:
        arg = arg.replace(base.rstrip("/") + "/", "")
    return arg


def command_line(argv: list[str] | None = None) -> str:
    """How this script was started, as a command that runs from the repository root anywhere."""
    return shlex.join(["python", *(portable(a) for a in (sys.argv if argv is None else argv))])


def write_results(text: str, markdown: Path | None, json_path: Path | None, payload: dict[str, Any]) -> None:
    """Print the table; write it to ``markdown`` and ``payload`` to ``json_path`` when given."""
    print()
    print(text)
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text + "\n")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload, indent=2))
