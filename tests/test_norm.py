"""MaskedBatchNorm1d: batch statistics over real steps only, plain BatchNorm1d otherwise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fusionlab.models.norm import MaskedBatchNorm1d


def _pair(c: int = 3, momentum: float | None = 0.1) -> tuple[MaskedBatchNorm1d, nn.BatchNorm1d]:
    torch.manual_seed(0)
    masked, plain = MaskedBatchNorm1d(c, momentum=momentum), nn.BatchNorm1d(c, momentum=momentum)
    with torch.no_grad():
        masked.weight.uniform_(0.5, 2.0)
        masked.bias.uniform_(-1.0, 1.0)
    plain.load_state_dict(masked.state_dict())
    return masked, plain


@pytest.mark.parametrize("momentum", [0.1, None])
def test_without_mask_or_all_real_it_is_batchnorm(momentum: float | None) -> None:
    masked, plain = _pair(momentum=momentum)
    x = torch.randn(4, 3, 9) * 3 + 1
    for mask in (None, torch.ones(4, 9, dtype=torch.bool)):
        y = masked(x, mask)
        torch.testing.assert_close(y, plain(x))
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)
    assert masked.num_batches_tracked == plain.num_batches_tracked == 2
    masked.eval()
    plain.eval()
    torch.testing.assert_close(masked(x, torch.ones(4, 9, dtype=torch.bool)), plain(x))


def test_statistics_come_from_real_steps_only() -> None:
    """Training output on real steps and the running statistics equal BatchNorm1d applied to the
    real steps alone, whatever the padding holds or how long it is."""
    masked, plain = _pair()
    lengths = [9, 4, 6]
    xs = [torch.randn(3, n) * 2 + 0.5 for n in lengths]
    real = torch.cat(xs, dim=1).unsqueeze(0)  # every real step as one long example
    expected = plain(real)[0].split(lengths, dim=1)
    for total, fill in ((9, 0.0), (15, 1e3), (12, float("nan"))):
        masked.reset_running_stats()
        x = torch.full((3, 3, total), fill)
        mask = torch.zeros(3, total, dtype=torch.bool)
        for b, xi in enumerate(xs):
            x[b, :, : xi.shape[1]] = xi
            mask[b, : xi.shape[1]] = True
        y = masked(x, mask)
        for b, n in enumerate(lengths):
            torch.testing.assert_close(y[b, :, :n], expected[b])
        torch.testing.assert_close(masked.running_mean, plain.running_mean)
        torch.testing.assert_close(masked.running_var, plain.running_var)


def test_gradients_ignore_padding() -> None:
    masked, _ = _pair()
    x = torch.randn(2, 3, 8)
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    grads = []
    for fill in (0.0, 50.0):
        xi = x.clone()
        xi[1, :, 5:] = fill
        xi.requires_grad_(True)
        y = masked(xi, mask)
        (y * mask.unsqueeze(1)).square().sum().backward()
        grads.append((xi.grad * mask.unsqueeze(1)).clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_eval_uses_running_statistics() -> None:
    masked, plain = _pair()
    for _ in range(3):
        masked(torch.randn(4, 3, 7) + 2, torch.rand(4, 7) > 0.3)
    plain.load_state_dict(masked.state_dict())
    masked.eval()
    plain.eval()
    x = torch.randn(2, 3, 7)
    torch.testing.assert_close(masked(x, torch.rand(2, 7) > 0.5), plain(x))
