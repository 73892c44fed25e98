"""Export a trained checkpoint for serving:
``python export.py ckpt_path=<run>/checkpoints/best.ckpt format=onnx|torchscript|exported_program``."""

import hydra
from omegaconf import DictConfig

from fusionlab.cli import report_errors
from fusionlab.inference.cli import run_export, setup

setup()


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
@report_errors
def main(cfg: DictConfig) -> dict:
    return run_export(cfg)


if __name__ == "__main__":
    main()
