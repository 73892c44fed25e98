"""Each init option gives the weight statistics it promises."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fusionlab.training.run import prepare
from fusionlab.training.weight_init import (
    DefaultInit,
    KaimingInit,
    NormalInit,
    OrthogonalInit,
    XavierInit,
    weight_matrices,
)

FAN_IN, FAN_OUT, HIDDEN = 400, 300, 64


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.ModuleDict({
        "lin": nn.Linear(FAN_IN, FAN_OUT),
        "conv": nn.Conv1d(8, 32, 5),
        "lstm": nn.LSTM(16, HIDDEN, num_layers=2),
        "gru": nn.GRU(16, HIDDEN),
        "norm": nn.LayerNorm(HIDDEN),
    })


def biases(m: nn.Module) -> list[torch.Tensor]:
    return [p for layer, _, _ in weight_matrices(m) for n, p in layer.named_parameters(recurse=False) if "bias" in n]


def test_xavier_uniform_bound_std_and_zero_biases() -> None:
    m = model()
    XavierInit("uniform", gain=1.0)(m)
    a = math.sqrt(6 / (FAN_IN + FAN_OUT))
    w = m["lin"].weight
    assert w.abs().max() <= a and w.std().item() == pytest.approx(a / math.sqrt(3), rel=0.02)
    assert all(torch.count_nonzero(b) == 0 for b in biases(m))
    assert torch.equal(m["norm"].weight, torch.ones(HIDDEN))  # normalisation layers untouched


def test_xavier_normal_std_with_gain() -> None:
    m = model()
    XavierInit("normal", gain=2.0)(m)
    assert m["lin"].weight.std().item() == pytest.approx(2.0 * math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.02)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_normal_std_follows_mode(mode: str) -> None:
    m = model()
    KaimingInit("normal", mode=mode, nonlinearity="relu")(m)
    fan = FAN_IN if mode == "fan_in" else FAN_OUT
    assert m["lin"].weight.std().item() == pytest.approx(math.sqrt(2 / fan), rel=0.02)


def test_kaiming_uniform_bound() -> None:
    m = model()
    KaimingInit("uniform", mode="fan_in", nonlinearity="relu")(m)
    bound = math.sqrt(2) * math.sqrt(3 / FAN_IN)
    w = m["lin"].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound


def test_orthogonal_recurrent_blocks_and_xavier_inputs() -> None:
    m = model()
    OrthogonalInit(forget_bias=1.0)(m)
    for rnn, gates in ((m["lstm"], 4), (m["gru"], 3)):
        for layer in range(rnn.num_layers):
            w_hh = getattr(rnn, f"weight_hh_l{layer}")
            blocks = w_hh.detach().split(HIDDEN)
            assert len(blocks) == gates
            for q in blocks:
                torch.testing.assert_close(q.T @ q, torch.eye(HIDDEN), atol=1e-5, rtol=0)
        w_ih = rnn.weight_ih_l0
        assert w_ih.abs().max() <= math.sqrt(6 / (w_ih.shape[0] + w_ih.shape[1]))
    lstm = m["lstm"]
    total = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert torch.all(total[HIDDEN : 2 * HIDDEN] == 1.0)
    assert torch.count_nonzero(total[:HIDDEN]) == 0 and torch.count_nonzero(total[2 * HIDDEN :]) == 0


def test_normal_std() -> None:
    m = model()
    NormalInit(std=0.05)(m)
    assert m["lin"].weight.std().item() == pytest.approx(0.05, rel=0.02)
    assert m["lin"].weight.mean().abs().item() < 0.005


def test_default_keeps_pytorch_initialisation_but_can_set_forget_bias() -> None:
    fresh, m = model(), model()
    DefaultInit()(m)
    for (n, a), (_, b) in zip(fresh.named_parameters(), m.named_parameters()):
        assert torch.equal(a, b), n
    DefaultInit(forget_bias=2.0)(m)
    assert torch.all((m["lstm"].bias_ih_l1 + m["lstm"].bias_hh_l1)[HIDDEN : 2 * HIDDEN] == 2.0)


def test_zero_bias_false_keeps_biases() -> None:
    fresh, m = model(), model()
    XavierInit(zero_bias=False)(m)
    torch.testing.assert_close(m["lin"].bias, fresh["lin"].bias)


@pytest.mark.parametrize(
    ("option", "check"),
    [
        ("xavier_uniform", lambda w: w.abs().max() <= math.sqrt(6 / sum(w.shape[:2]))),
        ("kaiming_normal", lambda w: abs(w.std().item() - math.sqrt(2 / w.shape[1])) < 0.1 * math.sqrt(2 / w.shape[1])),
        ("normal", lambda w: abs(w.std().item() - 0.02) < 0.002),
    ],
)
def test_init_option_reaches_the_model_through_the_config(make_cfg, option: str, check) -> None:
    _, module, _ = prepare(make_cfg([f"init={option}", "fusion=gated", "debug=fast"]))
    assert check(module.net.fusion.gate.weight)


def test_orthogonal_option_reaches_the_gru_branch(make_cfg) -> None:
    _, module, _ = prepare(make_cfg(["init=orthogonal", "debug=fast"]))
    w_hh = module.net.branches["rnn"].rnn.weight_hh_l0.detach()
    for q in w_hh.split(w_hh.shape[1]):
        torch.testing.assert_close(q.T @ q, torch.eye(q.shape[1]), atol=1e-5, rtol=0)
