"""Length-bucketed training batches for padded data (texts, unequal-length series)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler


class LengthBuckets(Sampler[list[int]]):
    """Random batches of examples of similar length (the "bucketing" of Khomenko et al. 2016, and of
    torchtext's ``BucketIterator``), so that cutting each batch to its longest example
    (:class:`~fusionlab.data.base.TensorBatches`) removes most of the padding.

    Each epoch: shuffle all indices; split them into pools of ``batch_size * pool`` examples; sort each
    pool by length; cut it into batches; shuffle the order of all batches. Every example is drawn once
    per epoch, the batch count is that of plain shuffling (``ceil(N / batch_size)``), and the order
    depends only on ``generator`` (so a resumed run continues it). ``pool`` trades randomness (small)
    for less padding (large).
    """

    def __init__(self, lengths: Tensor, batch_size: int, generator: torch.Generator | None = None,
                 pool: int = 50) -> None:
        self.lengths = torch.as_tensor(lengths)
        self.batch_size, self.pool, self.generator = batch_size, pool, generator

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        batches: list[Tensor] = []
        for chunk in order.split(self.batch_size * self.pool):
            by_length = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(by_length.split(self.batch_size))
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i].tolist()
