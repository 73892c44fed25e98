"""Token embedding: the front that turns text (token ids) into a series branches can read."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, PositiveInt, Probability
from fusionlab.registry import register

log = logging.getLogger("fusionlab")


def read_vectors(path: str, wanted: set[str], dim: int) -> dict[str, Tensor]:
    """The vectors of the ``wanted`` words from a GloVe/word2vec text file (``word v1 ... vdim`` per
    line; a word2vec header line ``count dim`` is skipped). A file whose vectors do not have ``dim``
    values is a ConfigError naming ``dim``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("pretrained", f"no vector file at '{path}'")
    found: dict[str, Tensor] = {}
    file_dim: int | None = None
    with p.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(s.isdigit() for s in parts):
                continue  # word2vec text header: "<count> <dim>"
            if len(parts) < 2:
                continue
            if file_dim is None:
                file_dim = len(parts) - 1
                if file_dim != dim:
                    raise ConfigError("dim", f"the vectors in '{path}' have {file_dim} values, but dim is {dim}; "
                                      f"set model.embedding.dim={file_dim}")
            word = parts[0]
            if len(parts) - 1 != file_dim:
                raise ConfigError("pretrained", f"line {number} of '{path}' has {len(parts) - 1} values, "
                                  f"expected {file_dim}")
            if word in wanted and word not in found:
                try:
                    found[word] = torch.tensor([float(v) for v in parts[1:]])
                except ValueError:
                    raise ConfigError("pretrained", f"line {number} of '{path}' is not 'word v1 v2 ...'") from None
    if file_dim is None:
        raise ConfigError("pretrained", f"'{path}' holds no vectors")
    return found


@register("embedding")
class TokenEmbedding(nn.Module):
    """Token embedding trained with the model; used only when the data is text (token ids → vectors).

    ``ids (B, L) -> vectors (B, dim, L)``; id 0 is padding (a zero vector that gets no gradient).

    ``vocab_size`` and ``tokens`` (index → token) are injected from the data. ``pretrained``: a
    GloVe/word2vec-style text file; vocabulary tokens found in it (exactly, else lowercased) start
    from their vector, the others from ``N(0, s^2)`` with ``s`` the std of the loaded vectors, and
    the coverage is logged. ``freeze`` keeps the vectors fixed during training.

    Args:
        dim: width of each token vector (the branches' input channels)
        pretrained: a GloVe/word2vec text file to start from (see embedding=pretrained)
        freeze: keep the vectors fixed during training
        dropout: dropout on the embedded tokens
    """

    injected = ("vocab_size", "tokens")

    def __init__(
        self,
        vocab_size: int,
        tokens: Sequence[str] | None = None,
        dim: PositiveInt = 128,
        pretrained: str | None = None,
        freeze: bool = False,
        dropout: Probability = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_dim = dim
        self.coverage: float | None = None
        if pretrained:
            self.load_pretrained(pretrained, tokens)
        if freeze:
            self.embed.weight.requires_grad_(False)

    @torch.no_grad()
    def load_pretrained(self, path: str, tokens: Sequence[str] | None) -> None:
        if tokens is None:
            raise ConfigError("pretrained", "needs the data's vocabulary (text data), which was not given")
        vocab_size, dim = self.embed.weight.shape
        if len(tokens) != vocab_size:
            raise ConfigError("pretrained", f"the vocabulary has {len(tokens)} tokens but vocab_size is {vocab_size}")
        real = list(tokens)[2:]  # 0 padding, 1 unknown
        vectors = read_vectors(path, set(real) | {t.lower() for t in real}, dim)
        weight = self.embed.weight
        hits = 0
        if vectors:
            std = float(torch.stack(list(vectors.values())).std())
            weight.normal_(0.0, std if std > 0 else 1.0)
            for i, t in enumerate(real, start=2):
                v = vectors.get(t, vectors.get(t.lower()))
                if v is not None:
                    weight[i] = v
                    hits += 1
        weight[0] = 0.0
        self.coverage = hits / max(1, len(real))
        log.info("pretrained vectors from %s: %d of %d vocabulary tokens found (%.1f%%); the rest random",
                 path, hits, len(real), 100 * self.coverage)

    def forward(self, ids: Tensor) -> Tensor:
        return self.drop(self.embed(ids)).transpose(1, 2)
