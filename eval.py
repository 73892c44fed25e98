"""Test a trained checkpoint with the config it was trained with:
``python eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt``."""

import hydra
from omegaconf import DictConfig

from fusionlab.cli import report_errors, setup
from fusionlab.training.run import evaluate

setup()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@report_errors
def main(cfg: DictConfig) -> dict:
    return evaluate(cfg)


if __name__ == "__main__":
    main()
