"""Predict with a trained checkpoint on new data:
``python predict.py ckpt_path=<run>/checkpoints/best.ckpt input=<file> [output=<file>]``."""

import hydra
from omegaconf import DictConfig

from fusionlab.cli import report_errors
from fusionlab.inference.cli import run_predict, setup

setup()


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@report_errors
def main(cfg: DictConfig) -> dict:
    return run_predict(cfg)


if __name__ == "__main__":
    main()
