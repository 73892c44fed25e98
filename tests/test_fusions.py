"""Fusions with 2 and 3 named branches of unequal widths: shapes, gradients, weights, parameter
formulas, named inputs. Options are discovered from ``conf/fusion`` (built with their own defaults);
"fuses exactly two branches" is read from the class's ``arity``."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from fusionlab.config import ConfigError
from fusionlab.config.schema import locate
from fusionlab.fusions import (
    AttentionFusion,
    BilinearFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    Fusion,
    GatedFusion,
    LateFusion,
    LowRankFusion,
    MaxFusion,
    MeanFusion,
    SumFusion,
    TensorFusion,
)
from tests.conftest import CONF

DIMS = {"two": {"cnn": 5, "rnn": 9}, "three": {"cnn": 4, "rnn": 7, "transformer": 11}}
B = 6
OPTIONS = sorted(p.stem for p in (CONF / "fusion").glob("*.yaml"))
LENGTHS = {"cnn": 7, "rnn": 5, "transformer": 3}  # sequence fusions: a different length per branch


def option_class(name: str) -> type[Fusion]:
    return locate(OmegaConf.load(CONF / "fusion" / f"{name}.yaml")["_target_"])


def build_option(name: str, dims: dict[str, int]) -> Fusion:
    """The fusion of ``conf/fusion/<name>.yaml`` with its own defaults."""
    node = OmegaConf.to_container(OmegaConf.load(CONF / "fusion" / f"{name}.yaml"))
    cls = locate(node.pop("_target_"))
    if "num_classes" in cls.injected:
        node["num_classes"] = 3
    return cls(in_dims=dims, **node)


CASES = [(name, k) for name in OPTIONS for k in DIMS
         if option_class(name).arity in (None, len(DIMS[k]))]


def inputs(dims: dict[str, int]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {n: torch.randn(B, d, requires_grad=True) for n, d in dims.items()}


def sequences(dims: dict[str, int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | None]]:
    """Sequences of unequal lengths; "cnn" is padded (its rows have 2..7 real steps)."""
    torch.manual_seed(0)
    seqs = {n: torch.randn(B, LENGTHS[n], d, requires_grad=True) for n, d in dims.items()}
    real = torch.arange(LENGTHS["cnn"]) < torch.tensor([2, 3, 7, 4, 7, 5])[:, None]
    return seqs, {n: (real if n == "cnn" else None) for n in dims}


def run(fusion: Fusion, dims: dict[str, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The fusion's output on fresh inputs of widths ``dims``, and the inputs (leaves)."""
    if fusion.takes == "sequences":
        seqs, masks = sequences(dims)
        return fusion(seqs, masks), seqs
    xs = inputs(dims)
    return fusion(xs), xs


@pytest.mark.parametrize(("name", "k"), CASES)
def test_output_shape_matches_declared_width(name: str, k: str) -> None:
    fusion = build_option(name, DIMS[k])
    assert run(fusion, DIMS[k])[0].shape == (B, fusion.out_dim)
    assert fusion.input_names == list(DIMS[k])


@pytest.mark.parametrize(("name", "k"), CASES)
def test_every_parameter_and_input_gets_a_gradient(name: str, k: str) -> None:
    fusion = build_option(name, DIMS[k])
    out, xs = run(fusion, DIMS[k])
    (out ** 2).sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"
    for n, x in xs.items():
        if getattr(fusion, "conditioner", None) == n:
            continue  # FiLM starts as the identity: the conditioner's gradient flows after the first step
        assert x.grad is not None and x.grad.abs().sum() > 0, f"branch {n} gets no gradient through {name}"


@pytest.mark.parametrize(("name", "k"), CASES)
def test_inputs_are_taken_by_name_not_by_position(name: str, k: str) -> None:
    """The same named inputs in another insertion order give the same output."""
    fusion = build_option(name, DIMS[k]).eval()
    if fusion.takes == "sequences":
        seqs, masks = sequences(DIMS[k])
        out = fusion(seqs, masks)
        shuffled = fusion(dict(reversed(seqs.items())), dict(reversed(masks.items())))
    else:
        xs = inputs(DIMS[k])
        out, shuffled = fusion(xs), fusion(dict(reversed(xs.items())))
    torch.testing.assert_close(shuffled, out)


