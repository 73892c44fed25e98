"""Fusions with 2 and 3 branches of unequal widths: shapes, gradients, weights, parameter formulas."""

from __future__ import annotations

import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.fusions import (
    AttentionFusion,
    ConcatFusion,
    GatedFusion,
    LowRankFusion,
    MaxFusion,
    MeanFusion,
    SumFusion,
    TensorFusion,
)

DIMS = {"two": [5, 9], "three": [4, 7, 11]}
B = 6
FUSIONS = {
    "concat": lambda d: ConcatFusion(d),
    "sum": lambda d: SumFusion(d, dim=8),
    "gated": lambda d: GatedFusion(d, dim=8),
    "attention": lambda d: AttentionFusion(d, dim=8),
    "mean": lambda d: MeanFusion(d, dim=8),
    "max": lambda d: MaxFusion(d, dim=8),
    "lowrank": lambda d: LowRankFusion(d, dim=8, rank=3),
    "tensor": lambda d: TensorFusion(d, dim=4),
}


def inputs(dims: list[int]) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(B, d, requires_grad=True) for d in dims]


@pytest.mark.parametrize("k", DIMS)
@pytest.mark.parametrize("name", FUSIONS)
def test_output_shape_matches_declared_width(name: str, k: str) -> None:
    fusion = FUSIONS[name](DIMS[k])
    assert fusion(inputs(DIMS[k])).shape == (B, fusion.out_dim)


@pytest.mark.parametrize("k", DIMS)
@pytest.mark.parametrize("name", FUSIONS)
def test_every_parameter_and_input_gets_a_gradient(name: str, k: str) -> None:
    fusion = FUSIONS[name](DIMS[k])
    xs = inputs(DIMS[k])
    (fusion(xs) ** 2).sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"
    for i, x in enumerate(xs):
        assert x.grad is not None and x.grad.abs().sum() > 0, f"branch {i} gets no gradient through {name}"


@pytest.mark.parametrize("k", DIMS)
def test_gates_lie_in_unit_interval_and_sum_to_one_over_branches(k: str) -> None:
    fusion = GatedFusion(DIMS[k], dim=8)
    xs = inputs(DIMS[k])
    fusion(xs)
    logits = fusion.gate(torch.cat(xs, -1)).view(B, len(xs), 8)
    z = torch.softmax(logits, dim=1)
    assert torch.all((z >= 0) & (z <= 1))
    torch.testing.assert_close(z.sum(dim=1), torch.ones(B, 8))
    w = fusion.branch_weights
    assert w.shape == (B, len(xs)) and torch.all((w >= 0) & (w <= 1))
    torch.testing.assert_close(w.sum(dim=1), torch.ones(B))


def test_gated_equals_the_two_branch_gmu_formula() -> None:
    fusion = GatedFusion([5, 9], dim=8)
    x1, x2 = inputs([5, 9])
    h1, h2 = torch.tanh(fusion.proj[0](x1)), torch.tanh(fusion.proj[1](x2))
    logits = fusion.gate(torch.cat([x1, x2], -1)).view(B, 2, 8)
    z = torch.sigmoid(logits[:, 0] - logits[:, 1])  # softmax over two = sigmoid of the difference
    torch.testing.assert_close(fusion([x1, x2]), z * h1 + (1 - z) * h2)


@pytest.mark.parametrize("k", DIMS)
def test_attention_weights_sum_to_one(k: str) -> None:
    fusion = AttentionFusion(DIMS[k], dim=8)
    xs = inputs(DIMS[k])
    out = fusion(xs)
    a = fusion.branch_weights
    assert a.shape == (B, len(xs)) and torch.all(a >= 0)
    torch.testing.assert_close(a.sum(dim=1), torch.ones(B))
    expected = sum(a[:, i : i + 1] * fusion.proj[i](x) for i, x in enumerate(xs))
    torch.testing.assert_close(out, expected)


