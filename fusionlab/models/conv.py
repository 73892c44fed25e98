"""Convolutions with explicit 'same' zero padding, so every exporter takes them.

``nn.Conv1d(..., padding="same")`` with a dilation or an even kernel is written by the legacy ONNX
exporter in a form onnxruntime refuses, and the dynamo exporter fails on it. The same
computation as ``F.pad`` + an unpadded convolution exports everywhere and gives identical outputs
(``tests/test_export_friendly.py``). Parameters and state-dict keys are those of the plain layer.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Left and right zero padding that keeps the length, placed as PyTorch's ``padding='same'``
    places it (``total // 2`` on the left, the extra step of an even kernel on the right)."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


class SameConv1d(nn.Conv1d):
    """``nn.Conv1d(cin, cout, kernel, padding='same', dilation=...)`` with the padding made explicit."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, bias: bool = True) -> None:
        super().__init__(cin, cout, kernel, dilation=dilation, bias=bias)
        left, right = same_padding(kernel, dilation)
        self.pads = [left, right]

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(F.pad(x, self.pads), self.weight, self.bias)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d(cin, cout, kernel, padding='same')`` (square kernel) with the padding made explicit."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True) -> None:
        super().__init__(cin, cout, kernel, bias=bias)
        left, right = same_padding(kernel)
        self.pads = [left, right, left, right]  # F.pad order: last dim (width) first, then height

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(F.pad(x, self.pads), self.weight, self.bias)
