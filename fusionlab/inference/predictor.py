"""A trained model as a product: ``fusionlab.load(path)`` → :class:`Predictor`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fusionlab.data.prepare import prepare_subwords
from fusionlab.data.spec import InputSpec
from fusionlab.inference.state import input_spec, prepare_inputs


class Predictor:
    """Predictions of a trained fused network on new raw examples.

    ``x`` is a numpy array ``(n, c, L)`` (or ``(n, L)``, univariate), a list of unequal-length
    ``(c, L_i)`` arrays, images ``(n, c, h, w)`` (or ``(n, h, w)``), or a list of strings, prepared
    exactly as the training run prepared its test split (the checkpoint's fitted scaling, training
    length, tokenizer and vocabulary). ``classes_`` are the class names in label order, so
    ``classes_[predict_proba(x).argmax(1)] == predict(x)``.
    """

    def __init__(self, module: nn.Module, state: dict[str, Any], config: dict[str, Any] | None = None,
                 batch_size: int | None = None) -> None:
        self.module = module.eval()
        self.net: nn.Module = getattr(module, "net", module)
        self.state = state
        self.config: dict[str, Any] = dict(config if config is not None else getattr(module, "config", {}) or {})
        self.classes_ = np.asarray(state["classes"])
        self.input_spec: InputSpec = input_spec(state)
        data_cfg = self.config.get("data") or {}
        self.batch_size = int(batch_size or data_cfg.get("eval_batch_size") or 1000)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def prepare(self, x: Any) -> tuple[Tensor, Tensor | None]:
        """Model inputs ``(x, mask)`` for raw examples (see the class docstring)."""
        return prepare_inputs(self.state, x)

    def batches(self, inputs: Tensor, mask: Tensor | None, batch_size: int | None = None
                ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """``(x, mask)`` per batch, each cut to its longest real example as the test loader does."""
        yield from batches(inputs, mask, batch_size or self.batch_size)

    def prepare_subwords(self, x: Any) -> tuple[Tensor, Tensor] | None:
        """A sub-word branch's inputs ``(ids, mask)`` for raw texts (None for models without one)."""
        return prepare_subwords(self.state, x)

    def input_batches(self, x: Any, batch_size: int | None = None) -> Iterator[tuple[Tensor | None, ...]]:
        """The network's positional inputs per batch for raw examples: ``(x, mask)``, plus the same rows'
        sub-word ``(ids, mask)`` for a model with a pretrained branch; each batch cut to its longest."""
        inputs, mask = self.prepare(x)
        yield from input_batches((inputs, mask, *(self.prepare_subwords(x) or ())), batch_size or self.batch_size)

    @torch.inference_mode()
    def logits(self, x: Any, batch_size: int | None = None, progress: Callable[[int], None] | None = None) -> Tensor:
        """Raw logits ``(n, num_classes)`` on the CPU; ``progress(k)`` is called after each batch of ``k``."""
        device = self.device
        out = []
        for args in self.input_batches(x, batch_size):
            out.append(self.net(*(None if a is None else a.to(device) for a in args)).float().cpu())
            if progress is not None:
                progress(len(args[0]))
        return torch.cat(out) if out else torch.zeros(0, len(self.classes_))

    def predict_proba(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``(n, num_classes)``, columns in the order of ``classes_``."""
        return torch.softmax(self.logits(x, batch_size), dim=1).numpy()

    def predict(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """The predicted class name of each example."""
        return self.classes_[self.logits(x, batch_size).argmax(dim=1).numpy()]

    def __repr__(self) -> str:
        return (f"Predictor({self.input_spec.describe()}, classes={self.classes_.tolist()}, "
                f"model={(self.config.get('model') or {}).get('_target_', type(self.net).__name__)})")


def load(path: str | os.PathLike, map_location: Any = None, batch_size: int | None = None,
         extra_allowed: tuple[str, ...] = ()) -> Predictor:
    """``fusionlab.load("best.ckpt")``: a :class:`Predictor` for a fusionlab checkpoint.

    ``extra_allowed``: exact ``_target_`` names of your own classes the saved config may build
    (beyond the registry's own).
    """
    from fusionlab.inference.checkpoint import load_module

    module = load_module(path, map_location=map_location, extra_allowed=extra_allowed)
    return Predictor(module, module.data_state, module.config, batch_size=batch_size)


def batches(inputs: Tensor, mask: Tensor | None, size: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """``(x, mask)`` per ``size`` rows, each batch cut to its longest real example (the test loader's way)."""
    for start in range(0, len(inputs), size):
        xb = inputs[start:start + size]
        mb = None if mask is None else mask[start:start + size]
        if mb is not None:
            steps = mb.any(dim=0).nonzero()
            n = int(steps[-1]) + 1 if len(steps) else 1
            xb, mb = xb[..., :n], mb[:, :n]
        yield xb, mb


def input_batches(prepared: tuple[Tensor | None, ...], size: int) -> Iterator[tuple[Tensor | None, ...]]:
    """Prepared inputs ``(x, mask)`` or ``(x, mask, subword_ids, subword_mask)`` per ``size`` rows, the
    word and the sub-word inputs each cut to their own longest example in the batch."""
    x, mask, *subwords = prepared
    sub = batches(subwords[0], subwords[1], size) if subwords else None
    for xb, mb in batches(x, mask, size):
        yield (xb, mb) if sub is None else (xb, mb, *next(sub))

