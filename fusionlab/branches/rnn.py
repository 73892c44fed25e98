"""Recurrent branch (LSTM or GRU)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import PositiveInt, Probability, choice
from fusionlab.models.time_pooling import PoolerName, last_index


def reverse_real_steps(x: Tensor, lengths: Tensor) -> Tensor:
    """``x`` ``(B, T, F)`` with each example's first ``lengths[b]`` steps reversed in place and its
    padding left where it is (an involution). On device: no host sync, no packing."""
    steps = torch.arange(x.shape[1], device=x.device)
    n = lengths.unsqueeze(1)
    index = torch.where(steps < n, n - 1 - steps, steps)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class BidirectionalRNN(nn.Module):
    """A bidirectional LSTM/GRU that honours padding without packing: per layer, a forward RNN reads
    the series as it is (causal: padding after the last real step cannot reach the real outputs) and
    a backward RNN reads each example's real steps reversed (:func:`reverse_real_steps`), so it starts
    at the example's own last real step. With no padding it computes exactly what
    ``nn.LSTM/GRU(bidirectional=True)`` computes; old ``bidirectional`` state dicts load (mapped)."""

    def __init__(self, rnn_cls: type[nn.RNNBase], in_size: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.forward_layers = nn.ModuleList(
            rnn_cls(in_size if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers))
        self.backward_layers = nn.ModuleList(
            rnn_cls(in_size if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers))
        self.drop = nn.Dropout(dropout) if dropout > 0 and layers > 1 else nn.Identity()
        self.register_load_state_dict_pre_hook(_from_cudnn_layout)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x`` ``(B, T, F)``, ``lengths`` ``(B,)`` real steps per example (None: all ``T``)."""
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i > 0:
                x = self.drop(x)  # between layers, as nn.LSTM's dropout
            if lengths is None:
                back = bwd(x.flip(1))[0].flip(1)
            else:
                back = reverse_real_steps(bwd(reverse_real_steps(x, lengths))[0], lengths)
            x = torch.cat([fwd(x)[0], back], dim=-1)
        return x


def _from_cudnn_layout(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Map an ``nn.LSTM/GRU(bidirectional=True)`` state dict (``weight_ih_l1_reverse``, ...) saved
    before this module existed onto the per-layer, per-direction layout."""
    for key in [k for k in state_dict if k.startswith(prefix) and "." not in k[len(prefix):]]:
        name = key[len(prefix):]  # e.g. weight_hh_l1_reverse
        base, _, rest = name.rpartition("_l")
        layer, _, reverse = rest.partition("_")
        side = "backward_layers" if reverse == "reverse" else "forward_layers"
        state_dict[f"{prefix}{side}.{layer}.{base}_l0"] = state_dict.pop(key)


class RNNBranch(Branch):
    """Recurrent branch over time steps.

    An LSTM or GRU over time; returns its outputs ``(B, L, hidden * directions)``.

    ``pool: last`` on a bidirectional RNN joins the forward direction's last real step with the
    backward direction's first step, i.e. each direction's final state.

    Padding (``mask`` ``(B, L)``, real steps first) is honoured on the device, with no lengths moved
    to the host and no packing: the forward direction is causal, so real outputs never see the
    padding after them, and the backward direction reads each example's real steps reversed (see
    :class:`BidirectionalRNN`). Padded output steps are zero.

    Args:
        cell: lstm | gru
        hidden: hidden units per direction
        layers: stacked recurrent layers
        bidirectional: also run backwards and concatenate
        dropout: dropout between stacked layers (layers > 1)
        pool: a registered time pooler (last | mean | max | attention)
    """

    __constants__ = ["bidirectional"]

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        cell: choice("lstm", "gru") = "gru",
        hidden: PositiveInt = 64,
        layers: PositiveInt = 1,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        pool: PoolerName = "last",
    ) -> None:
        super().__init__()
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        between = dropout if layers > 1 else 0.0
        self.rnn: nn.Module
        if bidirectional:
            self.rnn = BidirectionalRNN(rnn_cls, in_channels, hidden, layers, between)
        else:
            self.rnn = rnn_cls(in_channels, hidden, num_layers=layers, batch_first=True, dropout=between)
        self.hidden = hidden
        self.bidirectional = bidirectional
        self.out_dim = hidden * (2 if bidirectional else 1)
        self.set_pool(pool)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x.transpose(1, 2)
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # garbage (even NaN) never enters the recurrence
        if self.bidirectional:  # noqa: SIM108 (a TorchScript constant: the other branch is not compiled)
            out = self.rnn(x, None if mask is None else mask.sum(dim=1))
        else:
            out = self.rnn(x)[0]
        return out if mask is None else out.masked_fill(~mask.unsqueeze(-1), 0.0)

    def pool(self, seq: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.pool_name == "last" and self.bidirectional:
            last = seq[:, -1] if mask is None else seq[torch.arange(seq.shape[0], device=seq.device),
                                                       last_index(mask)]
            return torch.cat([last[:, : self.hidden], seq[:, 0, self.hidden :]], dim=-1)
        return self.pooler(seq, mask)
