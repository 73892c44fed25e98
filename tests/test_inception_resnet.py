"""InceptionTime and ResNet branches: the papers' structure, padding invariance in eval and training
mode (with the presets' own defaults), explicit 'same' padding and ONNX export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fusionlab.branches.inception import InceptionBranch, SameConv1d
from fusionlab.branches.resnet import ResNetBranch
from fusionlab.config.build import build
from fusionlab.data.spec import InputSpec
from fusionlab.models.norm import MaskedBatchNorm1d

PRESETS = ["inception", "resnet", "inception_rnn", "inception_transformer"]


def _preset(make_cfg, name: str, spec: InputSpec, classes: int = 3, fusion: str | None = None) -> torch.nn.Module:
    cfg = make_cfg([f"model={name}"] + ([f"fusion={fusion}"] if fusion else []))
    torch.manual_seed(0)
    return build(cfg.model, "model", input_spec=spec, num_classes=classes)


def assert_padding_invariant(net: torch.nn.Module) -> None:
    """Series of 2 channels and lengths 25, 12, 30, padded to 30 or 40 steps with zeros or garbage,
    and each alone unpadded: ``net`` gives the same logits every way."""
    batches = _padded_batches()
    x30, mask30 = batches["30"]
    with torch.no_grad():
        ref = net(*batches["40"])
        torch.testing.assert_close(net(*batches["garbage"]), ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(net(x30, mask30), ref, atol=1e-5, rtol=1e-4)
        for i, n in enumerate(mask30.sum(dim=1).tolist()):  # each example alone, unpadded
            alone = net(x30[i : i + 1, :, :n], torch.ones(1, n, dtype=torch.bool))
            torch.testing.assert_close(alone, ref[i : i + 1], atol=1e-5, rtol=1e-4)


def _padded_batches() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Three 2-channel series of lengths 25, 12, 30, padded to 30 and to 40 steps with zeros, and
    padded to 40 with garbage."""
    torch.manual_seed(1)
    lengths = torch.tensor([25, 12, 30])
    real = torch.randn(3, 2, 30)
    mask30 = torch.arange(30) < lengths[:, None]
    x30 = real * mask30[:, None]
    x40 = torch.cat([x30, torch.zeros(3, 2, 10)], dim=-1)
    mask40 = torch.cat([mask30, torch.zeros(3, 10, dtype=torch.bool)], dim=1)
    garbage = torch.where(mask40[:, None], x40, torch.randn_like(x40) * 100)
    return {"30": (x30, mask30), "40": (x40, mask40), "garbage": (garbage, mask40)}


@pytest.mark.parametrize("name", PRESETS)
def test_eval_logits_do_not_depend_on_padding(make_cfg, name: str) -> None:
    """After some training steps (running statistics moved), eval-mode logits of each series are the
    same padded to 30 or 40 steps, with zeros or garbage, or alone without padding."""
    net = _preset(make_cfg, name, InputSpec("series", (2, 40), masked=True), fusion="gated")
    net.train()
    x, mask = _padded_batches()["40"]
    for _ in range(3):
        net(x, mask)
    net.eval()
    assert_padding_invariant(net)


