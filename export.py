"""Export a trained checkpoint for serving:
``python export.py ckpt_path=<run>/checkpoints/best.ckpt format=onnx|torchscript|exported_program``.

The job code (torch, Lightning) is imported inside the job: ``--help`` stays instant, and a config
error is one line (fusionlab.cli.hydra_main).
"""

from omegaconf import DictConfig

from fusionlab.cli import hydra_main
from fusionlab.inference.cli import register_schemas, run_export

register_schemas()


@hydra_main(config_path="conf", config_name="export")
def main(cfg: DictConfig) -> dict:
    return run_export(cfg)


if __name__ == "__main__":
    main()