@pytest.mark.parametrize("name", [n for n in OPTIONS if option_class(n).arity is not None])
def test_fixed_arity_fusions_refuse_another_number_of_branches(name: str) -> None:
    arity = option_class(name).arity
    dims = DIMS["three"] if arity != 3 else DIMS["two"]
    with pytest.raises(ConfigError) as err:
        build_option(name, dims)
    # key "": the model places it under model.fusion
    assert err.value.key == "" and f"fuses exactly {arity} branches, got {len(dims)}" in err.value.message
    assert ", ".join(dims) in err.value.message  # the branches are named


@pytest.mark.parametrize("k", DIMS)
def test_gates_are_convex_weights_and_an_open_gate_passes_its_branch(k: str) -> None:
    """Gates are in [0, 1] and sum to 1 over branches; driving one branch's gate logits up makes the
    output that branch's tanh(W_i x_i) alone (the GMU's selection behaviour)."""
    dims = DIMS[k]
    fusion = GatedFusion(dims, dim=8)
    xs = inputs(dims)
    fusion(xs)
    w = fusion.branch_weights
    assert w.shape == (B, len(xs)) and torch.all((w >= 0) & (w <= 1))
    torch.testing.assert_close(w.sum(dim=1), torch.ones(B))
    for i, name in enumerate(dims):
        with torch.no_grad():
            fusion.gate.weight.zero_()
            fusion.gate.bias.zero_()
            fusion.gate.bias.view(len(dims), 8)[i] = 30.0  # branch i's gate logits >> the others'
        torch.testing.assert_close(fusion(xs), torch.tanh(fusion.proj[i](xs[name])))
        torch.testing.assert_close(fusion.branch_weights[:, i], torch.ones(B))


def test_gated_equals_the_two_branch_gmu_formula() -> None:
    fusion = GatedFusion(DIMS["two"], dim=8)
    xs = inputs(DIMS["two"])
    x1, x2 = xs["cnn"], xs["rnn"]
    h1, h2 = torch.tanh(fusion.proj[0](x1)), torch.tanh(fusion.proj[1](x2))
    logits = fusion.gate(torch.cat([x1, x2], -1)).view(B, 2, 8)
    z = torch.sigmoid(logits[:, 0] - logits[:, 1])  # the paper's sigmoid gate
    torch.testing.assert_close(fusion(xs), z * h1 + (1 - z) * h2)


@pytest.mark.parametrize("k", DIMS)
def test_attention_weights_sum_to_one_and_weight_the_projections(k: str) -> None:
    fusion = AttentionFusion(DIMS[k], dim=8)
    xs = inputs(DIMS[k])
    out = fusion(xs)
    a = fusion.branch_weights
    assert a.shape == (B, len(xs)) and torch.all(a >= 0)
    torch.testing.assert_close(a.sum(dim=1), torch.ones(B))
    expected = sum(a[:, i : i + 1] * fusion.proj[i](x) for i, x in enumerate(xs.values()))
    torch.testing.assert_close(out, expected)
    with torch.no_grad():  # all attention on the last branch
        fusion.attention.weight.zero_()
        fusion.attention.bias.copy_(torch.tensor([0.0] * (len(xs) - 1) + [40.0]))
    torch.testing.assert_close(fusion(xs), fusion.proj[-1](list(xs.values())[-1]))


def test_concat_and_sum_compute_their_formulas() -> None:
    xs = inputs(DIMS["two"])
    torch.testing.assert_close(ConcatFusion(DIMS["two"])(xs), torch.cat([xs["cnn"], xs["rnn"]], -1))
    s = SumFusion(DIMS["two"], dim=8)
    torch.testing.assert_close(s(xs), s.proj[0](xs["cnn"]) + s.proj[1](xs["rnn"]))


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("k", DIMS)
def test_parameter_counts_match_docstring_formulas(k: str) -> None:
    named, dim = DIMS[k], 8
    dims, n = list(named.values()), len(named)
    assert count(ConcatFusion(named)) == 0 and ConcatFusion(named).out_dim == sum(dims)
    assert count(SumFusion(named, dim)) == sum((d + 1) * dim for d in dims)
    assert count(GatedFusion(named, dim)) == sum(dims) * dim + (sum(dims) + 1) * n * dim
    assert count(AttentionFusion(named, dim)) == (sum(dims) + 1) * n + sum((d + 1) * dim for d in dims)
    rank = 3
    assert count(MeanFusion(named, dim)) == count(MaxFusion(named, dim)) == sum((d + 1) * dim for d in dims)
    assert count(LowRankFusion(named, dim, rank)) == rank * sum((d + 1) * dim for d in dims) + rank + dim
    assert count(TensorFusion(named, dim=4)) == sum((d + 1) * 4 for d in dims)
    assert TensorFusion(named, dim=4).out_dim == 5 ** n


