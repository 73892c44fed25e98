"""Element-wise fusions: the mean and the maximum of the branches projected to a common width
(SumFusion's projections). (Time pooling, which reduces one branch's sequence, is
:mod:`fusionlab.models.time_pooling`.)"""

from __future__ import annotations

from torch import Tensor

from fusionlab.fusions.sum import SumFusion


class MeanFusion(SumFusion):
    """Project each branch to `dim` and average: z = (1/k) sum_i (W_i x_i + b_i).

    Parameters: ``sum_i (D_i + 1) * dim``.

    Args:
        dim: common width
    """

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.projected(inputs).mean(dim=0)


class MaxFusion(SumFusion):
    """Project each branch to `dim` and take the element-wise maximum: z = max_i (W_i x_i + b_i).

    Parameters: ``sum_i (D_i + 1) * dim``.

    Args:
        dim: common width
    """

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.projected(inputs).amax(dim=0)
