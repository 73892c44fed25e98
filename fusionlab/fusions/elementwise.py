"""Element-wise mean and max fusion after projection to a common width (SumFusion's projections)."""

from __future__ import annotations

from torch import Tensor

from fusionlab.fusions.sum import SumFusion


class MeanFusion(SumFusion):
    """``z = (1/k) sum_i (W_i x_i + b_i)``: the average of the projected branches (``D_i -> dim``).

    Parameters: ``sum_i (D_i + 1) * dim``.
    """

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.projected(xs).mean(dim=0)


class MaxFusion(SumFusion):
    """``z = max_i (W_i x_i + b_i)``, element-wise over the projected branches (``D_i -> dim``).

    Parameters: ``sum_i (D_i + 1) * dim``.
    """

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.projected(xs).amax(dim=0)