def test_mean_and_max_compute_their_formulas() -> None:
    xs = inputs(DIMS["two"])
    mean, mx = MeanFusion(DIMS["two"], dim=8), MaxFusion(DIMS["two"], dim=8)
    a, b = xs["cnn"], xs["rnn"]
    torch.testing.assert_close(mean(xs), (mean.proj[0](a) + mean.proj[1](b)) / 2)
    torch.testing.assert_close(mx(xs), torch.maximum(mx.proj[0](a), mx.proj[1](b)))


def test_lowrank_equals_tensor_fusion_with_a_rank_r_weight() -> None:
    fusion = LowRankFusion(DIMS["two"], dim=8, rank=3)
    xs = inputs(DIMS["two"])
    z1 = torch.cat([torch.ones(B, 1), xs["cnn"]], -1)
    z2 = torch.cat([torch.ones(B, 1), xs["rnn"]], -1)
    w1, w2 = fusion.factors
    weight = torch.einsum("r,rio,rjo->ijo", fusion.rank_weights, w1, w2)  # the full (6, 10, 8) weight tensor
    expected = torch.einsum("bi,bj,ijo->bo", z1, z2, weight) + fusion.bias
    torch.testing.assert_close(fusion(xs), expected, rtol=1e-4, atol=1e-5)


def test_lowrank_factors_are_registered_and_trained() -> None:
    fusion = LowRankFusion(DIMS["three"], dim=8, rank=2)
    names = {n for n, _ in fusion.named_parameters()}
    assert {"factors.0", "factors.1", "factors.2", "rank_weights", "bias"} <= names
    opt = torch.optim.SGD(fusion.parameters(), lr=0.1)
    before = [p.detach().clone() for p in fusion.factors]
    fusion(inputs(DIMS["three"])).pow(2).sum().backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, fusion.factors))


def test_tensor_fusion_is_the_outer_product_with_ones() -> None:
    fusion = TensorFusion(DIMS["two"], dim=None)
    xs = inputs(DIMS["two"])
    z1 = torch.cat([torch.ones(B, 1), xs["cnn"]], -1)
    z2 = torch.cat([torch.ones(B, 1), xs["rnn"]], -1)
    torch.testing.assert_close(fusion(xs), torch.einsum("bi,bj->bij", z1, z2).flatten(1))
    assert fusion.out_dim == 6 * 10


def test_tensor_fusion_refuses_an_oversized_product_and_suggests_lowrank() -> None:
    with pytest.raises(ConfigError) as err:
        TensorFusion({"a": 64, "b": 64, "c": 64}, dim=None, max_size=100_000)
    assert err.value.key == "max_size" and "274625" in err.value.message and "lowrank" in err.value.message


