"""Through the whole model, padding never changes a prediction with the new fusions, stacked branches and taps."""

from __future__ import annotations

import pytest
import torch

from fusionlab.data.spec import InputSpec
from fusionlab.models import FusionNet

CNN = {"_target_": "fusionlab.branches.CNNBranch", "channels": [8, 8], "kernel_sizes": [5, 3], "dilations": [1]}
LSTM = {"_target_": "fusionlab.branches.RNNBranch", "cell": "lstm", "hidden": 6}
TRANSFORMER = {"_target_": "fusionlab.branches.TransformerBranch", "d_model": 8, "heads": 2, "layers": 2,
               "ff_dim": 16, "patch_size": 1}
STACKED = {"_target_": "fusionlab.branches.StackedBranch", "stages": [CNN, LSTM]}
FUSIONS = {
    "bilinear": {"_target_": "fusionlab.fusions.BilinearFusion", "dim": 8, "factor": 3},
    "film": {"_target_": "fusionlab.fusions.FiLMFusion", "dim": 8},
    "cross_attention": {"_target_": "fusionlab.fusions.CrossAttentionFusion", "d_model": 8, "heads": 2, "ff_dim": 16},
    "late": {"_target_": "fusionlab.fusions.LateFusion", "mode": "weights"},
}
MODELS = {
    "two": ({"cnn": CNN, "lstm": LSTM}, None),
    "three": ({"cnn": CNN, "lstm": LSTM, "transformer": TRANSFORMER}, None),
    "stacked": ({"cnn_then_lstm": STACKED, "transformer": TRANSFORMER}, None),
    "taps": ({"cnn": CNN, "transformer": TRANSFORMER}, [1, 2]),
}
CASES = [(f, m) for f in FUSIONS for m in MODELS if not (f in ("bilinear", "film") and m in ("three", "taps"))]


@pytest.mark.parametrize(("fusion", "model"), CASES)
def test_padding_never_changes_a_prediction(fusion: str, model: str) -> None:
    branches, taps = MODELS[model]
    torch.manual_seed(0)
    net = FusionNet(InputSpec("series", (2, 40), masked=True), 3, branches, FUSIONS[fusion], taps=taps).eval()
    if fusion == "film":  # leave the identity start so the conditioner matters
        torch.nn.init.normal_(net.fusion.gamma_weight)
    lengths = torch.tensor([25, 12, 30])
    real = torch.randn(3, 2, 30)
    mask30 = torch.arange(30) < lengths[:, None]
    x30 = real * mask30[:, None]
    x40 = torch.cat([x30, torch.zeros(3, 2, 10)], dim=-1)
    mask40 = torch.cat([mask30, torch.zeros(3, 10, dtype=torch.bool)], dim=1)
    garbage = torch.where(mask40[:, None], x40, torch.randn_like(x40) * 100)
    with torch.no_grad():
        ref = net(x40, mask40)
        assert ref.shape == (3, 3)
        torch.testing.assert_close(net(garbage, mask40), ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(net(x30, mask30), ref, atol=1e-5, rtol=1e-4)
        for i, n in enumerate(lengths.tolist()):  # each example alone, unpadded
            alone = net(real[i : i + 1, :, :n], torch.ones(1, n, dtype=torch.bool))
            torch.testing.assert_close(alone, ref[i : i + 1], atol=1e-5, rtol=1e-4)
