"""Fusions with 2 and 3 branches of unequal widths: shapes, gradients, weights, parameter formulas."""

from __future__ import annotations

import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.fusions import (
    AttentionFusion,
    BilinearFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GatedFusion,
    LateFusion,
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
    "bilinear": lambda d: BilinearFusion(d, dim=8, factor=3),
    "film": lambda d: FiLMFusion(d, conditioner=1, dim=8),
    "cross_attention": lambda d: CrossAttentionFusion(d, d_model=8, heads=2, ff_dim=16),
    "late": lambda d: LateFusion(d, num_classes=3, mode="weights", hidden=[6]),
}
TWO_ONLY = {"bilinear", "film"}
CASES = [(name, k) for name in FUSIONS for k in DIMS if not (name in TWO_ONLY and k != "two")]
LENGTHS = [7, 5, 3, 4]  # sequence fusions: a different length per branch


def inputs(dims: list[int]) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(B, d, requires_grad=True) for d in dims]


def sequences(dims: list[int]) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Sequences of unequal lengths; the first branch is padded (its rows have 2..7 real steps)."""
    torch.manual_seed(0)
    seqs = [torch.randn(B, t, d, requires_grad=True) for d, t in zip(dims, LENGTHS)]
    real = torch.arange(LENGTHS[0]) < torch.tensor([2, 3, 7, 4, 7, 5])[:, None]
    return seqs, [real] + [None] * (len(dims) - 1)


def run(fusion: torch.nn.Module, dims: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The fusion's output on fresh inputs of widths ``dims``, and the inputs (leaves)."""
    if fusion.takes == "sequences":
        seqs, masks = sequences(dims)
        return fusion(seqs, masks), seqs
    xs = inputs(dims)
    return fusion(xs), xs


@pytest.mark.parametrize(("name", "k"), CASES)
def test_output_shape_matches_declared_width(name: str, k: str) -> None:
    fusion = FUSIONS[name](DIMS[k])
    assert run(fusion, DIMS[k])[0].shape == (B, fusion.out_dim)


@pytest.mark.parametrize(("name", "k"), CASES)
def test_every_parameter_and_input_gets_a_gradient(name: str, k: str) -> None:
    fusion = FUSIONS[name](DIMS[k])
    out, xs = run(fusion, DIMS[k])
    (out ** 2).sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"
    for i, x in enumerate(xs):
        if name == "film" and i == fusion.j:
            continue  # FiLM starts as the identity: the conditioner's gradient flows after the first step
        assert x.grad is not None and x.grad.abs().sum() > 0, f"branch {i} gets no gradient through {name}"