# -- bilinear (MFB), FiLM, cross-attention, late -----------------------------------------------------
def test_bilinear_is_sum_pooled_factorised_product_with_power_and_l2_norm() -> None:
    fusion = BilinearFusion(DIMS["two"], dim=8, factor=3).eval()
    xs = inputs(DIMS["two"])
    joint = fusion.u(xs["cnn"]) * fusion.v(xs["rnn"])
    z = torch.stack([joint[:, i * 3 : (i + 1) * 3].sum(-1) for i in range(8)], dim=-1)  # windows of k
    z = torch.sign(z) * torch.sqrt(z.abs() + 1e-8)
    torch.testing.assert_close(fusion(xs), z / z.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(fusion(xs).norm(dim=-1), torch.ones(B))


def test_bilinear_parameter_count_and_pair_chosen_by_name() -> None:
    d1, d2, o, k = 5, 9, 8, 3
    assert count(BilinearFusion(DIMS["two"], dim=o, factor=k)) == (d1 + 1) * k * o + (d2 + 1) * k * o
    swapped = BilinearFusion(DIMS["two"], dim=o, factor=k, pair=["rnn", "cnn"])
    assert swapped.u.in_features == 9 and swapped.v.in_features == 5  # x = rnn goes through U
    with pytest.raises(ConfigError) as err:
        BilinearFusion(DIMS["two"], pair=["cnn", "gru"])
    assert err.value.key == "pair" and "['cnn', 'rnn']" in err.value.message


@pytest.mark.parametrize("conditioner", ["cnn", "rnn"])
@pytest.mark.parametrize("dim", [None, 8])
def test_film_starts_as_the_identity_and_then_modulates(conditioner: str, dim: int | None) -> None:
    fusion = FiLMFusion(DIMS["two"], conditioner=conditioner, dim=dim)
    i = "rnn" if conditioner == "cnn" else "cnn"  # the modulated branch
    xs = inputs(DIMS["two"])
    torch.testing.assert_close(fusion(xs), fusion.proj(xs[i]))  # γ = 1, β = 0
    assert fusion.out_dim == (dim or DIMS["two"][i])
    opt = torch.optim.SGD(fusion.parameters(), lr=0.1)
    fusion(xs).sum().backward()
    opt.step()
    xs = inputs(DIMS["two"])
    out = fusion(xs)
    assert not torch.allclose(out, fusion.proj(xs[i]))
    j = conditioner
    torch.testing.assert_close(out, (1 + fusion.gamma(xs[j])) * fusion.proj(xs[i]) + fusion.beta(xs[j]))
    out.sum().backward()
    assert xs[j].grad.abs().sum() > 0  # the conditioner now gets a gradient


def test_film_conditioner_by_name_default_and_deprecated_index(caplog: pytest.LogCaptureFixture) -> None:
    di, dj = 5, 9  # default: the second branch in name order ("rnn") conditions
    assert FiLMFusion(DIMS["two"]).conditioner == "rnn"
    assert count(FiLMFusion(DIMS["two"], conditioner="rnn", dim=8)) == (dj + 1) * 2 * 8 + (di + 1) * 8
    assert count(FiLMFusion(DIMS["two"], conditioner="rnn")) == (dj + 1) * 2 * di
    with caplog.at_level(logging.WARNING, logger="fusionlab"):
        assert FiLMFusion(DIMS["two"], conditioner=0).conditioner == "cnn"  # the old index still works
    assert [r.getMessage() for r in caplog.records] == [
        "fusion.conditioner=0 (an index) is deprecated: name the branch, conditioner=cnn"]
    for bad in ("gru", 2):
        with pytest.raises(ConfigError) as err:
            FiLMFusion(DIMS["two"], conditioner=bad)
        assert err.value.key == "conditioner" and "['cnn', 'rnn']" in err.value.message


def cross_attention_count(dims: list[int], d: int, f: int | None, layers: int) -> int:
    block = 4 * d * d + 8 * d + ((d + 1) * f + (f + 1) * d + 2 * d if f else 0)
    return sum((di + 1) * d for di in dims) + len(dims) * (layers * block + 2 * d)


@pytest.mark.parametrize("k", DIMS)
@pytest.mark.parametrize(("ff_dim", "layers"), [(16, 1), (None, 2)])
def test_cross_attention_parameter_count(k: str, ff_dim: int | None, layers: int) -> None:
    fusion = CrossAttentionFusion(DIMS[k], d_model=8, heads=2, layers=layers, ff_dim=ff_dim)
    assert count(fusion) == cross_attention_count(list(DIMS[k].values()), 8, ff_dim, layers)
    assert fusion.out_dim == len(DIMS[k]) * 8


@pytest.mark.parametrize("k", DIMS)
def test_cross_attention_ignores_padding_and_reports_attention_mass(k: str) -> None:
    fusion = CrossAttentionFusion(DIMS[k], d_model=8, heads=2, ff_dim=16).eval()
    seqs, masks = sequences(DIMS[k])
    out = fusion(seqs, masks)
    w = fusion.branch_weights
    assert w.shape == (B, len(seqs)) and torch.all(w >= 0)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(B))
    garbage = seqs["cnn"].detach().masked_fill(~masks["cnn"].unsqueeze(-1), 1e3)  # change only the padded steps
    torch.testing.assert_close(fusion({**seqs, "cnn": garbage}, masks), out)
    real = {n: s[:, :3] for n, s in seqs.items()}  # and a real step does change it
    assert not torch.allclose(fusion(real, {n: m[:, :3] if m is not None else None for n, m in masks.items()}), out)


