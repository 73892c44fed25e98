"""Transformer-encoder branch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import ConfigError, PositiveInt, Probability, choice
from fusionlab.models.time_pooling import PoolerName


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """The fixed positional encoding of Vaswani et al. 2017, ``(length, dim)``."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def pad_to_patches(x: Tensor, mask: Tensor | None, patch_size: int) -> tuple[Tensor, Tensor | None]:
    """``x`` ``(B, C, L)`` with padded steps zeroed and ``L`` padded with zeros (masked) up to a
    multiple of ``patch_size``; the mask of the patches ``(B, ceil(L / p))``: a patch is real when any
    of its steps is. An example of ``n`` real steps always gets ``ceil(n / p)`` patches whose last one
    holds its last steps and zeros, however long the batch it sits in: the output is batch-independent."""
    extra = (-x.shape[-1]) % patch_size
    if mask is not None:
        x = x.masked_fill(~mask.unsqueeze(1), 0.0)
    x = F.pad(x, [0, extra])  # unconditional (extra may be 0): no branch on a shape for exporters
    return x, None if mask is None else patch_mask(mask, patch_size)


def patch_mask(mask: Tensor, patch_size: int) -> Tensor:
    """The mask of the ``ceil(L / p)`` patches of a step mask ``(B, L)``: real when any step is."""
    mask = F.pad(mask, [0, (-mask.shape[-1]) % patch_size], value=False)
    return mask.reshape(mask.shape[0], -1, patch_size).any(dim=-1)


class TransformerBranch(Branch):
    """Transformer-encoder branch (pre-norm), with a patch embedding of the series.

    Patch embedding (a strided Conv1d over non-overlapping patches of ``patch_size`` steps;
    ``patch_size=1`` embeds every step) + positions + a pre-norm Transformer encoder; returns
    ``(B, ceil(L / patch_size), d_model)``. A series whose length is not a multiple of ``patch_size``
    gets a last patch completed with zeros (see :func:`pad_to_patches`).

    Args:
        d_model: token width
        heads: attention heads (must divide d_model)
        layers: encoder layers
        ff_dim: feed-forward width
        dropout: dropout inside the encoder
        patch_size: time steps per token (1 embeds every step; a last partial patch is completed with zeros)
        positions: sinusoidal | learned
        pool: a registered time pooler (mean | max | last | attention)
    """

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        d_model: PositiveInt = 64,
        heads: PositiveInt = 4,
        layers: PositiveInt = 2,
        ff_dim: PositiveInt = 128,
        dropout: Probability = 0.1,
        patch_size: PositiveInt = 2,
        positions: choice("sinusoidal", "learned") = "sinusoidal",
        pool: PoolerName = "mean",
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ConfigError("heads", f"must divide d_model={d_model}, got {heads}")
        if patch_size > seq_len:
            raise ConfigError("patch_size", f"must be <= the sequence length {seq_len}, got {patch_size}")
        self.embed = nn.Conv1d(in_channels, d_model, patch_size, stride=patch_size)
        self.patch_size = patch_size
        tokens = -(-seq_len // patch_size)  # ceil: a last, partial patch is kept
        if positions == "learned":
            self.positions = nn.Parameter(torch.randn(tokens, d_model) * 0.02)
        else:
            self.register_buffer("positions", sinusoidal_positions(tokens, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model
        self.set_pool(pool)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.layer_outputs(x, mask)[-1]

    def layer_outputs(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """Each encoder layer's output (layer-normed), ``(B, L / patch_size, d_model)``."""
        x, mask = pad_to_patches(x, mask, self.patch_size)
        h = self.embed(x).transpose(1, 2)
        h = h + self.positions[: h.shape[1]]
        pad: Tensor | None = None
        if mask is not None:
            pad = ~mask
            h = h.masked_fill(pad.unsqueeze(-1), 0.0)
        outs = []
        for layer in self.encoder.layers:
            h = layer(h, src_key_padding_mask=pad)
            outs.append(self.norm(h))
        return outs

    def out_mask(self, mask: Tensor | None, steps: int) -> Tensor | None:
        """A patch is real when any of its steps is."""
        return None if mask is None else patch_mask(mask, self.patch_size)
