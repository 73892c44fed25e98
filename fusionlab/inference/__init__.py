"""Using a trained model: load a checkpoint, predict on new data, export it.

- :func:`load_module` rebuilds the LightningModule from a self-contained checkpoint (the weights, the
  config that built it and the data state: input spec, class names, fitted preprocessing, vocabulary).
- :func:`load` wraps it in a :class:`Predictor` with ``predict``, ``predict_proba``, ``classes_``,
  ``input_spec`` and ``config``.
- :mod:`fusionlab.inference.export` writes ONNX, TorchScript or ``torch.export`` programs.

Nothing here reopens the training data, and a checkpoint's config may only build what the exact
registry allows; checkpoints load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Predictor", "load", "load_module"]


def __getattr__(name: str) -> Any:  # imports torch and Lightning only when used
    if name in ("load_module", "read_run"):
        from fusionlab.inference import checkpoint

        return getattr(checkpoint, name)
    if name in ("Predictor", "load"):
        from fusionlab.inference import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'fusionlab.inference' has no attribute {name!r}")
