"""Sequential stacking of branches: widths and lengths chain, masks follow, the last stage pools."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from fusionlab.branches import CNNBranch, RNNBranch, StackedBranch, TransformerBranch
from fusionlab.config import ConfigError
from fusionlab.models.time_pooling import last_index

CNN = {"_target_": "fusionlab.branches.CNNBranch", "channels": [6, 10], "kernel_sizes": [3], "dilations": [1]}
RNN = {"_target_": "fusionlab.branches.RNNBranch", "cell": "lstm", "hidden": 7, "pool": "last"}
TRANSFORMER = {"_target_": "fusionlab.branches.TransformerBranch", "d_model": 8, "heads": 2, "layers": 1,
               "ff_dim": 16, "patch_size": 2, "dropout": 0.0}


def stacked(*stages: dict, **kwargs) -> StackedBranch:
    torch.manual_seed(0)
    return StackedBranch(3, 12, [OmegaConf.create(s) for s in stages], **kwargs)


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.arange(12) < torch.tensor([12, 8, 5, 10])[:, None]
    return torch.randn(4, 3, 12) * mask.unsqueeze(1), mask


def test_each_stage_is_built_on_the_previous_stages_width_and_length() -> None:
    branch = stacked(CNN, TRANSFORMER, RNN)
    cnn, transformer, rnn = branch.stages
    assert isinstance(cnn, CNNBranch) and isinstance(transformer, TransformerBranch) and isinstance(rnn, RNNBranch)
    assert transformer.embed.in_channels == 10  # the CNN's channels
    assert transformer.positions.shape == (6, 8)  # 12 steps in patches of 2
    assert rnn.rnn.input_size == 8  # the Transformer's d_model
    x, _ = padded_batch()
    assert branch(x).shape == (4, 6, 7) and branch.out_dim == 7


def test_a_stack_equals_its_stages_applied_in_turn() -> None:
    branch = stacked(CNN, RNN).eval()
    x, _ = padded_batch()
    cnn, rnn = branch.stages
    torch.testing.assert_close(branch(x), rnn(cnn(x).transpose(1, 2)))
    torch.testing.assert_close(branch.pool(branch(x)), rnn(cnn(x).transpose(1, 2))[:, -1])  # the LSTM's pool


@pytest.mark.parametrize("stages", [(CNN, RNN), (CNN, TRANSFORMER, RNN)], ids=["cnn_rnn", "cnn_transformer_rnn"])
def test_padding_never_changes_the_pooled_vector(stages: tuple[dict, ...]) -> None:
    branch = stacked(*stages).eval()
    x, mask = padded_batch()
    seq = branch(x, mask)
    out_mask = branch.out_mask(mask, seq.shape[1])
    pooled = branch.pool(seq, out_mask)
    noisy = x + torch.randn_like(x) * 5 * (~mask).unsqueeze(1)  # change only the padded steps
    seq2 = branch(noisy, mask)
    torch.testing.assert_close(branch.pool(seq2, branch.out_mask(mask, seq2.shape[1])), pooled)
    if len(stages) == 3:  # the Transformer halves the length: a patch is real when its first step is
        torch.testing.assert_close(out_mask, mask[:, ::2])
    assert torch.equal(last_index(out_mask), last_index(branch.stages[-1].out_mask(out_mask, seq.shape[1])))


def test_out_mask_works_before_any_forward_pass() -> None:
    branch = stacked(TRANSFORMER, RNN)
    _, mask = padded_batch()
    torch.testing.assert_close(branch.out_mask(mask, 6), mask[:, ::2])


def test_layer_outputs_list_every_stages_layers() -> None:
    branch = stacked(CNN, TRANSFORMER, RNN).eval()
    x, _ = padded_batch()
    outs = branch.layer_outputs(x)
    assert [o.shape for o in outs] == [(4, 12, 6), (4, 12, 10), (4, 6, 8), (4, 6, 7)]
    torch.testing.assert_close(outs[-1], branch(x))


def test_output_dropout_applies_to_the_last_stage_in_training_only() -> None:
    branch = stacked(RNN, dropout=0.5)
    x, _ = padded_batch()
    assert (branch(x) == 0).float().mean() > 0.3
    branch.eval()
    torch.testing.assert_close(branch(x), branch.stages[0](x))


def test_bad_stage_values_are_reported_under_the_stage() -> None:
    with pytest.raises(ConfigError) as err:  # the CNN reads the Transformer's 6 patches, not 12 steps
        stacked(TRANSFORMER, {**CNN, "kernel_sizes": [7]})
    assert err.value.key == "stages[1].kernel_sizes" and "sequence length 6" in err.value.message
    with pytest.raises(ConfigError) as err:
        stacked(CNN, {**TRANSFORMER, "heads": 3})
    assert err.value.key == "stages[1].heads"
    with pytest.raises(ConfigError) as err:
        StackedBranch(3, 12, [])
    assert err.value.key == "stages"