def test_cross_attention_queries_from_each_branch_attend_to_the_others() -> None:
    fusion = CrossAttentionFusion(DIMS["two"], d_model=8, heads=2, ff_dim=None).eval()
    seqs, _ = sequences(DIMS["two"])
    out = fusion(seqs, {"cnn": None, "rnn": None})
    h = [p(s) for p, s in zip(fusion.proj, seqs.values())]
    expected = []
    for i, j in ((0, 1), (1, 0)):
        block = fusion.blocks[i][0]
        kv = block.norm_kv(h[j])
        z = h[i] + block.attn(block.norm_q(h[i]), kv, kv, need_weights=False)[0]
        expected.append(fusion.norms[i](z).mean(dim=1))
    torch.testing.assert_close(out, torch.cat(expected, dim=-1))


def test_cross_attention_refuses_heads_not_dividing_and_a_single_branch() -> None:
    with pytest.raises(ConfigError) as err:
        CrossAttentionFusion(DIMS["two"], d_model=10, heads=4)
    assert err.value.key == "heads" and "must divide d_model=10" in err.value.message
    with pytest.raises(ConfigError) as err:
        CrossAttentionFusion({"cnn": 5}, d_model=8, heads=2)
    assert err.value.key == "" and "at least 2 branches" in err.value.message


@pytest.mark.parametrize("k", DIMS)
def test_late_mean_equals_the_average_of_branch_logits(k: str) -> None:
    fusion = LateFusion(DIMS[k], num_classes=3, mode="mean").eval()
    xs = inputs(DIMS[k])
    expected = sum(head(x) for head, x in zip(fusion.heads, xs.values())) / len(xs)
    torch.testing.assert_close(fusion(xs), expected)
    assert fusion.makes_logits and fusion.out_dim == 3 and fusion.branch_weights is None


def test_late_weights_are_a_learned_softmax() -> None:
    """Weight logits log(1), log(2), log(5) give the weights 1/8, 2/8, 5/8 (known values, not a
    recomputed softmax)."""
    fusion = LateFusion(DIMS["three"], num_classes=3, mode="weights").eval()
    xs = inputs(DIMS["three"])
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.tensor([1.0, 2.0, 5.0]).log())
    out = fusion(xs)
    heads = [head(x) for head, x in zip(fusion.heads, xs.values())]
    torch.testing.assert_close(out, heads[0] / 8 + heads[1] * 2 / 8 + heads[2] * 5 / 8)
    torch.testing.assert_close(fusion.branch_weights, torch.tensor([[0.125, 0.25, 0.625]]).expand(B, -1))


@pytest.mark.parametrize("k", DIMS)
@pytest.mark.parametrize("hidden", [[], [6, 4]])
def test_late_parameter_count(k: str, hidden: list[int]) -> None:
    dims, c = DIMS[k], 3
    per_branch = 0
    for d in dims.values():
        widths = [d, *hidden, c]
        per_branch += sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    assert count(LateFusion(dims, num_classes=c, mode="mean", hidden=hidden)) == per_branch
    assert count(LateFusion(dims, num_classes=c, mode="weights", hidden=hidden)) == per_branch + len(dims)


def test_late_branch_loss_is_the_weighted_mean_of_each_branch_cross_entropy() -> None:
    """Training mode: lambda * mean_i CE(f_i(x_i), y) of the last forward, added once; soft targets
    (mixup) work too; eval mode and the YAML's default (branch_loss 0) add nothing."""
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    fusion = LateFusion(DIMS["three"], num_classes=3, mode="mean", branch_loss=0.5).train()
    xs = inputs(DIMS["three"])
    F = torch.nn.functional
    for target in (y, F.one_hot(y, 3).float()):
        fusion(xs)
        logits = fusion._train_branch_logits  # this forward's dropout draws
        expected = 0.5 * sum(F.cross_entropy(logits[:, i], target) for i in range(3)) / 3
        torch.testing.assert_close(fusion.auxiliary_loss(target), expected)
        assert fusion.auxiliary_loss(target) is None  # consumed: added once per forward
    fusion.eval()(xs)
    assert fusion.auxiliary_loss(y) is None
    default = build_option("late", DIMS["three"]).train()
    default(xs)
    assert default.branch_loss == 0.0 and default.auxiliary_loss(y) is None


class _TwoColumns(torch.nn.Module):
    """A stand-in network: column 0 of a ``(B, 2)`` input is branch "a", column 1 branch "b"."""

    def __init__(self, fusion: Fusion) -> None:
        super().__init__()
        self.fusion = fusion

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.fusion({"a": x[:, :1], "b": x[:, 1:]})


