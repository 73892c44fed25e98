"""Old import path of the train and eval jobs; they live in :mod:`fusionlab.jobs` (one concept per
module). Everything that was importable here still is."""

from fusionlab.jobs.builders import (  # noqa: F401
    build_augmentation,
    build_datamodule,
    build_eval_module,
    build_model,
    build_module,
    build_net,
    build_trainer,
    prepare,
    regularizer_callbacks,
    validate,
)
from fusionlab.jobs.config_rewrites import apply_dropout, monitor_training_loss  # noqa: F401
from fusionlab.jobs.environment import hydra_choices, quiet_lightning, set_threads  # noqa: F401
from fusionlab.jobs.evaluate import evaluate  # noqa: F401
from fusionlab.jobs.probes import TORCH_RULES, probe  # noqa: F401
from fusionlab.jobs.results import describe_data, write_json  # noqa: F401
from fusionlab.jobs.train import train  # noqa: F401
