"""Padding never changes what a real example gets, for every branch option and every model preset
composed from ``conf/`` with the configs' own defaults (Hydra's compose API, not constructor defaults).

Eval mode: an example's logits do not depend on its batch (alone and unpadded; padded to any length
with garbage; beside longer and shorter examples). Training mode: a real example's loss, every
parameter's gradient and the BatchNorm running statistics do not change when only the padding's
values change (dropout as configured, the same random draws: seeded before each forward), nor when
only the padding's length changes (then the dropout layers alone are switched off, because their
random draws depend on the tensor's shape; BatchNorm stays in training mode).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from fusionlab.cli import setup
from fusionlab.config.schema import ConfigError, locate
from fusionlab.data.spec import InputSpec
from tests.conftest import experiments_with_branch

CONF = Path(__file__).resolve().parents[1] / "conf"
C, L, VOCAB, CLASSES = 2, 48, 30, 3
LENGTHS = (48, 31, 17, 6)  # odd lengths: a Transformer patch of 2 completed with zeros
SPECS = {
    "series": InputSpec("series", (C, L), masked=True),
    "series_unpadded": InputSpec("series", (C, L)),  # presets that refuse masks (LSTM-FCN's shuffle view)
    "image": InputSpec("image", (1, 8, 8)),
    "text": InputSpec("text", (L,), vocab_size=VOCAB),
}
SKIP_BRANCHES = {"pretrained_transformer": "reads sub-word ids of its own tokenizer "
                                           "(tests/test_pretrained_transformer.py)"}
SKIP_EXPERIMENTS = {e: "a pretrained branch reads data.subwords (tests/test_pretrained_transformer.py)"
                    for e in experiments_with_branch("pretrained_transformer")}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@functools.cache
def _model_cfg(overrides: tuple[str, ...]) -> tuple[DictConfig, str | None]:
    """``cfg.model`` of ``train.yaml`` composed with ``overrides``, as the CLI composes it, and
    ``"text"`` when the composed data is text."""
    setup()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    data = str(cfg.data.get("_target_", ""))
    model = cfg.model
    OmegaConf.set_readonly(model, True)
    return model, ("text" if ".text" in data else None)


def _build(model_cfg: DictConfig, spec: InputSpec) -> nn.Module:
    torch.manual_seed(0)
    try:
        from fusionlab.models import build_fusion_net
    except ImportError:  # the code before build_fusion_net (to show these tests fail there)
        from fusionlab.config.build import build

        return build(copy.deepcopy(model_cfg), "model", input_spec=spec, num_classes=CLASSES)
    return build_fusion_net(copy.deepcopy(model_cfg), spec, CLASSES)


def _net(overrides: tuple[str, ...]) -> tuple[nn.Module, str]:
    """The model and the kind of data it is tested on: its experiment's text data, else the first of
    padded series, unpadded series, images and word ids (a branch that reads them, e.g. the bag of n-grams)
    that it reads."""
    model_cfg, data = _model_cfg(overrides)
    kinds = [data] if data else ["series", "series_unpadded", "image", "text"]
    errors = []
    for kind in kinds:
        try:
            return _build(model_cfg, SPECS[kind]), kind
        except ConfigError as e:
            errors.append(f"{kind}: {e}")
    raise AssertionError(f"{overrides} builds on none of {kinds}: {errors}")


def _fusion_case(fusion: str) -> pytest.param:
    """Every fusion option on a padded model with as many branches as it takes (CNN, GRU, Transformer)."""
    arity = getattr(locate(OmegaConf.load(CONF / "fusion" / f"{fusion}.yaml")["_target_"]), "arity", None)
    model = "cnn_rnn" if arity == 2 else "cnn_rnn_transformer"
    return pytest.param((f"model={model}", f"fusion={fusion}"), id=f"fusion={fusion}")


CASES = (
    [pytest.param(("model=cnn", f"branch@model.branches.cnn={b}"), id=f"branch={b}",
                  marks=[pytest.mark.skip(reason=SKIP_BRANCHES[b])] if b in SKIP_BRANCHES else [])
     for b in _options("branch")]
    + [pytest.param((f"model={m}",), id=f"model={m}") for m in _options("model")]
    + [pytest.param((f"experiment={e}",), id=f"experiment={e}",
                    marks=[pytest.mark.skip(reason=SKIP_EXPERIMENTS[e])] if e in SKIP_EXPERIMENTS else [])
       for e in _options("experiment")]
    + [_fusion_case(f) for f in _options("fusion")]
    + [pytest.param(("model=cnn_transformer", "model.taps=[1,2]"), id="taps=[1,2]")]
)


def _examples(kind: str, lengths: tuple[int, ...] = LENGTHS) -> list[Tensor]:
    g = torch.Generator().manual_seed(1)
    if kind == "text":
        return [torch.randint(2, VOCAB, (n,), generator=g) for n in lengths]
    if kind == "image":
        return [torch.randn(1, 8, 8, generator=g) for _ in lengths]
    if kind == "series_unpadded":
        return [torch.randn(C, L, generator=g) for _ in lengths]
    return [torch.randn(C, n, generator=g) * 2 + 0.5 for n in lengths]


def _batch(examples: list[Tensor], kind: str, total: int | None = None,
           garbage: bool = False) -> tuple[Tensor, Tensor | None]:
    """The examples padded to ``total`` steps (default: the longest) with zeros or garbage, and the mask."""
    if kind in ("image", "series_unpadded"):
        return torch.stack(examples), None
    total = total or max(e.shape[-1] for e in examples)
    g = torch.Generator().manual_seed(2)
    if kind == "text":  # padding is id 0 by definition: only its length can change
        x = torch.zeros(len(examples), total, dtype=torch.long)
        for i, e in enumerate(examples):
            x[i, : e.shape[-1]] = e
        return x, None
    x = torch.randn(len(examples), C, total, generator=g) * 100 if garbage else torch.zeros(len(examples), C, total)
    mask = torch.zeros(len(examples), total, dtype=torch.bool)
    for i, e in enumerate(examples):
        x[i, :, : e.shape[-1]] = e
        mask[i, : e.shape[-1]] = True
    return x, mask


def _close(a: Tensor, b: Tensor, what: str) -> None:
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("overrides", CASES)
def test_eval_logits_do_not_depend_on_the_batch(overrides: tuple[str, ...]) -> None:
    net, kind = _net(overrides)
    net.eval()
    examples = _examples(kind)
    with torch.no_grad():
        alone = torch.cat([net(*_batch([e], kind)) for e in examples])
        batches = {
            "beside longer and shorter, padded with garbage": (list(range(len(examples))), None, True),
            "beside shorter, padded with zeros": ([1, 2, 3], None, False),
            f"padded to {L - 4} steps with garbage": ([3, 1], L - 4, True),
        }
        for what, (rows, total, garbage) in batches.items():
            logits = net(*_batch([examples[i] for i in rows], kind, total, garbage))
            _close(logits, alone[rows], what)


def _trained_step(net: nn.Module, x: Tensor, mask: Tensor | None, seed: int = 0) -> dict[str, Tensor]:
    """One training-mode forward and backward on a copy of ``net``: per-example losses, gradients and
    BatchNorm running statistics afterwards."""
    net = copy.deepcopy(net)
    net.zero_grad()
    torch.manual_seed(seed)
    logits = net(x, mask)
    losses = nn.functional.cross_entropy(logits, torch.arange(len(x)) % CLASSES, reduction="none")
    losses.sum().backward()
    out = {"loss": losses.detach()}
    out |= {f"grad {n}": p.grad for n, p in net.named_parameters() if p.grad is not None}
    out |= {f"buffer {n}": b for n, b in net.named_buffers() if "running" in n}
    return out


def _assert_same_step(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        _close(a[k], b[k], k)


@pytest.mark.parametrize("overrides", CASES)
def test_training_step_ignores_what_padding_holds(overrides: tuple[str, ...]) -> None:
    net, kind = _net(overrides)
    if kind != "series":
        pytest.skip(f"{kind} batches carry no padding values that could change (text pads with id 0)")
    net.train()
    examples = _examples(kind)
    zeros = _trained_step(net, *_batch(examples, kind))
    garbage = _trained_step(net, *_batch(examples, kind, garbage=True))
    assert any(k.startswith("grad") for k in zeros)
    _assert_same_step(zeros, garbage)


def _dropout_off(net: nn.Module) -> nn.Module:
    """``net`` in training mode with only its random layers (dropout, attention dropout, dropout
    between RNN layers) switched off; BatchNorm keeps using batch statistics."""
    net = copy.deepcopy(net).train()
    for m in net.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.MultiheadAttention)) or (
                isinstance(m, nn.RNNBase) and m.dropout > 0):
            m.eval()
    return net


@pytest.mark.parametrize("overrides", CASES)
def test_training_step_ignores_how_much_padding(overrides: tuple[str, ...]) -> None:
    net, kind = _net(overrides)
    if kind not in ("series", "text"):
        pytest.skip(f"{kind} batches carry no padding")
    net = _dropout_off(net)
    examples = _examples(kind, LENGTHS[1:])
    trimmed = _trained_step(net, *_batch(examples, kind))
    full = _trained_step(net, *_batch(examples, kind, total=L, garbage=True))
    _assert_same_step(trimmed, full)
