"""Branches and poolers: shapes, declared widths, gradients, and refused settings."""

from __future__ import annotations

import pytest
import torch

from fusionlab.branches import CNNBranch, MLPBranch, RNNBranch, TransformerBranch
from fusionlab.config import ConfigError
from fusionlab.models.time_pooling import POOLERS, make_pooler

B, C, L = 4, 3, 24

BRANCHES = {
    "cnn": lambda: CNNBranch(C, L, channels=[8, 16], kernel_sizes=[5], dilations=[1, 2]),
    "cnn_residual": lambda: CNNBranch(C, L, channels=[8, 8], kernel_sizes=[4, 3], residual=True, dilations=[1]),
    "lstm": lambda: RNNBranch(C, L, cell="lstm", hidden=10, layers=2),
    "gru_bi": lambda: RNNBranch(C, L, cell="gru", hidden=6, bidirectional=True),
    "transformer": lambda: TransformerBranch(C, L, d_model=16, heads=4, layers=1, ff_dim=32, patch_size=3),
    "transformer_learned": lambda: TransformerBranch(C, L, d_model=8, heads=2, layers=1, positions="learned"),
    "mlp": lambda: MLPBranch(C, L, hidden=[12, 7]),
}


@pytest.mark.parametrize("name", BRANCHES)
def test_branch_shape_matches_declared_width(name: str) -> None:
    branch = BRANCHES[name]()
    seq = branch(torch.randn(B, C, L))
    assert seq.dim() == 3 and seq.shape[0] == B and seq.shape[2] == branch.out_dim
    assert branch.pool(seq).shape == (B, branch.out_dim)


@pytest.mark.parametrize("name", BRANCHES)
def test_every_branch_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    branch = BRANCHES[name]()
    seq = branch(torch.randn(B, C, L))
    (branch.pool(seq) ** 2).sum().backward()
    for pname, p in branch.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"


def test_cnn_sequence_keeps_length_and_last_channel_count() -> None:
    branch = CNNBranch(C, L, channels=[8, 16, 5], kernel_sizes=[4, 5, 2])
    assert branch(torch.randn(B, C, L)).shape == (B, L, 5)


def test_transformer_patch_size_sets_token_count() -> None:
    branch = TransformerBranch(C, 24, d_model=8, heads=2, layers=1, patch_size=4)
    assert branch(torch.randn(B, C, 24)).shape == (B, 6, 8)


@pytest.mark.parametrize(("cell", "rnn_cls"), [("gru", torch.nn.GRU), ("lstm", torch.nn.LSTM)])
def test_bidirectional_branch_is_torch_bidirectional_rnn(cell: str, rnn_cls: type) -> None:
    """The per-direction layout computes what nn.GRU/LSTM(bidirectional=True) computes, loads its
    state dict (checkpoints from before), and ``pool: last`` takes each direction's final state."""
    torch.manual_seed(0)
    reference = rnn_cls(C, 5, num_layers=2, batch_first=True, bidirectional=True)
    branch = RNNBranch(C, L, cell=cell, hidden=5, layers=2, bidirectional=True, pool="last")
    branch.rnn.load_state_dict(reference.state_dict())
    x = torch.randn(B, C, L)
    out, h = reference(x.transpose(1, 2))
    h = h[0] if cell == "lstm" else h
    torch.testing.assert_close(branch(x), out)
    torch.testing.assert_close(branch.pool(branch(x)), torch.cat([h[-2], h[-1]], dim=-1))  # last layer's finals


def test_unidirectional_last_pool_equals_final_hidden_state() -> None:
    branch = RNNBranch(C, L, cell="lstm", hidden=5, pool="last")
    x = torch.randn(B, C, L)
    _, (h, _) = branch.rnn(x.transpose(1, 2))
    torch.testing.assert_close(branch.pool(branch(x)), h[-1])


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: TransformerBranch(C, L, d_model=10, heads=4), "heads"),
        (lambda: TransformerBranch(C, L, patch_size=L + 1), "patch_size"),
        (lambda: CNNBranch(C, 8, channels=[4], kernel_sizes=[9], dilations=[1]), "kernel_sizes"),
        (lambda: CNNBranch(C, L, channels=[4, 4], kernel_sizes=[3, 3, 3], dilations=[1]), "kernel_sizes"),
        (lambda: CNNBranch(C, L, channels=[]), "channels"),
    ],
)
def test_impossible_branch_settings_raise_config_error_naming_key(build, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build()
    assert err.value.key == key


def test_poolers_compute_what_they_say() -> None:
    x = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [2.0, 4.0]]])  # (1, T=3, D=2)
    torch.testing.assert_close(make_pooler("mean", 2)(x), torch.tensor([[2.0, 2.0 / 3]]))
    torch.testing.assert_close(make_pooler("max", 2)(x), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(make_pooler("last", 2)(x), torch.tensor([[2.0, 4.0]]))
    att = make_pooler("attention", 2)
    out = att(x)
    assert out.shape == (1, 2)
    # attention pooling is a convex combination of the time steps
    assert torch.all(out >= x.amin(dim=1) - 1e-6) and torch.all(out <= x.amax(dim=1) + 1e-6)
    assert set(POOLERS) >= {"mean", "max", "last", "attention"}
    with pytest.raises(ValueError, match="unknown pooler"):
        make_pooler("median", 2)


def test_a_registered_pooler_is_a_valid_pool_choice_of_every_branch() -> None:
    """Branches read their ``pool`` choices from the pooler registry (no hard-coded list): a pooler
    registered by the user's code validates in a config and is the one the branch builds."""
    from omegaconf import OmegaConf

    from fusionlab.config.schema import validate_targets
    from fusionlab.models.time_pooling import register_pooler

    node = OmegaConf.create({"cnn": {"_target_": "fusionlab.branches.CNNBranch", "pool": "first"},
                             "rnn": {"_target_": "fusionlab.branches.RNNBranch", "pool": "first"}})
    with pytest.raises(ConfigError, match=r"cnn\.pool: must be one of \['attention', 'last', 'max', 'mean'"):
        validate_targets(node)

    @register_pooler("first")
    class FirstPool(torch.nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            return x[:, 0]

    try:
        validate_targets(node)  # now a valid choice, for every branch
        branch = CNNBranch(C, L, pool="first")
        x = torch.randn(B, C, L)
        torch.testing.assert_close(branch.pool(branch(x)), branch(x)[:, 0])
    finally:
        POOLERS.pop("first")
