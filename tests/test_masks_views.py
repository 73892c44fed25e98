"""Views and modality checks; text through the embedding (padding: tests/test_padding_invariance.py)."""

from __future__ import annotations

import pytest
import torch

from fusionlab.config.schema import ConfigError
from fusionlab.data.spec import InputSpec
from fusionlab.models import make_fusion_net

BRANCHES = {
    "cnn": {"_target_": "fusionlab.branches.CNNBranch", "channels": [8, 8], "kernel_sizes": [5, 3],
            "dilations": [1, 2]},
    "cnn_max": {"_target_": "fusionlab.branches.CNNBranch", "channels": [8], "kernel_sizes": [4], "dilations": [1],
                "pool": "max"},
    "lstm": {"_target_": "fusionlab.branches.RNNBranch", "cell": "lstm", "hidden": 6},
    "bigru": {"_target_": "fusionlab.branches.RNNBranch", "cell": "gru", "hidden": 5, "bidirectional": True,
              "layers": 2},
    "bigru_mean": {"_target_": "fusionlab.branches.RNNBranch", "cell": "gru", "hidden": 5, "bidirectional": True,
                   "pool": "mean"},
    "transformer": {"_target_": "fusionlab.branches.TransformerBranch", "d_model": 8, "heads": 2, "layers": 1,
                    "ff_dim": 16, "pool": "attention"},
    "transformer_last": {"_target_": "fusionlab.branches.TransformerBranch", "d_model": 8, "heads": 2,
                         "layers": 1, "ff_dim": 16, "pool": "last", "positions": "learned"},
}
CONCAT = {"_target_": "fusionlab.fusions.ConcatFusion"}


def _net(branches: dict, spec: InputSpec, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_fusion_net(spec, 3, branches, CONCAT, **kw).eval()


def test_a_series_branch_on_images_is_refused_with_a_hint() -> None:
    spec = InputSpec("image", (1, 8, 8))
    with pytest.raises(ConfigError, match=r"branches\.rnn: RNNBranch reads series data, but its input is image.*rows"):
        _net({"rnn": BRANCHES["lstm"]}, spec)


def test_rows_view_reads_an_image_as_a_sequence_of_rows() -> None:
    spec = InputSpec("image", (2, 6, 5))
    net = _net({"rnn": BRANCHES["lstm"]}, spec, views={"rnn": "rows"})
    assert net.branches["rnn"].rnn.input_size == 10  # channels * width features per row
    x = torch.randn(4, 2, 6, 5)
    seq = net.views["rnn"](x)[0]
    assert seq.shape == (4, 10, 6)
    assert torch.equal(seq[:, :5, 3], x[:, 0, 3, :]) and torch.equal(seq[:, 5:, 3], x[:, 1, 3, :])
    assert net(x).shape == (4, 3)


def test_fft_and_diff_views() -> None:
    spec = InputSpec("series", (1, 16))
    net = _net({"cnn": BRANCHES["cnn_max"], "rnn": BRANCHES["lstm"]}, spec, views={"cnn": "fft", "rnn": "diff"})
    assert net.branches["cnn"].layers[0].conv.in_channels == 1
    x = torch.randn(2, 1, 16)
    spectrum = net.views["cnn"](x)[0]
    assert spectrum.shape == (2, 1, 9)
    assert torch.allclose(spectrum, torch.fft.rfft(x, dim=-1).abs())
    d = net.views["rnn"](x)[0]
    assert d[..., 0].abs().sum() == 0 and torch.allclose(d[..., 1:], x[..., 1:] - x[..., :-1])
    assert net(x).shape == (2, 3)


def test_shuffle_view_feeds_the_series_as_one_step() -> None:
    net = _net({"lstm": BRANCHES["lstm"]}, InputSpec("series", (1, 30)), views={"lstm": "shuffle"})
    assert net.branches["lstm"].rnn.input_size == 30
    assert net.views["lstm"](torch.randn(2, 1, 30))[0].shape == (2, 30, 1)


def test_view_errors_name_the_key() -> None:
    spec = InputSpec("series", (1, 16), masked=True)
    with pytest.raises(ConfigError, match=r"views\.cnn: unknown view 'spectrum'"):
        _net({"cnn": BRANCHES["cnn"]}, spec, views={"cnn": "spectrum"})
    with pytest.raises(ConfigError, match=r"views\.cnn: view 'fft' cannot honour padding masks"):
        _net({"cnn": BRANCHES["cnn"]}, spec, views={"cnn": "fft"})
    with pytest.raises(ConfigError, match=r"views\.gru: no branch named 'gru'"):
        _net({"cnn": BRANCHES["cnn"]}, spec, views={"gru": "diff"})
    with pytest.raises(ConfigError, match=r"views\.cnn: view 'rows' reads image data"):
        _net({"cnn": BRANCHES["cnn"]}, spec, views={"cnn": "rows"})


def test_text_goes_through_a_shared_embedding_with_a_padding_mask() -> None:
    spec = InputSpec("text", (12,), vocab_size=50)
    emb = {"_target_": "fusionlab.models.TokenEmbedding", "dim": 6}
    net = _net({"cnn": BRANCHES["cnn_max"], "gru": BRANCHES["bigru"]}, spec, embedding=emb)
    assert net.branches["cnn"].layers[0].conv.in_channels == 6
    assert net.param_counts()["embedding"] == 50 * 6
    ids = torch.randint(2, 50, (3, 12))
    ids[0, 7:] = 0  # padding
    with torch.no_grad():
        short = net(ids[:1, :7])
        assert torch.allclose(net(ids)[:1], short, atol=1e-5)
    with pytest.raises(ConfigError, match="embedding: text data needs a token embedding"):
        make_fusion_net(spec, 3, {"cnn": BRANCHES["cnn"]}, CONCAT)


def test_batches_of_padded_data_are_cut_to_their_longest_example() -> None:
    from fusionlab.data.base import TensorBatches

    x = torch.arange(4 * 10, dtype=torch.float32).view(4, 1, 10)
    mask = torch.arange(10) < torch.tensor([[3], [6], [10], [2]])
    y = torch.arange(4)
    data = TensorBatches(x * mask[:, None], y, mask, trim=True)
    xb, yb, mb = data.__getitems__([0, 3, 1])
    assert xb.shape == (3, 1, 6) and mb.shape == (3, 6) and torch.equal(yb, torch.tensor([0, 3, 1]))
    assert torch.equal(mb, mask[[0, 3, 1], :6])
    assert data.__getitems__([2, 0])[0].shape == (2, 1, 10)
    assert TensorBatches(x, y, mask).__getitems__([0, 3])[0].shape == (2, 1, 10)  # trim off: untouched


def test_an_mlp_branch_reads_a_cut_batch_as_the_full_width() -> None:
    spec = InputSpec("series", (1, 20), masked=True)
    net = _net({"mlp": {"_target_": "fusionlab.branches.MLPBranch", "hidden": [8]}}, spec)
    mask = torch.arange(20) < torch.tensor([[12], [9]])
    x = torch.randn(2, 1, 20) * mask[:, None]
    with torch.no_grad():
        assert torch.allclose(net(x[..., :12], mask[:, :12]), net(x, mask))
