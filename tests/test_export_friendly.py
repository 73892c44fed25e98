"""Export-friendly equivalents give exactly the outputs of the constructs they replace, and the
branches export: explicit 'same' padding for ``padding='same'`` (dilated and even kernels), on-device
RNN masking for packed sequences, patches completed with zeros for a dropped last step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fusionlab.branches import CNNBranch, RNNBranch, TransformerBranch
from fusionlab.models.conv import SameConv1d, SameConv2d, same_padding


@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (4, 1), (5, 2), (8, 1), (2, 3), (1, 1), (6, 4)])
def test_explicit_same_padding_equals_torch_padding_same_1d(kernel: int, dilation: int) -> None:
    torch.manual_seed(0)
    old = nn.Conv1d(3, 5, kernel, padding="same", dilation=dilation)
    new = SameConv1d(3, 5, kernel, dilation=dilation)
    new.load_state_dict(old.state_dict())  # same parameters and keys
    for length in (1, 7, 40):
        x = torch.randn(2, 3, length)
        torch.testing.assert_close(new(x), old(x), rtol=1e-5, atol=1e-6)  # float rounding only
    assert sum(same_padding(kernel, dilation)) == dilation * (kernel - 1)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_explicit_same_padding_equals_torch_padding_same_2d(kernel: int) -> None:
    torch.manual_seed(0)
    old = nn.Conv2d(2, 4, kernel, padding="same")
    new = SameConv2d(2, 4, kernel)
    new.load_state_dict(old.state_dict())
    x = torch.randn(3, 2, 8, 7)
    torch.testing.assert_close(new(x), old(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("cell", "bidirectional", "layers"),
                         [("gru", False, 1), ("lstm", False, 2), ("gru", True, 2), ("lstm", True, 1)])
def test_on_device_rnn_masking_equals_packed_sequences(cell: str, bidirectional: bool, layers: int) -> None:
    """The old forward (lengths to the host, pack_padded_sequence) and the new one agree on every
    real step, with the same weights (the old bidirectional state dict loads into the new layout)."""
    torch.manual_seed(0)
    rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
    old = rnn_cls(3, 6, num_layers=layers, batch_first=True, bidirectional=bidirectional)
    branch = RNNBranch(3, 20, cell=cell, hidden=6, layers=layers, bidirectional=bidirectional)
    branch.rnn.load_state_dict(old.state_dict())
    x = torch.randn(4, 3, 20)
    lengths = torch.tensor([20, 13, 1, 7])
    mask = torch.arange(20) < lengths[:, None]
    packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths, batch_first=True, enforce_sorted=False)
    expected = nn.utils.rnn.pad_packed_sequence(old(packed)[0], batch_first=True, total_length=20)[0]
    out = branch(x, mask)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(branch.pool(out, mask), branch.pool(expected, mask), rtol=1e-5, atol=1e-6)


def test_patch_embedding_of_a_multiple_of_the_patch_size_is_unchanged() -> None:
    """Zero-completed patches change nothing when the length is a multiple of patch_size: the same
    strided convolution over the same steps as before."""
    torch.manual_seed(0)
    branch = TransformerBranch(2, 12, d_model=8, heads=2, layers=1, ff_dim=16, patch_size=3).eval()
    x = torch.randn(2, 2, 12)
    tokens = branch.embed(x).transpose(1, 2)  # the old embedding: Conv1d(stride=patch), floor(L / p) tokens
    assert tokens.shape[1] == 4
    h = branch.layer_outputs(x)[0]
    assert h.shape == (2, 4, 8)
    expected = branch.norm(branch.encoder.layers[0](tokens + branch.positions[:4]))
    torch.testing.assert_close(h, expected)


def _export(module: nn.Module, args: tuple, dynamic: dict) -> torch.export.ExportedProgram:
    return torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)


class _WithMask(nn.Module):
    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seq = self.branch(x, mask)
        return self.branch.pool(seq, self.branch.out_mask(mask, seq.shape[1]))


@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_masked_branches_export_with_dynamic_batch_and_length(name: str) -> None:
    """torch.export takes the mask (no data-dependent branch on it) and keeps both axes dynamic; the
    program runs other batch sizes and lengths and matches eager."""
    torch.manual_seed(0)
    branch = {"cnn": lambda: CNNBranch(2, 40, channels=[4, 4], kernel_sizes=[4, 3], dilations=[1, 2]),
              "transformer": lambda: TransformerBranch(2, 40, d_model=8, heads=2, layers=1, ff_dim=16)}[name]()
    module = _WithMask(branch).eval()
    auto = torch.export.Dim.AUTO
    x, mask = torch.randn(4, 2, 40), torch.ones(4, 40, dtype=torch.bool)
    program = _export(module, (x, mask), {"x": {0: auto, 2: auto}, "mask": {0: auto, 1: auto}})
    for b, n in ((3, 25), (5, 40)):
        x = torch.randn(b, 2, n)
        mask = torch.arange(n) < torch.randint(1, n + 1, (b, 1))
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x, mask), module(x, mask), rtol=1e-5, atol=1e-6)
