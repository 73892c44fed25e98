"""Multi-layer perceptron over the flattened input."""

from __future__ import annotations

from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import PositiveInts, Probability


class MLPBranch(Branch):
    """Multi-layer perceptron over the flattened series.

    Flatten ``(B, C, L)`` and apply Linear → ReLU → Dropout layers; a sequence of one step. Padded
    steps read as zeros; a batch cut to its longest example is padded back to ``seq_len``.

    Args:
        hidden: hidden widths
        dropout: dropout after each hidden layer
    """

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        hidden: PositiveInts = (256, 128),
        dropout: Probability = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * seq_len
        self.seq_len = seq_len
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
            width = h
        self.net = nn.Sequential(*layers)
        self.out_dim = width
        self.set_pool("last")

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is not None:  # padded steps read as zeros whatever they hold
            x = x.masked_fill(~mask.unsqueeze(1), 0.0)
        if x.shape[-1] < self.seq_len:  # a batch cut to its longest example: pad back to the full width
            x = nn.functional.pad(x, (0, self.seq_len - x.shape[-1]))
        return self.net(x).unsqueeze(1)

    def out_mask(self, mask: Tensor | None, steps: int) -> Tensor | None:
        return None  # one output step, always real
