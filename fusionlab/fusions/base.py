"""The contract every fusion follows."""

from __future__ import annotations

from torch import Tensor, nn


class Fusion(nn.Module):
    """Joins k branch vectors ``[(B, D_1), ..., (B, D_k)]`` into one ``(B, out_dim)``.

    ``in_dims`` (the branches' widths) is injected when the model is built. Fusions that expose
    per-branch weights (gates, attention) store the last batch's weights ``(B, k)`` in
    ``self.branch_weights`` so they can be logged and inspected.
    """

    injected = ("in_dims",)
    out_dim: int
    branch_weights: Tensor | None = None

    def forward(self, xs: list[Tensor]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