@pytest.mark.parametrize("name", PRESETS)
def test_training_loss_and_gradients_do_not_depend_on_padding(make_cfg, name: str) -> None:
    """Training mode (batch statistics, the same dropout draws by seeding): the loss, its gradients and
    the BatchNorm running statistics are the same whatever the padding holds; for the convolutional
    presets (no dropout, whose draws depend on the padded shape) also however long the padding is."""
    spec = InputSpec("series", (2, 40), masked=True)
    y = torch.tensor([0, 1, 2])
    results = {}
    for key, (x, mask) in _padded_batches().items():
        net = _preset(make_cfg, name, spec).train()
        torch.manual_seed(2)  # the same dropout masks
        loss = F.cross_entropy(net(x, mask), y)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        running = torch.cat([m.running_mean for m in net.modules() if isinstance(m, MaskedBatchNorm1d)])
        results[key] = (loss.detach(), grads, running)
    for key in ("garbage", "30") if name in ("inception", "resnet") else ("garbage",):
        torch.testing.assert_close(results[key][0], results["40"][0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(results[key][1], results["40"][1], atol=1e-4, rtol=1e-3)
        torch.testing.assert_close(results[key][2], results["40"][2], atol=1e-5, rtol=1e-4)


def test_inception_preset_is_the_papers_network(make_cfg) -> None:
    """Six modules of kernels 40/20/10 + max-pool path (4 x 32 filters), a residual every three modules,
    no bottleneck on a univariate input, BatchNorm eps 1e-3 and PyTorch's momentum; about 420k parameters."""
    net = _preset(make_cfg, "inception", InputSpec("series", (1, 150)), classes=2)
    branch = net.branches["inception"]
    assert isinstance(branch, InceptionBranch)
    assert len(branch.modules_) == 6 and sorted(branch.shortcuts.keys()) == ["2", "5"]
    first, second = branch.modules_[0], branch.modules_[1]
    assert [c.kernel_size[0] for c in first.convs] == [40, 20, 10]
    assert first.bottleneck is None and second.bottleneck is not None  # 1 channel in: no bottleneck
    assert branch.out_dim == 128
    norm = first.norm
    assert isinstance(norm, MaskedBatchNorm1d) and norm.eps == 1e-3 and norm.momentum == 0.1
    assert 400_000 < net.param_counts()["total"] < 440_000


def test_resnet_preset_is_wang_et_al(make_cfg) -> None:
    """Three blocks of 64/128/128 filters, kernels 8/5/3; a projected shortcut where the width changes,
    BatchNorm only in the last block; about 504k parameters."""
    net = _preset(make_cfg, "resnet", InputSpec("series", (1, 150)), classes=2)
    branch = net.branches["resnet"]
    assert isinstance(branch, ResNetBranch)
    assert [b.convs[0].out_channels for b in branch.blocks] == [64, 128, 128]
    assert [c.kernel_size[0] for c in branch.blocks[0].convs] == [8, 5, 3]
    assert [b.shortcut.proj is not None for b in branch.blocks] == [True, True, False]
    assert 490_000 < net.param_counts()["total"] < 520_000


def test_fcn_preset_is_wang_et_al(make_cfg) -> None:
    """model=fcn (branch=fcn): three Conv → BatchNorm → ReLU blocks of 128/256/128 filters, widths 8/5/3,
    global average pooling, a softmax layer on the 128 features; 264,192 branch weights on one channel."""
    net = _preset(make_cfg, "fcn", InputSpec("series", (1, 150)), classes=2)
    branch = net.branches["fcn"]
    assert [(b.conv.out_channels, b.conv.kernel_size[0]) for b in branch.layers] == [(128, 8), (256, 5), (128, 3)]
    assert all(isinstance(b.norm, torch.nn.BatchNorm1d) for b in branch.layers) and branch.pool_name == "mean"
    assert sum(p.numel() for p in branch.parameters()) == 264_192
    linears = [m for m in net.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 2)]


@pytest.mark.parametrize("kernel", [2, 3, 8, 40])
def test_same_padding_is_explicit_and_places_the_extra_step_on_the_right(kernel: int) -> None:
    """An impulse shows where the kernel sits: Keras' 'same' pads (k-1)//2 on the left, the rest on
    the right. The convolution itself has padding 0 (no padding='same' in an exported graph)."""
    conv = SameConv1d(1, 1, kernel)
    assert conv.padding == (0,)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1.0, kernel + 1).view(1, 1, kernel))
    x = torch.zeros(1, 1, 50)
    x[0, 0, 25] = 1.0
    y = conv(x)[0, 0]
    assert y.shape[0] == 50
    left = (kernel - 1) // 2
    # y[t] = sum_j w[j] x[t + j - left]: the impulse at 25 meets w[j] at t = 25 - j + left
    expected = torch.zeros(50)
    for j in range(kernel):
        expected[25 - j + left] = j + 1
    torch.testing.assert_close(y, expected)


def test_inception_exports_to_onnx_and_matches(tmp_path, make_cfg) -> None:
    """The preset (even kernels included) exports with the legacy exporter; onnxruntime agrees."""
    ort = pytest.importorskip("onnxruntime")
    net = _preset(make_cfg, "inception", InputSpec("series", (3, 60)), classes=4).eval()
    x = torch.randn(2, 3, 60)
    path = tmp_path / "inception.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["logits"], dynamo=False,
                      dynamic_axes={"x": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), net(x).detach(), atol=1e-4, rtol=1e-4)


def test_bad_momentum_is_a_config_error() -> None:
    from fusionlab.config.schema import ConfigError

    with pytest.raises(ConfigError, match="bn_momentum"):
        InceptionBranch(1, 20, bn_momentum=1.5)
    with pytest.raises(ConfigError, match="channels"):
        ResNetBranch(1, 20, channels=[])


@pytest.mark.parametrize("momentum", [None, 0.01])
def test_bn_momentum_option_sets_how_fast_running_statistics_follow(make_cfg, momentum: float | None) -> None:
    """The preset's default (0.1, PyTorch's) and Keras' 0.99 (``bn_momentum=0.01``), composed from the
    YAML: after one training step from fresh statistics, running mean = momentum x batch mean."""
    overrides = ["model=inception"] + ([f"model.branches.inception.bn_momentum={momentum}"] if momentum else [])
    cfg = make_cfg(overrides)
    net = build(cfg.model, "model", input_spec=InputSpec("series", (1, 30)), num_classes=2).train()
    first = net.branches["inception"].modules_[0]
    seen = {}
    first.norm.register_forward_hook(lambda m, args, out: seen.setdefault("x", args[0].detach()))
    net(torch.randn(8, 1, 30) + 3.0)
    expected = (momentum or 0.1) * seen["x"].mean(dim=(0, 2))
    torch.testing.assert_close(first.norm.running_mean, expected, atol=1e-6, rtol=1e-5)
