"""The contract every branch follows."""

from __future__ import annotations

from torch import Tensor, nn

from fusionlab.models.poolers import make_pooler


class Branch(nn.Module):
    """A feature extractor over ``(batch, channels, length)`` that returns a sequence ``(B, T, D)``.

    Subclasses set ``self.out_dim`` (= D) in ``__init__`` and call :meth:`set_pool` once it is
    known. ``in_channels`` and ``seq_len`` are injected from the data's input shape, so they
    never appear in a config.
    """

    injected = ("in_channels", "seq_len")
    out_dim: int

    def set_pool(self, pool: str) -> None:
        self.pool_name = pool
        self.pooler = make_pooler(pool, self.out_dim)

    def pool(self, seq: Tensor) -> Tensor:
        """Reduce the branch's sequence to a vector ``(B, D)``."""
        return self.pooler(seq)
