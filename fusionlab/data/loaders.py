"""Batches of in-memory tensors: whole-batch indexing, trimming of padding, and the seeded order
of training batches (saved in checkpoints, so a resumed run continues it)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fusionlab.data.buckets import LengthBuckets

log = logging.getLogger("fusionlab")


class TensorBatches(Dataset):
    """Tensors that a DataLoader indexes a whole batch at a time (``__getitems__``), so a batch is
    one fancy-indexing op instead of a per-sample collate. Works with any sampler Lightning puts
    in (shuffling, sequential for ``overfit_batches``, distributed).

    ``trim=True`` (padded data ``(x, y, mask)``): each batch is cut to its longest real example,
    so short texts or series do not pay for the longest one in the dataset. Padding sits at the
    end of each example and every branch ignores it, so the cut changes no prediction. Text with
    sub-word inputs (``data.subwords``) has ``(x, y, mask, subwords, subword_mask)``: the sub-words
    (ids ``(B, T)`` or cached states ``(B, T, H)``) are cut to their own longest example.
    """

    def __init__(self, *tensors: Tensor, trim: bool = False) -> None:
        self.tensors = tensors
        self.trim = trim and len(tensors) in (3, 5)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices)
        batch = tuple(t[index] for t in self.tensors)
        if not self.trim:
            return batch
        x, y, mask, *subwords = batch
        x, mask = trim_padding(x, mask)
        if subwords:  # sub-word ids (B, T) or states (B, T, H): steps on dim 1
            steps = subwords[1].any(dim=0).nonzero()
            n = int(steps[-1]) + 1 if len(steps) else 1
            return x, y, mask, subwords[0][:, :n], subwords[1][:, :n]
        return x, y, mask


def trim_padding(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` ``(B, ..., L)`` and ``mask`` ``(B, L)`` cut to the longest real example (at least 1 step)."""
    steps = mask.any(dim=0).nonzero()
    n = int(steps[-1]) + 1 if len(steps) else 1
    return x[..., :n], mask[:, :n]


def as_batch(batch: Any) -> Any:
    """The batch as ``TensorBatches.__getitems__`` made it: already stacked."""
    return batch


class TrainOrder:
    """The seeded generator behind the order of training batches. A checkpoint stores its state
    (:meth:`state_dict`); after :meth:`load_state_dict` the next generator continues from there."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.current: torch.Generator | None = None
        self._pending: Tensor | None = None

    def generator(self) -> torch.Generator:
        generator = torch.Generator().manual_seed(self.seed)
        if self._pending is not None:  # resuming: continue the batch order where it stopped
            generator.set_state(self._pending)
            self._pending = None
        self.current = generator
        return generator

    def state_dict(self) -> dict[str, Any]:
        return {"train_generator": self.current.get_state()} if self.current is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state.get("train_generator")


def make_loader(tensors: tuple[Tensor, ...], batch_size: int, trim: bool, generator: torch.Generator | None = None,
                buckets: bool = False) -> DataLoader:
    """Batches of ``tensors``: shuffled by ``generator`` when given (length-bucketed with ``buckets``
    when the data is padded), else in order."""
    data = TensorBatches(*tensors, trim=trim)
    if generator is not None and buckets:
        lengths = tensors[2].sum(dim=1)
        return DataLoader(data, batch_sampler=LengthBuckets(lengths, batch_size, generator), collate_fn=as_batch)
    return DataLoader(data, batch_size=batch_size, shuffle=generator is not None, generator=generator,
                      collate_fn=as_batch)
