"""Recurrent branch (LSTM or GRU)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import PositiveInt, Probability, choice
from fusionlab.models.poolers import last_index


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

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x.transpose(1, 2)
        if mask is None:
            return self.rnn(x)[0]
        # packed: the recurrence stops at each sequence's last real step (padded outputs are 0)
        lengths = mask.sum(dim=1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def pool(self, seq: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.pool_name == "last" and self.bidirectional:
            last = seq[:, -1] if mask is None else seq[torch.arange(seq.shape[0], device=seq.device),
                                                       last_index(mask)]
            return torch.cat([last[:, : self.hidden], seq[:, 0, self.hidden :]], dim=-1)
        return self.pooler(seq, mask)