@pytest.mark.parametrize("name", sorted(TWO_ONLY))
def test_two_branch_fusions_refuse_three_branches(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        FUSIONS[name](DIMS["three"])
    # key "": the model places it under model.fusion
    assert err.value.key == "" and f"{name} fuses exactly 2 branches, got 3" in err.value.message


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


# -- bilinear (MFB), FiLM, cross-attention, late -----------------------------------------------------
def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_bilinear_is_sum_pooled_factorised_product_with_power_and_l2_norm() -> None:
    fusion = BilinearFusion([5, 9], dim=8, factor=3).eval()
    x, y = inputs([5, 9])
    joint = fusion.u(x) * fusion.v(y)
    z = torch.stack([joint[:, i * 3 : (i + 1) * 3].sum(-1) for i in range(8)], dim=-1)  # windows of k
    z = torch.sign(z) * torch.sqrt(z.abs() + 1e-8)
    torch.testing.assert_close(fusion([x, y]), z / z.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(fusion([x, y]).norm(dim=-1), torch.ones(B))


def test_bilinear_parameter_count() -> None:
    (d1, d2), o, k = DIMS["two"], 8, 3
    assert count(BilinearFusion([d1, d2], dim=o, factor=k)) == (d1 + 1) * k * o + (d2 + 1) * k * o


@pytest.mark.parametrize("conditioner", [0, 1])
@pytest.mark.parametrize("dim", [None, 8])
def test_film_starts_as_the_identity_and_then_modulates(conditioner: int, dim: int | None) -> None:
    fusion = FiLMFusion([5, 9], conditioner=conditioner, dim=dim)
    xs = inputs([5, 9])
    i, j = 1 - conditioner, conditioner
    torch.testing.assert_close(fusion(xs), fusion.proj(xs[i]))  # γ = 1, β = 0
    assert fusion.out_dim == (dim or [5, 9][i])
    opt = torch.optim.SGD(fusion.parameters(), lr=0.1)
    fusion(xs).sum().backward()
    opt.step()
    xs = inputs([5, 9])
    out = fusion(xs)
    assert not torch.allclose(out, fusion.proj(xs[i]))
    torch.testing.assert_close(out, (1 + fusion.gamma(xs[j])) * fusion.proj(xs[i]) + fusion.beta(xs[j]))
    out.sum().backward()
    assert xs[j].grad.abs().sum() > 0  # the conditioner now gets a gradient


def test_film_parameter_count_and_bad_conditioner() -> None:
    di, dj = 5, 9  # conditioner=1: x_j is the second branch
    assert count(FiLMFusion([di, dj], conditioner=1, dim=8)) == (dj + 1) * 2 * 8 + (di + 1) * 8
    assert count(FiLMFusion([di, dj], conditioner=1)) == (dj + 1) * 2 * di
    with pytest.raises(ConfigError) as err:
        FiLMFusion([di, dj], conditioner=2)
    assert err.value.key == "conditioner"


def cross_attention_count(dims: list[int], d: int, f: int | None, layers: int) -> int:
    block = 4 * d * d + 8 * d + ((d + 1) * f + (f + 1) * d + 2 * d if f else 0)
    return sum((di + 1) * d for di in dims) + len(dims) * (layers * block + 2 * d)


@pytest.mark.parametrize("k", DIMS)
@pytest.mark.parametrize(("ff_dim", "layers"), [(16, 1), (None, 2)])
def test_cross_attention_parameter_count(k: str, ff_dim: int | None, layers: int) -> None:
    fusion = CrossAttentionFusion(DIMS[k], d_model=8, heads=2, layers=layers, ff_dim=ff_dim)
    assert count(fusion) == cross_attention_count(DIMS[k], 8, ff_dim, layers)
    assert fusion.out_dim == len(DIMS[k]) * 8


@pytest.mark.parametrize("k", DIMS)
def test_cross_attention_ignores_padding_and_reports_attention_mass(k: str) -> None:
    fusion = CrossAttentionFusion(DIMS[k], d_model=8, heads=2, ff_dim=16).eval()
    seqs, masks = sequences(DIMS[k])
    out = fusion(seqs, masks)
    w = fusion.branch_weights
    assert w.shape == (B, len(seqs)) and torch.all(w >= 0)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(B))
    garbage = seqs[0].detach().masked_fill(~masks[0].unsqueeze(-1), 1e3)  # change only the padded steps
    torch.testing.assert_close(fusion([garbage, *seqs[1:]], masks), out)
    real = [s[:, :3] for s in seqs]  # and a real step does change it
    assert not torch.allclose(fusion(real, [m[:, :3] if m is not None else None for m in masks]), out)


def test_cross_attention_queries_from_each_branch_attend_to_the_others() -> None:
    fusion = CrossAttentionFusion([5, 9], d_model=8, heads=2, ff_dim=None).eval()
    seqs, _ = sequences([5, 9])
    out = fusion(seqs, [None, None])
    h = [p(s) for p, s in zip(fusion.proj, seqs)]
    expected = []
    for i, j in ((0, 1), (1, 0)):
        block = fusion.blocks[i][0]
        kv = block.norm_kv(h[j])
        z = h[i] + block.attn(block.norm_q(h[i]), kv, kv, need_weights=False)[0]
        expected.append(fusion.norms[i](z).mean(dim=1))
    torch.testing.assert_close(out, torch.cat(expected, dim=-1))


def test_cross_attention_refuses_heads_not_dividing_and_a_single_branch() -> None:
    with pytest.raises(ConfigError) as err:
        CrossAttentionFusion([5, 9], d_model=10, heads=4)
    assert err.value.key == "heads" and "must divide d_model=10" in err.value.message
    with pytest.raises(ConfigError) as err:
        CrossAttentionFusion([5], d_model=8, heads=2)
    assert err.value.key == "" and "at least 2 branches" in err.value.message


@pytest.mark.parametrize("k", DIMS)
def test_late_mean_equals_the_average_of_branch_logits(k: str) -> None:
    fusion = LateFusion(DIMS[k], num_classes=3, mode="mean").eval()
    xs = inputs(DIMS[k])
    expected = sum(head(x) for head, x in zip(fusion.heads, xs)) / len(xs)
    torch.testing.assert_close(fusion(xs), expected)
    assert fusion.makes_logits and fusion.out_dim == 3 and fusion.branch_weights is None


@pytest.mark.parametrize("k", DIMS)
def test_late_weights_are_a_learned_softmax(k: str) -> None:
    fusion = LateFusion(DIMS[k], num_classes=3, mode="weights").eval()
    xs = inputs(DIMS[k])
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.arange(len(xs), dtype=torch.float32))
    out = fusion(xs)
    w = torch.softmax(torch.arange(len(xs), dtype=torch.float32), dim=0)
    torch.testing.assert_close(out, sum(w[i] * fusion.heads[i](x) for i, x in enumerate(xs)))
    torch.testing.assert_close(fusion.branch_weights, w.expand(B, -1))
    torch.testing.assert_close(fusion.branch_weights.sum(dim=1), torch.ones(B))


@pytest.mark.parametrize("k", DIMS)
@pytest.mark.parametrize("hidden", [[], [6, 4]])
def test_late_parameter_count(k: str, hidden: list[int]) -> None:
    dims, c = DIMS[k], 3
    per_branch = 0
    for d in dims:
        widths = [d, *hidden, c]
        per_branch += sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    assert count(LateFusion(dims, num_classes=c, mode="mean", hidden=hidden)) == per_branch
    assert count(LateFusion(dims, num_classes=c, mode="weights", hidden=hidden)) == per_branch + len(dims)


def test_bench_script_prints_one_row_per_fusion_and_branch_count(monkeypatch, capsys) -> None:
    import runpy

    from tests.conftest import CONF, ROOT

    args = ["--batch", "4", "--repeats", "1", "--warmup", "0", "--widths", "8", "--steps", "3"]
    monkeypatch.setattr("sys.argv", ["bench_fusions.py", *args])
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(ROOT / "scripts" / "bench_fusions.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    names = {p.stem for p in (CONF / "fusion").glob("*.yaml")}
    assert {(r[0][2:], r[1]) for r in rows[1:]} == {(n, k) for n in names for k in ("2", "3")}
    refused = {(r[0][2:], r[1]) for r in rows[1:] if r[3] == "refused"}
    assert refused == {("bilinear", "3"), ("film", "3")}


@pytest.mark.parametrize("scheme", ["XavierInit", "KaimingInit", "OrthogonalInit", "NormalInit", "DefaultInit"])
def test_film_stays_the_identity_after_any_init_scheme(scheme: str) -> None:
    import fusionlab.training.init as init

    fusion = FiLMFusion([5, 9], conditioner=0, dim=8)
    getattr(init, scheme)()(fusion)
    xs = inputs([5, 9])
    torch.testing.assert_close(fusion(xs), fusion.proj(xs[1]))
