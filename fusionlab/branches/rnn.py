"""Recurrent branch (LSTM or GRU)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import PositiveInt, Probability, choice


class RNNBranch(Branch):
    """An LSTM or GRU over time; returns its outputs ``(B, L, hidden * directions)``.

    ``pool: last`` on a bidirectional RNN joins the forward direction's last step with the
    backward direction's first step, i.e. each direction's final state.
    """

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        cell: choice("lstm", "gru") = "lstm",
        hidden: PositiveInt = 64,
        layers: PositiveInt = 1,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        pool: choice("mean", "max", "last", "attention") = "last",
    ) -> None:
        super().__init__()
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(in_channels, hidden, num_layers=layers, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.hidden = hidden
        self.bidirectional = bidirectional
        self.out_dim = hidden * (2 if bidirectional else 1)
        self.set_pool(pool)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x.transpose(1, 2))
        return out

    def pool(self, seq: Tensor) -> Tensor:
        if self.pool_name == "last" and self.bidirectional:
            return torch.cat([seq[:, -1, : self.hidden], seq[:, 0, self.hidden :]], dim=-1)
        return self.pooler(seq)
