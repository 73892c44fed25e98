"""Cross-attention runs PyTorch's fused scaled-dot-product kernel in training steps (attention weights are
requested only in eval mode, where validation/test log them, or with ``record_weights = True``); the
outputs and gradients are the same either way and ``branch_weights`` stays available in eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fusionlab.training.run import prepare, train
from tests.conftest import read_metrics

CROSS = ["model=cnn_transformer", "fusion=cross_attention"]  # the YAML defaults of both


@pytest.fixture
def net_and_batch(make_cfg):
    cfg = make_cfg(CROSS)
    dm, module, _ = prepare(cfg)
    batch = next(iter(dm.train_dataloader()))
    x, mask = batch[0][:32], batch[2][:32] if len(batch) > 2 else None
    return module.net, x, mask


def count_sdpa(monkeypatch) -> list[int]:
    calls = [0]
    fused = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls[0] += 1
        return fused(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    return calls


def test_training_step_uses_the_fused_kernel_and_matches_the_weighted_path(net_and_batch, monkeypatch) -> None:
    net, x, mask = net_and_batch
    fusion = net.fusion
    for m in net.modules():  # dropout off so the two paths draw no different random masks
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        if isinstance(m, nn.MultiheadAttention):
            m.dropout = 0.0
    net.train()
    calls = count_sdpa(monkeypatch)  # the transformer branch calls it too: compare the two paths' counts
    fusion.record_weights = True
    out_weighted = net(x, mask)
    weighted_calls = calls[0]
    assert fusion.branch_weights is not None and fusion.branch_weights.shape == (x.shape[0], fusion.k)
    grads_weighted = torch.autograd.grad(out_weighted.sum(), list(fusion.parameters()))

    fusion.record_weights = None  # the default: weights only in eval mode
    calls[0] = 0
    out_fused = net(x, mask)
    layers = len(fusion.blocks[0])
    assert calls[0] - weighted_calls == fusion.k * layers  # one fused call per target branch and layer
    assert fusion.branch_weights is None  # nothing computed that no one reads
    grads_fused = torch.autograd.grad(out_fused.sum(), list(fusion.parameters()))
    torch.testing.assert_close(out_fused, out_weighted, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_fused, grads_weighted):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_eval_keeps_branch_weights_and_record_weights_false_gives_the_same_outputs(net_and_batch) -> None:
    net, x, mask = net_and_batch
    fusion = net.fusion.eval()
    net.eval()
    with torch.no_grad():
        out_weighted = net(x, mask)
        weights = fusion.branch_weights
        fusion.record_weights = False
        out_fused = net(x, mask)
    assert weights is not None and weights.shape == (x.shape[0], fusion.k)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(x.shape[0]))
    assert fusion.branch_weights is None
    torch.testing.assert_close(out_fused, out_weighted, rtol=1e-5, atol=1e-6)


def test_a_run_still_logs_the_branch_weights(make_cfg, tmp_path) -> None:
    train(make_cfg(["debug=limit", *CROSS]))
    metrics = read_metrics(tmp_path)["metrics"]
    total = metrics["val/weight_cnn"] + metrics["val/weight_transformer"]
    assert total == pytest.approx(1.0, abs=1e-5)
