"""Train a fused network: ``python train.py model=cnn_rnn fusion=gated``.

compose (Hydra) → validate → instantiate data, model, trainer → fit → test → return the metric.
"""

import hydra
from omegaconf import DictConfig

from fusionlab.cli import report_errors, setup
from fusionlab.training.run import train

setup()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
