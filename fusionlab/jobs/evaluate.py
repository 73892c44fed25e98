"""The eval job: test a checkpoint with the config saved inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from fusionlab.config.schema import ConfigError
from fusionlab.config.store import EvalConfig
from fusionlab.jobs.builders import build_datamodule, build_eval_module, build_trainer, validate
from fusionlab.jobs.environment import quiet_lightning, set_threads
from fusionlab.jobs.results import as_floats, write_json
from fusionlab.jobs.saved_run import SavedRun, for_loading, read_saved_run

USAGE = "which checkpoint to test? e.g. python eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt"


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild the model from a checkpoint's own config (checked against the registry first), test
    it on the test split of its data, write ``metrics.json``."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path", USAGE)
    validate(cfg, EvalConfig)
    set_threads(cfg.get("threads"))
    run = read_saved_run(cfg.ckpt_path, tuple(cfg.get("allowed_targets") or ()))
    saved = for_loading(run.config)
    quiet_lightning()
    pl.seed_everything(saved.get("seed", 0), workers=True, verbose=False)
    dm = test_data(cfg, saved, run.data_state)
    check_classes(run.classes(), dm)
    module = module_for_data(run, saved, dm)
    trainer = build_trainer(cfg)
    metrics = as_floats(trainer.test(module, datamodule=dm, verbose=False)[0])
    out = Path(cfg.paths.output_dir)
    write_json(out / "metrics.json", {"status": "ok", "metrics": metrics, "ckpt_path": str(cfg.ckpt_path),
                                      "inputs": cfg.get("inputs")})
    for k, v in metrics.items():
        print(f"{k}: {v:.4f}")
    print(f"Run folder: {out.resolve()}")
    return metrics


def module_for_data(run: SavedRun, saved: DictConfig, dm: Any) -> Any:
    """The checkpoint's module (``saved``: its config made for loading) built for ``dm``'s batches, holding its
    trained weights."""
    module = build_eval_module(saved, network_spec(run.input_spec(), dm), len(run.classes() or dm.classes),
                               run.config_dict)
    module.load_state_dict(run.state_dict)
    return module


def network_spec(saved: Any, dm: Any) -> Any:
    """The input spec to build a checkpoint's network for ``dm``'s batches: the run's own (``saved``: its shape
    and vocabulary; ``dm``'s when None) with ``dm``'s sub-word inputs (a pretrained branch's ids, or its
    frozen layers' cached states, which the saved spec records as ids)."""
    spec = saved or dm.input_spec
    subwords = getattr(dm.input_spec, "subwords", None)
    return spec.with_(subwords=subwords) if subwords is not None else spec


def test_data(cfg: DictConfig, saved: DictConfig, data_state: dict[str, Any] | None) -> Any:
    """What to test on: ``inputs=<labelled file>`` prepared with the checkpoint's data state alone
    (the training data is not read), else the test split of the run's own data config (with
    ``data.*`` overrides merged, e.g. ``data.data_dir=`` when the run was made elsewhere)."""
    if cfg.get("inputs"):
        if data_state is None:
            raise ConfigError("inputs", f"'{cfg.ckpt_path}' carries no data state (written before checkpoints did); "
                              "evaluate it on its own test split (drop inputs=)")
        from fusionlab.data.inputs import InputsDataModule

        size = (cfg.get("data") or {}).get("eval_batch_size") or saved.data.get("eval_batch_size") or 1000
        dm = InputsDataModule(data_state, path=cfg.inputs, eval_batch_size=int(size), key="inputs")
        dm.setup("test")
        return dm
    data_cfg = saved.data
    if cfg.get("data"):
        data_cfg = OmegaConf.merge(data_cfg, cfg.data)
    return build_datamodule(data_cfg, "test")


def check_classes(saved: list[Any] | None, dm: Any) -> None:
    """The test data must label classes as the checkpoint was trained (same names, same order)."""
    if saved is None or not hasattr(dm, "classes"):
        return
    found = [c.item() if hasattr(c, "item") else c for c in dm.classes]
    if [str(c) for c in found] != [str(c) for c in saved]:
        raise ConfigError("data", f"the test data's classes {found} differ from the checkpoint's {list(saved)}")