class _OneColumn(torch.nn.Module):
    """A stand-in network of one branch: column ``i`` of a ``(B, 2)`` input ("a" for 0, "b" for 1)."""

    def __init__(self, fusion: Fusion, i: int) -> None:
        super().__init__()
        self.fusion, self.i, self.name = fusion, i, "ab"[i]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.fusion({self.name: x[:, self.i:self.i + 1]})


def _train_late(branch_loss: float, steps: int = 300, fused_loss: float = 1.0, lr: float = 0.5,
                branches: tuple[str, ...] = ("a", "b"), start: LateFusion | None = None
                ) -> tuple[LateFusion, torch.Tensor, torch.Tensor, float]:
    """Late fusion of a strong branch "a" and a weak branch "b" (or of ``branches`` of them, each classifier
    starting from ``start``'s of the same branch) trained by the FusionClassifier's own step; returns the
    fusion, the data and the last training loss."""
    from fusionlab.training.module import FusionClassifier

    torch.manual_seed(0)
    n = 512
    y = torch.randint(0, 2, (n,))
    x = torch.randn(n, 2)
    x[:, 0] += 4.0 * (2 * y - 1)   # branch "a" separates the classes
    x[:, 1] += 0.7 * (2 * y - 1)   # branch "b" only weakly
    fusion = LateFusion({b: 1 for b in branches}, num_classes=2, dropout=0.0, branch_loss=branch_loss,
                        fused_loss=fused_loss)
    if start is not None:
        for head, name in zip(fusion.heads, branches):
            head.load_state_dict(start.heads[start.input_names.index(name)].state_dict())
    net = _TwoColumns(fusion) if branches == ("a", "b") else _OneColumn(fusion, "ab".index(branches[0]))
    module = FusionClassifier(net, 2, optimizer=lambda p: torch.optim.SGD(p, lr=lr))
    opt = module.configure_optimizers()
    module.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = module._step((x, y), "train")
        loss.backward()
        opt.step()
    with torch.no_grad():
        return fusion, x, y, float(module._step((x, y), "train"))  # the step's loss at the final weights


def test_late_branch_loss_enters_the_training_step_and_teaches_each_branch_alone() -> None:
    """The FusionClassifier's training loss is CE(fused) + branch_loss * mean CE(branch); with it the
    weak branch's own classifier reaches its best loss, without it the strong branch carries the
    fused loss and the weak one's classifier stays far from it."""
    F = torch.nn.functional
    fusion, x, y, last = _train_late(1.0)
    with torch.no_grad():
        logits = torch.stack([fusion.heads[0](x[:, :1]), fusion.heads[1](x[:, 1:])], dim=1)
        expected = F.cross_entropy(logits.mean(1), y) + sum(F.cross_entropy(logits[:, i], y) for i in range(2)) / 2
    assert abs(last - float(expected)) < 1e-5
    untaught_fusion, *_ = _train_late(0.0)
    with torch.no_grad():
        taught = float(F.cross_entropy(fusion.heads[1](x[:, 1:]), y))
        untaught = float(F.cross_entropy(untaught_fusion.heads[1](x[:, 1:]), y))
    assert taught < 0.6 and taught < untaught - 0.05, (taught, untaught)


def test_late_fused_loss_zero_trains_each_branch_exactly_as_alone_and_averages_at_prediction() -> None:
    """fused_loss 0, branch_loss 1 (the uni-modal ensemble): the training loss is the branches' mean
    cross-entropy and nothing else, so after 300 SGD steps each branch's classifier has exactly the weights
    it gets trained alone (one-branch late fusion) at lr / 2 (the mean over 2 branches halves each
    gradient); the prediction still averages both branches' logits. With the fused loss on (the YAML's 1),
    the weak branch's classifier ends elsewhere."""
    F = torch.nn.functional
    start, *_ = _train_late(1.0, fused_loss=0.0, steps=0)
    fusion, x, y, last = _train_late(1.0, fused_loss=0.0)
    with torch.no_grad():
        logits = torch.stack([fusion.heads[0](x[:, :1]), fusion.heads[1](x[:, 1:])], dim=1)
        expected = sum(F.cross_entropy(logits[:, i], y) for i in range(2)) / 2
        torch.testing.assert_close(fusion.eval()({"a": x[:, :1], "b": x[:, 1:]}), logits.mean(1))
    assert abs(last - float(expected)) < 1e-5
    for i, name in enumerate("ab"):
        alone, *_ = _train_late(1.0, fused_loss=0.0, lr=0.25, branches=(name,), start=start)
        for p, q in zip(fusion.heads[i].parameters(), alone.heads[0].parameters()):
            torch.testing.assert_close(p, q)
    joint, *_ = _train_late(1.0)  # fused_loss 1
    assert (joint.heads[1][-1].weight - fusion.heads[1][-1].weight).abs().max() > 1e-3  # the fused gradient moved it
    assert build_option("late", DIMS["three"]).fused_loss == 1.0


