"""Test a trained checkpoint with the config it was trained with:
``python eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt``.
The job code (torch, Lightning) is imported inside ``main``: ``--help`` and Tab completion stay instant."""

from omegaconf import DictConfig

from fusionlab.cli import hydra_main


@hydra_main(config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> dict:
    from fusionlab.training.run import evaluate

    return evaluate(cfg)


if __name__ == "__main__":
    main()
