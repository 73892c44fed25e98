"""1-D convolutional branch."""

from __future__ import annotations

from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import ConfigError, PositiveInts, Probability
from fusionlab.models.conv import SameConv1d
from fusionlab.models.norm import MaskedBatchNorm1d
from fusionlab.models.time_pooling import PoolerName


def zero_padding(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` ``(B, C, L)`` with the padded steps of ``mask`` ``(B, L)`` set to 0 (whatever they held,
    NaN included), so they act exactly as a convolution's own zero padding."""
    return x if mask is None else x.masked_fill(~mask.unsqueeze(1), 0.0)


class ConvBlock(nn.Module):
    """Conv1d ('same' length, explicit zero padding) → (BatchNorm over real steps) → ReLU → (Dropout),
    with an optional residual connection."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, batch_norm: bool,
                 residual: bool, dropout: float) -> None:
        super().__init__()
        self.conv = SameConv1d(cin, cout, kernel, dilation=dilation, bias=not batch_norm)
        self.norm = MaskedBatchNorm1d(cout) if batch_norm else None
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.skip: nn.Module | None = None
        if residual:
            self.skip = nn.Identity() if cin == cout else nn.Conv1d(cin, cout, 1, bias=False)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        y = self.conv(x)
        if self.norm is not None:
            y = self.norm(y, mask)  # batch statistics from the real steps only
        if self.skip is not None:
            y = y + self.skip(x)
        return self.drop(self.act(y))


class CNNBranch(Branch):
    """1-D convolutional branch: Conv1d → BatchNorm → ReLU per layer, 'same' padding.

    A stack of 1-D convolutions; returns the feature map as a sequence ``(B, L, channels[-1])``.
    BatchNorm takes its batch statistics from real steps only (:class:`MaskedBatchNorm1d`).

    Args:
        channels: output channels per layer (one entry per layer)
        kernel_sizes: kernel width per layer (or one value for all)
        dilations: dilation per layer (or one value for all)
        batch_norm: BatchNorm1d after each convolution (statistics over real steps only)
        residual: add a (1x1-projected) skip connection around each layer
        dropout: dropout after each layer
        pool: a registered time pooler (mean | max | last | attention): sequence → vector
    """

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        channels: PositiveInts = (32, 64, 64),
        kernel_sizes: PositiveInts = (5, 5, 3),
        dilations: PositiveInts = (1, 2, 4),
        batch_norm: bool = True,
        residual: bool = False,
        dropout: Probability = 0.0,
        pool: PoolerName = "mean",
    ) -> None:
        super().__init__()
        channels, kernel_sizes, dilations = list(channels), list(kernel_sizes), list(dilations)
        if not channels:
            raise ConfigError("channels", "needs at least one layer")
        for key, values in (("kernel_sizes", kernel_sizes), ("dilations", dilations)):
            if len(values) == 1:
                values *= len(channels)  # in place: one value for every layer
            if len(values) != len(channels):
                raise ConfigError(key, f"needs 1 or {len(channels)} entries (one per layer), got {len(values)}")
        for k, d in zip(kernel_sizes, dilations):
            if d * (k - 1) + 1 > seq_len:
                raise ConfigError("kernel_sizes", f"receptive field {d * (k - 1) + 1} of a kernel exceeds "
                                  f"the sequence length {seq_len}")
        layers, cin = [], in_channels
        for cout, k, d in zip(channels, kernel_sizes, dilations):
            layers.append(ConvBlock(cin, cout, k, d, batch_norm, residual, dropout))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.out_dim = cin
        self.set_pool(pool)

    def layer_outputs(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """Each layer's feature map as a sequence ``(B, L, channels[i])``. Padded steps are set back
        to zero before and after every layer, so they act exactly as the convolution's own zero
        padding, and BatchNorm takes its statistics from the real steps only."""
        outs = []
        x = zero_padding(x, mask)
        for layer in self.layers:
            x = zero_padding(layer(x, mask), mask)
            outs.append(x.transpose(1, 2))
        return outs

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.layer_outputs(x, mask)[-1]
