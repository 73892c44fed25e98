"""The contract every fusion follows."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from fusionlab.registry import Registrable


class Fusion(nn.Module, Registrable):
    """Joins k branches into one ``(B, out_dim)``.

    - ``takes = "vectors"`` (default): ``forward(xs)`` with ``xs = [(B, D_1), ..., (B, D_k)]``, the
      branches' pooled vectors.
    - ``takes = "sequences"``: ``forward(seqs, masks)`` with the branches' sequences
      ``[(B, T_i, D_i)]`` and their masks ``[(B, T_i) bool or None]`` (e.g. cross-attention).

    ``in_dims`` (the branches' widths) is injected when the model is built. A fusion with
    ``makes_logits = True`` also gets ``num_classes`` and its output are the logits (no head).
    Fusions that expose per-branch weights (gates, attention) store the last batch's weights
    ``(B, k)`` in ``self.branch_weights`` so they can be logged and inspected.
    """

    registry_kind: ClassVar[str] = "fusion"  # every subclass is registered (fusionlab.registry)
    injected: ClassVar[tuple[str, ...]] = ("in_dims",)
    takes: ClassVar[str] = "vectors"
    makes_logits: ClassVar[bool] = False
    out_dim: int
    branch_weights: Tensor | None = None

    def forward(self, xs: list[Tensor]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
