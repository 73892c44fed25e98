"""Batch normalisation over the real steps of padded series."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose batch statistics come from real steps only.

    ``forward(x, mask)`` with ``x`` ``(B, C, L)`` and ``mask`` ``(B, L)`` (True on real steps):

        mu_c      = sum_{b,t} m_bt x_bct / n,   n = sum_{b,t} m_bt
        sigma_c^2 = sum_{b,t} m_bt (x_bct - mu_c)^2 / n
        y         = gamma_c (x - mu_c) / sqrt(sigma_c^2 + eps) + beta_c

    so a real example's output and the running statistics do not depend on how much padding its
    batch holds. The running statistics are updated from the masked statistics (unbiased variance,
    ``n / (n - 1)``, as ``nn.BatchNorm1d`` does); eval mode uses them. Without a mask it is exactly
    ``nn.BatchNorm1d`` (same parameters, buffers and state-dict keys). Everything stays on the
    device: no ``.item()``, no host sync. Padded output steps hold normalised padding; callers that
    need zeros there multiply by the mask. Parameters: ``2 * num_features``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if mask is None or not self.training:  # eval: running statistics, so padding cannot matter
            return self._unmasked(x)
        keep = mask.unsqueeze(1)  # (B, 1, L); where(), not a product, so NaN/inf padding cannot leak in
        count = keep.sum(dtype=x.dtype).clamp_min(1.0)
        mean = torch.where(keep, x, 0.0).sum(dim=(0, 2)) / count  # (C,)
        centred = x - mean[None, :, None]
        var = torch.where(keep, centred.square(), 0.0).sum(dim=(0, 2)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:  # cumulative average, as nn.BatchNorm1d(momentum=None)
                    factor: Tensor | float = (1.0 / self.num_batches_tracked).to(var.dtype)
                else:
                    factor = self.momentum
                unbiased = var * count / (count - 1.0).clamp_min(1.0)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased.detach(), factor)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None]
        if self.affine:
            y = y * self.weight[None, :, None] + self.bias[None, :, None]
        return y

    def _unmasked(self, x: Tensor) -> Tensor:
        """``nn.BatchNorm1d.forward`` spelled out (TorchScript cannot call ``super().forward``)."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                            self.running_var if not self.training or self.track_running_stats else None,
                            self.weight, self.bias, batch_stats, factor, self.eps)
