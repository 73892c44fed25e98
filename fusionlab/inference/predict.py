"""The predict job: ``python predict.py ckpt_path=<run>/checkpoints/best.ckpt input=<file> [output=<file>]``.

Writes one row per example: ``row`` (0-based, in the input's order), ``prediction`` (the class
name) and ``p_<class>`` (one probability column per class, in label order); CSV, or Parquet when
``output`` ends in ``.parquet``. With labels in the input, one summary line gives accuracy and
macro-F1. Batched, with a progress bar on a terminal.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from fusionlab.config.schema import ConfigError
from fusionlab.io import atomic_write

log = logging.getLogger("fusionlab")


def prediction_table(classes: np.ndarray, proba: np.ndarray) -> Any:
    """A DataFrame: ``row``, ``prediction``, ``p_<class>`` per class."""
    import pandas as pd

    frame = pd.DataFrame({"row": np.arange(len(proba)), "prediction": classes[proba.argmax(axis=1)]})
    for j, c in enumerate(classes.tolist()):
        frame[f"p_{c}"] = proba[:, j]
    return frame


def write_table(frame: Any, path: Path) -> None:
    """CSV (Parquet for ``.parquet``/``.pq``), written atomically: no half-written results."""
    if path.suffix.lower() in (".parquet", ".pq"):
        with atomic_write(path, "wb") as f:
            frame.to_parquet(f, index=False)
    else:
        with atomic_write(path, "w") as f:
            frame.to_csv(f, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")


def scores(state: dict[str, Any], labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (over every class of the model) of predicted label indices against a
    file's labels (matched to the model's classes as written or as text; an unknown one is an error
    naming its row)."""
    from sklearn.metrics import f1_score

    from fusionlab.data import encode_labels

    truth = encode_labels(state, labels)
    classes = list(range(len(state["classes"])))
    return {"acc": float((truth == predicted).mean()),
            "f1": float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0))}


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled and total:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.task = self.bar.add_task("predicting", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __call__(self, k: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, k)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Run the predict job; returns ``{"output", "n", "acc"?, "f1"?}``."""
    import torch

    from fusionlab.data import read_inputs
    from fusionlab.inference.predictor import load
    from fusionlab.jobs.environment import set_threads

    set_threads(cfg.get("threads"))
    device = str(cfg.get("device") or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"'{device}' was asked for, but torch sees no CUDA device")
    model = load(cfg.ckpt_path, map_location=device, batch_size=cfg.get("batch_size"),
                 extra_allowed=tuple(cfg.get("allowed_targets") or ()))
    raw, labels = read_inputs(cfg.input, model.state, cfg.get("text_column"))
    n = len(raw)
    if n == 0:
        raise ConfigError("input", f"'{cfg.input}' holds no examples")
    show = bool(cfg.get("progress")) if cfg.get("progress") is not None else sys.stderr.isatty()
    with _Progress(n, show) as progress:
        logits = model.logits(raw, progress=progress)
    proba = torch.softmax(logits, dim=1).numpy()
    frame = prediction_table(model.classes_, proba)
    out = Path(cfg.output) if cfg.get("output") else Path(cfg.paths.output_dir) / "predictions.csv"
    write_table(frame, out)
    result: dict[str, Any] = {"output": str(out.resolve()), "n": n}
    line = f"predicted {n} examples → {out.resolve()}"
    if labels is not None:
        result.update(scores(model.state, labels, proba.argmax(axis=1)))
        line += f"; accuracy {result['acc']:.4f}, macro-F1 {result['f1']:.4f} (labels in the input)"
    print(line)
    return result
