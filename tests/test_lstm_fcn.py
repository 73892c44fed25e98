"""LSTM-FCN / ALSTM-FCN presets follow Karim et al. 2017; stacked-branch presets build and run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fusionlab.training.run import prepare
from tests.conftest import run_cli_shared


@pytest.mark.parametrize(("preset", "pool"), [("lstm_fcn", "last"), ("alstm_fcn", "attention")])
def test_lstm_fcn_presets_match_the_paper(make_cfg, preset: str, pool: str) -> None:
    _, module, _ = prepare(make_cfg([f"model={preset}", "debug=fast"]))
    net = module.net
    fcn, lstm = net.branches["fcn"], net.branches["lstm"]
    convs = [block.conv for block in fcn.layers]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(128, 8), (256, 5), (128, 3)]
    assert all(isinstance(block.norm, nn.BatchNorm1d) for block in fcn.layers) and fcn.pool_name == "mean"
    rnn = lstm.stages[0]
    assert isinstance(rnn.rnn, nn.LSTM) and rnn.rnn.hidden_size == 8 and rnn.rnn.num_layers == 1
    assert rnn.rnn.input_size == 40 and rnn.pool_name == pool  # dimension shuffle: 40 features, 1 step
    assert lstm.drop.p == 0.8  # dropout on the LSTM output only
    linears = [m for m in net.head.modules() if isinstance(m, nn.Linear)]
    drops = [m for m in net.head.modules() if isinstance(m, nn.Dropout)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128 + 8, 10)] and all(d.p == 0 for d in drops)
    x = torch.randn(5, 1, 40)
    seqs, _ = net.sequences(x)
    assert seqs["fcn"].shape == (5, 40, 128) and seqs["lstm"].shape == (5, 1, 8)
    assert net(x).shape == (5, 10)


@pytest.mark.parametrize(("preset", "stacked", "kinds"), [
    ("cnnrnn_transformer", "cnn_then_rnn", ("CNNBranch", "RNNBranch")),
    ("cnntransformer_rnn", "cnn_then_transformer", ("CNNBranch", "TransformerBranch")),
])
def test_stacked_presets_chain_their_stages(make_cfg, preset: str, stacked: str, kinds: tuple[str, ...]) -> None:
    _, module, _ = prepare(make_cfg([f"model={preset}", "debug=fast"]))
    branch = module.net.branches[stacked]
    assert tuple(type(s).__name__ for s in branch.stages) == kinds
    assert module.net(torch.randn(3, 1, 40)).shape == (3, 10)


def test_cli_refuses_a_two_branch_fusion_on_three_branches_in_one_line(tmp_path) -> None:
    res = run_cli_shared("train.py", "model=cnn_rnn_transformer", "fusion=film", "debug=fast",
                  f"hydra.run.dir={tmp_path}", f"paths.log_dir={tmp_path}", env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 2
    assert "model.fusion: film fuses exactly 2 branches, got 3" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
