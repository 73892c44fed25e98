"""Bag of word n-grams over the word ids (fastText)."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import PositiveInt
from fusionlab.models.time_pooling import PoolerName

_PRIME = 1_000_003  # multiplier of the rolling n-gram hash (ids and hashes stay far below 2**63 / this)


class BagOfNgramsBranch(Branch):
    """fastText's bag of word n-grams: a learned vector per word and per hashed n-gram, averaged.

    Joulin et al. 2017, "Bag of Tricks for Efficient Text Classification": each word ``w_t`` and each
    n-gram of 2..``ngrams`` words has a ``dim``-wide vector (the word vocabulary's rows, then ``buckets``
    rows shared by the n-grams through the hashing trick, Weinberger et al. 2009). The branch's sequence
    has one step per word position,

        s_t = E[w_t] + sum_{n=2..N} E[V + h(w_t, ..., w_{t+n-1}) mod buckets]

    (an n-gram counts only when all its words are real, never across padding), and the default ``mean``
    pooling over real positions gives fastText's average of word and n-gram vectors, the lexical view a
    TF-IDF model has. It reads fusionlab's word ids (``modality = "text"``) rather than the shared token
    embedding, so it needs no ``embedding`` of its own in the config. Parameters: ``(V + buckets) * dim``
    with ``V`` the vocabulary size.

    Args:
        dim: width of each word and n-gram vector
        ngrams: longest n-gram (1: words only, 2: words and bigrams, ...)
        buckets: hash rows shared by all n-grams of two words or more
        pool: a registered time pooler (mean | max | last | attention): sequence → vector
    """

    modality: ClassVar[str] = "text"
    injected: ClassVar[tuple[str, ...]] = ("vocab_size",)

    def __init__(self, vocab_size: int, dim: PositiveInt = 16, ngrams: PositiveInt = 2,
                 buckets: PositiveInt = 262144, pool: PoolerName = "mean") -> None:
        super().__init__()
        self.vocab_size, self.ngrams, self.buckets = vocab_size, ngrams, buckets
        rows = vocab_size + (buckets if ngrams > 1 else 0)
        self.vectors = nn.Embedding(rows, dim)
        nn.init.normal_(self.vectors.weight, std=0.1)
        self.out_dim = dim
        self.set_pool(pool)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        ids = x.long()
        real = mask if mask is not None else ids != 0
        out = self.vectors(ids) * real.unsqueeze(-1)
        rolling, whole = ids, real  # the hash of w_t..w_{t+n-1}; whether those n words are all real
        for n in range(2, self.ngrams + 1):
            rolling = (rolling * _PRIME + F.pad(ids[:, n - 1:], (0, n - 1))) % self.buckets
            whole = whole & F.pad(real[:, n - 1:], (0, n - 1), value=False)
            out = out + self.vectors(rolling + self.vocab_size) * whole.unsqueeze(-1)
        return out