def _assert_late_loss(module, x: torch.Tensor, y: torch.Tensor, weight: float) -> None:
    """One training step's loss is CE(fused) + weight x the branches' mean CE; validation's is CE(fused)."""
    F = torch.nn.functional
    module.train()
    torch.manual_seed(0)
    loss = module._step((x, y), "train")
    torch.manual_seed(0)  # the same dropout draws
    logits = module.net(x)
    per_branch = module.net.fusion._train_branch_logits
    expected = F.cross_entropy(logits, y, label_smoothing=module.label_smoothing) + weight * sum(
        F.cross_entropy(per_branch[:, i], y, label_smoothing=module.label_smoothing)
        for i in range(per_branch.shape[1])) / per_branch.shape[1]
    torch.testing.assert_close(loss, expected)
    module.eval()
    with torch.no_grad():
        val = module._step((x, y), "val")
        torch.testing.assert_close(val, F.cross_entropy(module.net(x), y))


@pytest.mark.parametrize(("experiment", "branches"), [
    ("ucr_inception_resnet_late", {"inception", "resnet"}),
    ("ucr_inception_resnet_fcn_late", {"inception", "resnet", "fcn"}),
])
def test_ucr_late_preset_trains_each_branch_on_its_own_loss_too(make_cfg, experiment: str, branches: set) -> None:
    """The UCR late presets (their YAMLs' values): late fusion with branch_loss 1.0, so the training loss
    adds the branch classifiers' mean cross-entropy; evaluation does not."""
    from fusionlab.training.run import prepare, validate

    cfg = make_cfg([f"experiment={experiment}", "data.name=ItalyPowerDemand"])
    validate(cfg)
    dm, module, _ = prepare(cfg)
    assert isinstance(module.net.fusion, LateFusion) and module.net.fusion.branch_loss == 1.0
    assert set(module.net.branches) == branches
    x, y = next(iter(dm.train_dataloader()))[:2]
    _assert_late_loss(module, x, y, 1.0)


def test_composed_late_branch_loss_adds_the_branches_loss_in_training_only(make_cfg, tmp_path) -> None:
    """The default job with ``fusion=late model.fusion.branch_loss=2``: one training step's loss is the fused
    cross-entropy plus 2 x the branches' mean cross-entropy; validation's is the fused one alone; the
    run trains (debug=fast) and its metrics are written."""
    from fusionlab.training.run import prepare, train, validate
    from tests.conftest import read_metrics

    cfg = make_cfg(["fusion=late", "model.fusion.branch_loss=2.0", "debug=fast"])
    validate(cfg)
    dm, module, _ = prepare(cfg)
    assert isinstance(module.net.fusion, LateFusion) and module.net.fusion.branch_loss == 2.0
    x, y = next(iter(dm.train_dataloader()))[:2]
    _assert_late_loss(module, x, y, 2.0)
    objective = train(make_cfg(["fusion=late", "model.fusion.branch_loss=2.0", "debug=fast"], out=tmp_path / "run"))
    m = read_metrics(tmp_path / "run")
    assert m["status"] == "ok" and m["steps"] >= 1 and objective == m["objective"]


def test_bench_script_prints_one_row_per_fusion_and_branch_count(monkeypatch, capsys) -> None:
    import runpy

    from tests.conftest import ROOT

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
    assert refused == {(n, "3") for n in names if option_class(n).arity == 2}


@pytest.mark.parametrize("scheme", ["XavierInit", "KaimingInit", "OrthogonalInit", "NormalInit", "DefaultInit"])
def test_film_stays_the_identity_after_any_init_scheme(scheme: str) -> None:
    import fusionlab.training.init as init

    fusion = FiLMFusion(DIMS["two"], conditioner="cnn", dim=8)
    getattr(init, scheme)()(fusion)
    xs = inputs(DIMS["two"])
    torch.testing.assert_close(fusion(xs), fusion.proj(xs["rnn"]))
