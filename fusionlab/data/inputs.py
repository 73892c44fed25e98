"""Examples from a file (or raw arrays) prepared with a checkpoint's data state, as a datamodule:
:class:`InputsDataModule`. It needs no training data: evaluation on a new labelled file and
prediction use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from fusionlab.config.schema import ConfigError
from fusionlab.data.loaders import make_loader, trim_padding
from fusionlab.data.prepare import prepare_inputs
from fusionlab.data.readers import encode_labels, read_inputs
from fusionlab.data.spec import InputSpec
from fusionlab.data.state import state_input_spec


class InputsDataModule(pl.LightningDataModule):
    """New examples (``path``, or ``raw`` with optional ``labels``) prepared exactly as the test split
    was, from ``state`` alone (``datamodule.data_state()`` as saved in a checkpoint).

    ``test_dataloader()`` gives ``(x, y)`` / ``(x, y, mask)`` batches like a datamodule's test loader
    (needs labels); :meth:`batches` gives ``(x, mask)`` in input order for prediction.
    """

    def __init__(self, state: dict[str, Any], path: str | Path | None = None, raw: Any = None,
                 labels: Any = None, text_column: str | None = None, eval_batch_size: int = 1000,
                 key: str = "input") -> None:
        super().__init__()
        if (path is None) == (raw is None):
            raise ValueError("give exactly one of path and raw")
        self.state, self.path, self.raw, self.labels = state, path, raw, labels
        self.text_column, self.eval_batch_size, self.key = text_column, eval_batch_size, key
        self.x: Tensor | None = None
        self.mask: Tensor | None = None
        self.y: Tensor | None = None

    @property
    def source(self) -> str:
        return f"'{self.path}'" if self.path is not None else "the given examples"

    def setup(self, stage: str | None = None) -> None:
        if self.x is not None:
            return
        raw, labels = (self.raw, self.labels) if self.path is None else read_inputs(
            self.path, self.state, self.text_column, self.key)
        if self.path is not None and self.labels is not None:
            labels = self.labels
        self.x, self.mask = prepare_inputs(self.state, raw)
        if labels is not None:
            if len(labels) != len(self.x):
                raise ConfigError(self.key, f"{self.source}: {len(self.x)} examples but {len(labels)} labels")
            self.y = torch.as_tensor(encode_labels(self.state, labels, self.source), dtype=torch.long)

    # -- what the model builder reads ---------------------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        return state_input_spec(self.state)

    @property
    def classes(self) -> list[Any]:
        return list(self.state["classes"])

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def has_labels(self) -> bool:
        self.setup()
        return self.y is not None

    def data_state(self) -> dict[str, Any]:
        return self.state

    # -- batches --------------------------------------------------------------------------------
    def test_dataloader(self) -> DataLoader:
        self.setup()
        if self.y is None:
            raise ConfigError(self.key, f"{self.source} has no labels to test against")
        tensors = (self.x, self.y) if self.mask is None else (self.x, self.y, self.mask)
        return make_loader(tensors, self.eval_batch_size, trim=True)

    def batches(self, batch_size: int | None = None) -> Iterator[tuple[Tensor, Tensor | None]]:
        """``(x, mask)`` batches in input order, each cut to its longest example."""
        self.setup()
        assert self.x is not None
        size = batch_size or self.eval_batch_size
        for start in range(0, len(self.x), size):
            x = self.x[start : start + size]
            if self.mask is None:
                yield x, None
            else:
                yield trim_padding(x, self.mask[start : start + size])

    def __len__(self) -> int:
        self.setup()
        return 0 if self.x is None else len(self.x)

