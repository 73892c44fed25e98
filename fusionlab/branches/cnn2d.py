"""2-D convolutional branch for images."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import ConfigError, PositiveInts, Probability
from fusionlab.models.conv import SameConv2d
from fusionlab.models.time_pooling import PoolerName


class Conv2dBlock(nn.Sequential):
    """Conv2d ('same' size, explicit zero padding) → (BatchNorm2d) → ReLU → (Dropout)."""

    def __init__(self, cin: int, cout: int, kernel: int, batch_norm: bool, dropout: float) -> None:
        super().__init__(
            SameConv2d(cin, cout, kernel, bias=not batch_norm),
            nn.BatchNorm2d(cout) if batch_norm else nn.Identity(),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        )


class CNN2dBranch(Branch):
    """2-D convolutional branch for images: Conv2d → BatchNorm → ReLU per layer, 'same' padding. Its
    output is the feature map read as a sequence of the H*W positions.

    A stack of 2-D convolutions over ``(B, C, H, W)``; returns the feature map as a sequence of
    its ``H * W`` positions ``(B, H * W, channels[-1])`` (row-major), so ``pool: mean`` is global
    average pooling (Lin et al. 2014) and ``pool: attention`` attends over positions.

    Args:
        channels: output channels per layer (one entry per layer)
        kernel_sizes: square kernel size per layer (or one value for all)
        batch_norm: BatchNorm2d after each convolution
        dropout: dropout after each layer
        pool: a registered time pooler (mean = global average pooling | max | last | attention): positions → vector
    """

    modality: ClassVar[str] = "image"
    injected: ClassVar[tuple[str, ...]] = ("in_channels", "height", "width")

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        channels: PositiveInts = (32, 64),
        kernel_sizes: PositiveInts = (3,),
        batch_norm: bool = True,
        dropout: Probability = 0.0,
        pool: PoolerName = "mean",
    ) -> None:
        super().__init__()
        channels, kernel_sizes = list(channels), list(kernel_sizes)
        if not channels:
            raise ConfigError("channels", "needs at least one layer")
        if len(kernel_sizes) == 1:
            kernel_sizes *= len(channels)
        if len(kernel_sizes) != len(channels):
            raise ConfigError("kernel_sizes", f"needs 1 or {len(channels)} entries (one per layer), "
                              f"got {len(kernel_sizes)}")
        for k in kernel_sizes:
            if k > min(height, width):
                raise ConfigError("kernel_sizes", f"kernel {k} exceeds the image size {height}x{width}")
        layers, cin = [], in_channels
        for cout, k in zip(channels, kernel_sizes):
            layers.append(Conv2dBlock(cin, cout, k, batch_norm, dropout))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.out_dim = cin
        self.set_pool(pool)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``(B, C, H, W)`` → ``(B, H * W, D)``; images carry no mask."""
        return self.layers(x).flatten(2).transpose(1, 2)
