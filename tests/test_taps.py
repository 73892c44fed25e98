"""Multi-level fusion taps: layers tapped at several depths of each branch become fusion inputs."""

from __future__ import annotations

import pytest
import torch

from fusionlab.branches import CNNBranch, RNNBranch, TransformerBranch
from fusionlab.config import ConfigError
from fusionlab.models.taps import Taps


def branches() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "cnn": CNNBranch(2, 12, channels=[6, 10, 12], kernel_sizes=[3], dilations=[1]),
        "transformer": TransformerBranch(2, 12, d_model=8, heads=2, layers=2, ff_dim=16, patch_size=1, dropout=0.0),
    }


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.arange(12) < torch.tensor([12, 8, 5])[:, None]
    return torch.randn(3, 2, 12) * mask.unsqueeze(1), mask


def vectors(taps: Taps, bs: dict, x: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
    out = []
    for name, b in bs.items():
        out += taps.pool(name, b, *taps.sequences(name, b, x, mask))
    return out


def test_every_tapped_layer_is_a_named_fusion_input_of_its_own_width() -> None:
    bs = branches()
    taps = Taps(bs, [2, 1], {"cnn": (2, 12), "transformer": (2, 12)})
    assert taps.names == ["cnn@1", "cnn@2", "transformer@1", "transformer@2"]
    assert taps.in_dims == {"cnn@1": 6, "cnn@2": 10, "transformer@1": 8, "transformer@2": 8}
    x, _ = padded_batch()
    assert [v.shape for v in vectors(taps, bs, x, None)] == [(3, 6), (3, 10), (3, 8), (3, 8)]


def test_tapping_the_last_layer_equals_the_branch_pooled_as_usual() -> None:
    bs = {k: b.eval() for k, b in branches().items()}
    x, mask = padded_batch()
    taps = Taps({"cnn": bs["cnn"]}, [3], {"cnn": (2, 12)})
    cnn = bs["cnn"]
    torch.testing.assert_close(vectors(taps, {"cnn": cnn}, x, mask)[0], cnn.pool(cnn(x, mask), mask))
    assert len(taps.poolers) == 0  # the deepest layer uses the branch's own pooler


def test_padding_never_changes_a_tapped_vector() -> None:
    bs = {k: b.eval() for k, b in branches().items()}
    taps = Taps(bs, [1, 2], {"cnn": (2, 12), "transformer": (2, 12)})
    x, mask = padded_batch()
    noisy = x + 5 * torch.randn_like(x) * (~mask).unsqueeze(1)
    for a, b in zip(vectors(taps, bs, x, mask), vectors(taps, bs, noisy, mask)):
        torch.testing.assert_close(a, b)


def test_depths_a_branch_lacks_are_refused_naming_it() -> None:
    bs = branches()
    with pytest.raises(ConfigError) as err:
        Taps(bs, [1, 3], {"cnn": (2, 12), "transformer": (2, 12)})
    assert err.value.key == "taps" and "'transformer' (TransformerBranch) has 2 layers" in err.value.message
    rnn = {"rnn": RNNBranch(2, 12, hidden=5, layers=2)}
    assert Taps(rnn, [1], {"rnn": (2, 12)}).in_dims == {"rnn@1": 5}  # no per-layer outputs: one layer, its output
    with pytest.raises(ConfigError) as err:
        Taps(rnn, [1, 2], {"rnn": (2, 12)})
    assert "has 1 layer to tap (it has no per-layer outputs)" in err.value.message
    for bad in ([], [0, 1], [1, 1]):
        with pytest.raises(ConfigError, match="distinct depths"):
            Taps(bs, bad, {"cnn": (2, 12), "transformer": (2, 12)})


# -- through the model and the CLI config -------------------------------------------------------------
def test_model_taps_train_and_log_a_weight_per_tapped_layer(make_cfg, tmp_path) -> None:
    from fusionlab.training.run import train
    from tests.conftest import read_metrics

    train(make_cfg(["model=cnn_transformer", "model.taps=[1,2]", "fusion=gated", "debug=fast"]))
    m = read_metrics(tmp_path)
    assert m["status"] == "ok"
    assert {k for k in m["metrics"] if k.startswith("val/weight_")} == {
        f"val/weight_{b}@{d}" for b in ("cnn", "transformer") for d in (1, 2)}


def test_model_taps_feed_sequence_fusions_every_tapped_layer(make_cfg) -> None:
    from fusionlab.training.run import prepare

    _, module, _ = prepare(make_cfg(["model=cnn_transformer", "model.taps=[1,3]", "fusion=cross_attention",
                                     "model.branches.transformer.layers=3", "debug=fast"]))
    net = module.net
    assert net.input_names == ["cnn@1", "cnn@3", "transformer@1", "transformer@3"]
    x = torch.randn(4, 1, 40)
    assert net(x).shape == (4, 10)
    assert [p.in_features for p in net.fusion.proj] == [32, 64, 64, 64]  # cnn channels [32, 64, 64]


def test_model_taps_beyond_a_branch_depth_are_refused_naming_the_key(make_cfg) -> None:
    from fusionlab.training.run import prepare

    with pytest.raises(ConfigError) as err:
        prepare(make_cfg(["model=cnn_rnn", "model.taps=[1,2]", "debug=fast"]))
    assert err.value.key == "model.taps" and "'rnn' (RNNBranch) has 1 layer" in err.value.message
