"""ResNet branch for time series (Wang, Yan & Oates, "Time Series Classification from Scratch with
Deep Neural Networks: A Strong Baseline", IJCNN 2017)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.branches.inception import SameConv1d, Shortcut, zero_padding
from fusionlab.config.schema import ConfigError, PositiveFloat, PositiveInts, choice
from fusionlab.models.norm import MaskedBatchNorm1d


class ResidualBlock(nn.Module):
    """``ReLU(BN(Conv_k3(ReLU(BN(Conv_k2(ReLU(BN(Conv_k1(x))))))) + shortcut(x))`` with
    ``shortcut = BN(Conv1x1(x))`` when the width changes, else ``BN(x)`` (as in the authors' code).
    Explicit 'same' padding; padded steps are zero before every convolution."""

    def __init__(self, cin: int, cout: int, kernel_sizes: list[int], bn_eps: float, bn_momentum: float) -> None:
        super().__init__()
        widths = [cin] + [cout] * len(kernel_sizes)
        self.convs = nn.ModuleList(SameConv1d(a, b, k) for a, b, k in zip(widths, widths[1:], kernel_sizes))
        self.norms = nn.ModuleList(MaskedBatchNorm1d(cout, eps=bn_eps, momentum=bn_momentum) for _ in kernel_sizes)
        self.shortcut = Shortcut(cin, cout, bn_eps, bn_momentum, project=False)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        keep = None if mask is None else mask.unsqueeze(1)
        y = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            y = norm(conv(y), mask)
            if i < last:
                y = zero_padding(torch.relu(y), keep)
        return zero_padding(torch.relu(y + self.shortcut(x, mask)), keep)


class ResNetBranch(Branch):
    """Wang et al.'s ResNet without its classifier: residual blocks of ``channels[i]`` filters,
    each of ``len(kernel_sizes)`` convolutions, returning the last feature map ``(B, L,
    channels[-1])``. The paper: ``channels=[64, 128, 128]``, ``kernel_sizes=[8, 5, 3]``, global
    average pooling. Parameters (defaults, one input channel): about 504k. ``bn_momentum`` is
    PyTorch's (Keras' 0.99 is 0.01 here, too slow for short runs); the length never changes, so the
    mask is the input mask.
    """

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        channels: PositiveInts = (64, 128, 128),
        kernel_sizes: PositiveInts = (8, 5, 3),
        bn_eps: PositiveFloat = 1e-3,
        bn_momentum: PositiveFloat = 0.1,
        pool: choice("mean", "max", "last", "attention") = "mean",
    ) -> None:
        super().__init__()
        channels, kernel_sizes = list(channels), list(kernel_sizes)
        if not channels:
            raise ConfigError("channels", "needs at least one block")
        if not kernel_sizes:
            raise ConfigError("kernel_sizes", "needs at least one convolution per block")
        if not 0 < bn_momentum <= 1:
            raise ConfigError("bn_momentum", f"must be in (0, 1] (PyTorch's convention), got {bn_momentum}")
        blocks, cin = [], in_channels
        for cout in channels:
            blocks.append(ResidualBlock(cin, cout, kernel_sizes, bn_eps, bn_momentum))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = cin
        self.set_pool(pool)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = zero_padding(x, None if mask is None else mask.unsqueeze(1))
        for block in self.blocks:
            x = block(x, mask)
        return x.transpose(1, 2)
