"""Through the whole model, padding never changes a prediction with the new fusions, stacked branches and taps."""

from __future__ import annotations

import pytest
import torch

from fusionlab.data.spec import InputSpec
from fusionlab.models import FusionNet
from tests.test_masks_views import assert_padding_invariant

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
    assert_padding_invariant(net)
