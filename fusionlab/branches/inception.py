"""InceptionTime branch (Ismail Fawaz et al., "InceptionTime: Finding AlexNet for Time Series
Classification", Data Mining and Knowledge Discovery 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import ConfigError, NonNegativeInt, PositiveFloat, PositiveInt, PositiveInts, choice
from fusionlab.models.norm import MaskedBatchNorm1d


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Left and right zero padding that keeps the length, as Keras' ``padding='same'`` places it
    (the extra step of an even kernel on the right). Explicit, so exports need no ``'same'``."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


class SameConv1d(nn.Conv1d):
    """``Conv1d`` with explicit 'same' zero padding (any kernel width, odd or even)."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, bias: bool = False) -> None:
        super().__init__(cin, cout, kernel, dilation=dilation, bias=bias)
        self.pads = same_padding(kernel, dilation)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.pads) if self.pads != (0, 0) else x)


def zero_padding(x: Tensor, keep: Tensor | None) -> Tensor:
    """``x`` ``(B, C, L)`` with padded steps set to 0 (``keep`` ``(B, 1, L)`` bool, or None)."""
    return x if keep is None else x.masked_fill(~keep, 0.0)


class InceptionModule(nn.Module):
    """One Inception module:

        b = Conv1x1(x) (the bottleneck, when the input has more than one channel)
        y = ReLU(BN([Conv_k1(b); Conv_k2(b); Conv_k3(b); Conv1x1(MaxPool_3(x))]))

    ``filters`` channels per path, so ``(len(kernel_sizes) + 1) * filters`` out. Convolutions
    have no bias (BatchNorm follows). Masks: padded steps are zero before every convolution
    (as the convolution's own zero padding of a shorter series) and ``-inf`` for the max-pool.
    """

    def __init__(self, cin: int, filters: int, kernel_sizes: list[int], bottleneck: int,
                 bn_eps: float, bn_momentum: float) -> None:
        super().__init__()
        self.bottleneck = nn.Conv1d(cin, bottleneck, 1, bias=False) if bottleneck and cin > 1 else None
        width = bottleneck if self.bottleneck is not None else cin
        self.convs = nn.ModuleList(SameConv1d(width, filters, k) for k in kernel_sizes)
        self.pool = nn.MaxPool1d(3, stride=1, padding=1)
        self.pool_conv = nn.Conv1d(cin, filters, 1, bias=False)
        self.out_channels = filters * (len(kernel_sizes) + 1)
        self.norm = MaskedBatchNorm1d(self.out_channels, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        keep = None if mask is None else mask.unsqueeze(1)
        b = x if self.bottleneck is None else zero_padding(self.bottleneck(x), keep)
        paths = [conv(b) for conv in self.convs]
        pooled = self.pool(x if keep is None else x.masked_fill(~keep, float("-inf")))
        paths.append(self.pool_conv(zero_padding(pooled, keep)))
        return zero_padding(torch.relu(self.norm(torch.cat(paths, dim=1), mask)), keep)


class Shortcut(nn.Module):
    """The residual path of InceptionTime and ResNet: ``BN(Conv1x1(x))`` (``BN(x)`` when the
    widths already match and ``project`` is False)."""

    def __init__(self, cin: int, cout: int, bn_eps: float, bn_momentum: float, project: bool = True) -> None:
        super().__init__()
        self.proj = nn.Conv1d(cin, cout, 1, bias=False) if project or cin != cout else None
        self.norm = MaskedBatchNorm1d(cout, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.norm(x if self.proj is None else self.proj(x), mask)


class InceptionBranch(Branch):
    """InceptionTime's network without its classifier: ``depth`` Inception modules with a residual
    connection around every ``residual_every`` of them (``y = ReLU(x_block + BN(Conv1x1(x_in)))``),
    returning the last feature map as a sequence ``(B, L, (len(kernel_sizes) + 1) * filters)``.

    The paper: ``filters=32``, ``kernel_sizes=[40, 20, 10]``, ``bottleneck=32``, ``depth=6``,
    a residual every 3 modules, global average pooling (``pool: mean``). BatchNorm ``eps=1e-3`` as
    Keras; ``bn_momentum=0.1`` (PyTorch's), not Keras' 0.99 (``0.01`` here: PyTorch counts the other
    way), whose running statistics lag the weights in runs of a few hundred steps.
    Parameters (defaults, one input channel): about 420k; the length never changes, so the mask
    is the input mask.
    """

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        filters: PositiveInt = 32,
        kernel_sizes: PositiveInts = (40, 20, 10),
        bottleneck: NonNegativeInt = 32,
        depth: PositiveInt = 6,
        residual_every: NonNegativeInt = 3,
        bn_eps: PositiveFloat = 1e-3,
        bn_momentum: PositiveFloat = 0.1,
        pool: choice("mean", "max", "last", "attention") = "mean",
    ) -> None:
        super().__init__()
        kernel_sizes = list(kernel_sizes)
        if not kernel_sizes:
            raise ConfigError("kernel_sizes", "needs at least one kernel width")
        if not 0 < bn_momentum <= 1:
            raise ConfigError("bn_momentum", f"must be in (0, 1] (PyTorch's convention), got {bn_momentum}")
        self.modules_ = nn.ModuleList()
        self.shortcuts = nn.ModuleDict()
        cin, block_in = in_channels, in_channels
        for d in range(depth):
            module = InceptionModule(cin, filters, kernel_sizes, bottleneck, bn_eps, bn_momentum)
            self.modules_.append(module)
            cin = module.out_channels
            if residual_every and (d + 1) % residual_every == 0:
                self.shortcuts[str(d)] = Shortcut(block_in, cin, bn_eps, bn_momentum)
                block_in = cin
        self.out_dim = cin
        self.set_pool(pool)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        keep = None if mask is None else mask.unsqueeze(1)
        x = zero_padding(x, keep)
        block_in = x
        for d, module in enumerate(self.modules_):
            x = module(x, mask)
            if str(d) in self.shortcuts:
                x = zero_padding(torch.relu(x + self.shortcuts[str(d)](block_in, mask)), keep)
                block_in = x
        return x.transpose(1, 2)