def test_concat_and_sum_compute_their_formulas() -> None:
    xs = inputs([5, 9])
    torch.testing.assert_close(ConcatFusion([5, 9])(xs), torch.cat(xs, -1))
    s = SumFusion([5, 9], dim=8)
    torch.testing.assert_close(s(xs), s.proj[0](xs[0]) + s.proj[1](xs[1]))


@pytest.mark.parametrize("k", DIMS)
def test_parameter_counts_match_docstring_formulas(k: str) -> None:
    dims, dim = DIMS[k], 8
    n = len(dims)

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert count(ConcatFusion(dims)) == 0 and ConcatFusion(dims).out_dim == sum(dims)
    assert count(SumFusion(dims, dim)) == sum((d + 1) * dim for d in dims)
    assert count(GatedFusion(dims, dim)) == sum(dims) * dim + (sum(dims) + 1) * n * dim
    assert count(AttentionFusion(dims, dim)) == (sum(dims) + 1) * n + sum((d + 1) * dim for d in dims)


@pytest.mark.parametrize("k", DIMS)
def test_catalogue_parameter_counts_match_docstring_formulas(k: str) -> None:
    dims, dim, rank = DIMS[k], 8, 3

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert count(MeanFusion(dims, dim)) == count(MaxFusion(dims, dim)) == sum((d + 1) * dim for d in dims)
    assert count(LowRankFusion(dims, dim, rank)) == rank * sum((d + 1) * dim for d in dims) + rank + dim
    assert count(TensorFusion(dims, dim=4)) == sum((d + 1) * 4 for d in dims)
    assert TensorFusion(dims, dim=4).out_dim == 5 ** len(dims)


def test_mean_and_max_compute_their_formulas() -> None:
    xs = inputs([5, 9])
    mean, mx = MeanFusion([5, 9], dim=8), MaxFusion([5, 9], dim=8)
    torch.testing.assert_close(mean(xs), (mean.proj[0](xs[0]) + mean.proj[1](xs[1])) / 2)
    torch.testing.assert_close(mx(xs), torch.maximum(mx.proj[0](xs[0]), mx.proj[1](xs[1])))


def test_lowrank_equals_tensor_fusion_with_a_rank_r_weight() -> None:
    fusion = LowRankFusion([5, 9], dim=8, rank=3)
    x1, x2 = inputs([5, 9])
    z1 = torch.cat([torch.ones(B, 1), x1], -1)
    z2 = torch.cat([torch.ones(B, 1), x2], -1)
    w1, w2 = fusion.factors
    weight = torch.einsum("r,rio,rjo->ijo", fusion.rank_weights, w1, w2)  # the full (6, 10, 8) weight tensor
    expected = torch.einsum("bi,bj,ijo->bo", z1, z2, weight) + fusion.bias
    torch.testing.assert_close(fusion([x1, x2]), expected, rtol=1e-4, atol=1e-5)


def test_lowrank_factors_are_registered_and_trained() -> None:
    fusion = LowRankFusion([5, 9, 4], dim=8, rank=2)
    names = {n for n, _ in fusion.named_parameters()}
    assert {"factors.0", "factors.1", "factors.2", "rank_weights", "bias"} <= names
    opt = torch.optim.SGD(fusion.parameters(), lr=0.1)
    before = [p.detach().clone() for p in fusion.factors]
    fusion(inputs([5, 9, 4])).pow(2).sum().backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, fusion.factors))


def test_tensor_fusion_is_the_outer_product_with_ones() -> None:
    fusion = TensorFusion([5, 9], dim=None)
    x1, x2 = inputs([5, 9])
    z1 = torch.cat([torch.ones(B, 1), x1], -1)
    z2 = torch.cat([torch.ones(B, 1), x2], -1)
    torch.testing.assert_close(fusion([x1, x2]), torch.einsum("bi,bj->bij", z1, z2).flatten(1))
    assert fusion.out_dim == 6 * 10


def test_tensor_fusion_refuses_an_oversized_product_and_suggests_lowrank() -> None:
    with pytest.raises(ConfigError) as err:
        TensorFusion([64, 64, 64], dim=None, max_size=100_000)
    assert err.value.key == "max_size" and "274625" in err.value.message and "lowrank" in err.value.message
