"""Predict with a trained checkpoint on new data:
``python predict.py ckpt_path=<run>/checkpoints/best.ckpt input=<file> [output=<file>]``.

The job code (torch, Lightning) is imported inside the job: ``--help`` stays instant, and a config
error is one line (fusionlab.cli.hydra_main).
"""

from omegaconf import DictConfig

from fusionlab.cli import hydra_main
from fusionlab.inference.cli import register_schemas, run_predict

register_schemas()


@hydra_main(config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> dict:
    return run_predict(cfg)


if __name__ == "__main__":
    main()
