"""Train a fused network: ``python train.py model=cnn_rnn fusion=gated``.

compose (Hydra) → validate → instantiate data, model, trainer → fit → test → return the metric.
The job code (torch, Lightning) is imported inside ``main``: ``--help`` and Tab completion stay instant.
"""

from omegaconf import DictConfig

from fusionlab.cli import hydra_main, train_job


@hydra_main(config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return train_job(cfg)


if __name__ == "__main__":
    main()
