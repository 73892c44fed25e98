"""Cross-modal attention between the branches' sequences."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, PositiveInt, Probability
from fusionlab.fusions.base import Fusion, InDims


class CrossBlock(nn.Module):
    """One pre-norm cross-modal block of MulT: queries ``z`` attend to keys/values ``s``.

        z = z + MHA(LN(z), LN_s(s), LN_s(s))      (padded source steps masked out)
        z = z + FF(LN_f(z))                        (FF: Linear → ReLU → Dropout → Linear; skipped if ff_dim is null)
    """

    def __init__(self, d_model: int, heads: int, ff_dim: int | None, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.ff: nn.Module | None = None
        if ff_dim:
            self.ff = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Dropout(dropout),
                                    nn.Linear(ff_dim, d_model), nn.Dropout(dropout))

    def forward(self, z: Tensor, s: Tensor, pad: Tensor, need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        """``need_weights=False`` runs PyTorch's fused scaled-dot-product kernel and returns no weights."""
        kv = self.norm_kv(s)
        out, weights = self.attn(self.norm_q(z), kv, kv, key_padding_mask=pad, need_weights=need_weights)
        z = z + self.drop(out)
        if self.ff is not None:
            z = z + self.ff(z)
        return z, weights  # weights: (B, T_q, T_s), averaged over heads; None without need_weights


def _real_steps(h: Tensor, mask: Tensor | None) -> Tensor:
    return torch.ones(h.shape[:2], dtype=torch.bool, device=h.device) if mask is None else mask


class CrossAttentionFusion(Fusion):
    """Cross-modal attention (MulT, Tsai et al. 2019) over the branches' sequences; masked mean per branch,
    concatenated.

    Cross-modal attention as in MulT (Tsai et al., "Multimodal Transformer for Unaligned
    Multimodal Language Sequences", ACL 2019), over the branches' sequences (``takes = "sequences"``):

        h_i = P_i s_i                                   (every branch to a common d_model; P_i: D_i -> d)
        z_i = CrossBlock^L(h_i ; [h_j]_{j != i})       (queries from branch i, keys/values the other
                                                         branches' steps concatenated in time; padded steps masked)
        z   = [MaskedMean_t LN(z_1); ...; MaskedMean_t LN(z_k)]

    Branches may have different lengths ``T_i``. As in MulT the keys/values are the sources' own
    (projected) features at every layer. No positional encoding is added (the branches' outputs
    already carry order). ``out_dim = k * d_model``. Parameters, with ``d = d_model``, ``f = ff_dim``:
    ``sum_i (D_i + 1) d + k (L (4d^2 + 8d + [(d + 1) f + (f + 1) d + 2d]) + 2d)`` (bracket only with a
    feed-forward). ``branch_weights`` ``(B, k)``: the last layer's attention mass each branch
    receives as a source, averaged over query steps and target branches (rows sum to 1). They are
    computed in eval mode (validation/test log them) or always with ``record_weights = True``; otherwise
    (training steps, or ``record_weights = False``) attention runs PyTorch's fused scaled-dot-product
    kernel, which cannot return weights, and ``branch_weights`` is None. The outputs are the same.

    Args:
        d_model: common width every branch is projected to
        heads: attention heads (must divide d_model)
        layers: cross-modal blocks per branch
        ff_dim: feed-forward width inside each block (null: no feed-forward)
        dropout: dropout on attention weights, attention output and feed-forward
    """

    takes = "sequences"
    min_inputs = 2
    record_weights: bool | None = None  # None: in eval mode only; True: every step; False: never (fused path)
    option = "cross_attention"

    def __init__(self, in_dims: InDims, d_model: PositiveInt = 64, heads: PositiveInt = 4, layers: PositiveInt = 1,
                 ff_dim: PositiveInt | None = 128, dropout: Probability = 0.1) -> None:
        super().__init__()
        in_dims = self.set_inputs(in_dims)
        if d_model % heads:
            raise ConfigError("heads", f"must divide d_model={d_model}, got {heads}")
        self.k = len(in_dims)
        self.proj = nn.ModuleList(nn.Linear(d, d_model) for d in in_dims)
        self.blocks = nn.ModuleList(
            nn.ModuleList(CrossBlock(d_model, heads, ff_dim, dropout) for _ in range(layers)) for _ in in_dims
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in in_dims)
        self.out_dim = self.k * d_model

    def forward(self, inputs: dict[str, Tensor], masks: dict[str, Tensor | None]) -> Tensor:
        hs = [p(s) for p, s in zip(self.proj, self.ordered(inputs))]
        real = [_real_steps(h, masks.get(name)) for h, name in zip(hs, self.input_names)]
        want = (not self.training) if self.record_weights is None else self.record_weights
        pooled, received = [], torch.zeros(hs[0].shape[0], self.k, device=hs[0].device)
        for i, (z, blocks) in enumerate(zip(hs, self.blocks)):
            others = [j for j in range(self.k) if j != i]
            source = torch.cat([hs[j] for j in others], dim=1)
            pad = ~torch.cat([real[j] for j in others], dim=1)
            for block in blocks:
                z, weights = block(z, source, pad, need_weights=want)
            m = real[i].unsqueeze(-1).to(z.dtype)
            pooled.append((self.norms[i](z) * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0))
            if weights is None:
                continue
            with torch.no_grad():  # attention mass on each source branch, mean over real query steps
                mass = torch.stack([part.sum(dim=-1) for part in
                                    weights.split([hs[j].shape[1] for j in others], dim=-1)], dim=-1)
                received[:, others] += (mass * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
        self.branch_weights = received / self.k if want else None
        return torch.cat(pooled, dim=-1)
