"""``compile=true``: the network is compiled (whole, or each part around recurrent layers), trains with
every preset and fusion, keeps masks, taps and views working, and gives the eager network's outputs.

The matrix compiles with ``backend="aot_eager"`` (Dynamo's capture of the forward and AOTAutograd's of
the backward, as Inductor gets them, without generating C++: seconds instead of a minute per
model); one test compiles with Inductor itself, as ``compile=true`` does in a run.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

import fusionlab.training.compiling as compiling
from fusionlab.training.compiling import compile_network, with_fused_step, with_inductor_options
from fusionlab.training.run import build_model, prepare, train
from tests.conftest import CONF, COVERED_BY, read_metrics

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
# presets compiled one by one: the side-by-side ones are compiled through their stand-ins (COVERED_BY)
COMPILED_PRESETS = [m for m in MODELS if m not in COVERED_BY]
FUSIONS = sorted(p.stem for p in (CONF / "fusion").glob("*.yaml"))
DATA_FOR = {"cnn2d": "digits", "cnn2d_rnn": "digits", "text_cnn": "text"}  # default: mnist1d


@pytest.fixture
def capture_only(monkeypatch):
    torch._dynamo.reset()
    monkeypatch.setattr(compiling, "OPTIONS", {"backend": "aot_eager"})
    yield
    torch._dynamo.reset()


def data_for(model: str) -> list[str]:
    return [f"data={DATA_FOR[model]}"] if model in DATA_FOR else []


def eval_logits_match_an_eager_copy(cfg, dm, module) -> None:
    """The compiled network (after training) and an eager network holding its weights agree on a test batch."""
    assert not any("_orig_mod" in k for k in module.net.state_dict())  # checkpoints keep the eager names
    eager = build_model(cfg.model, dm)
    eager.load_state_dict(module.net.state_dict())
    batch = next(iter(dm.test_dataloader()))
    x, mask = batch[0][:16], batch[2][:16] if len(batch) > 2 else None
    module.net.eval()
    eager.eval()
    with torch.no_grad():
        torch.testing.assert_close(module.net(x, mask), eager(x, mask), rtol=1e-4, atol=1e-5)


def test_what_is_compiled_whole_and_what_stays_eager(make_cfg) -> None:
    plans = {}
    for model in ("cnn", "transformer", "cnn_rnn", "lstm_fcn"):
        cfg = make_cfg([f"model={model}"])
        dm, module, _ = prepare(cfg)
        plans[model] = compile_network(module.net, backend="eager")
    assert plans["cnn"].compiled == ["FusionNet"] and plans["cnn"].eager == []
    assert plans["transformer"].compiled == ["FusionNet"]
    assert plans["cnn_rnn"].eager == ["branches.rnn.rnn (GRU)"]
    assert {"branches.cnn", "head"} <= set(plans["cnn_rnn"].compiled)
    assert not any(name.startswith("branches.rnn") for name in plans["cnn_rnn"].compiled)
    assert plans["lstm_fcn"].eager == ["branches.lstm.stages.0.rnn (LSTM)"]
    assert "branches.fcn" in plans["lstm_fcn"].compiled


def test_every_preset_is_compiled_or_covered() -> None:
    assert {"cnn_rnn_transformer", "cnnrnn_transformer", "lstm_fcn", "text_cnn"} <= set(COMPILED_PRESETS)
    assert all(c in COMPILED_PRESETS for covering in COVERED_BY.values() for c in covering)


@pytest.mark.slow
@pytest.mark.parametrize("model", COMPILED_PRESETS)
def test_every_preset_trains_a_step_compiled_and_matches_eager(make_cfg, capture_only, model: str,
                                                               tmp_path: Path) -> None:
    cfg = make_cfg([f"model={model}", *data_for(model), "compile=true", "debug=limit", "logger=none",
                    "callbacks=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                    "trainer.limit_val_batches=0"])
    dm, module, trainer = prepare(cfg)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    trainer.fit(module, datamodule=dm)
    assert module.compile_plan is not None and module.compile_plan.compiled
    after = module.net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the compiled step trained
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    eval_logits_match_an_eager_copy(cfg, dm, module)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_trains_compiled(make_cfg, capture_only, fusion: str, tmp_path: Path) -> None:
    """Whole-graph compile of a CNN + Transformer network with each fusion (``cross_attention`` and
    other sequence fusions get the branch sequences and masks): two compiled training steps change the
    weights (the compiled eval path is checked per preset above and, with taps and views, below)."""
    cfg = make_cfg(["model=cnn_transformer", f"fusion={fusion}", "compile=true", "debug=limit", "logger=none",
                    "callbacks=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                    "trainer.limit_val_batches=0"])
    dm, module, trainer = prepare(cfg)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 2 and module.compile_plan.compiled == ["FusionNet"]
    after = module.net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    fusion_weights = {k for k, p in module.net.named_parameters() if k.startswith("fusion.") and p.requires_grad}
    assert changed and (not fusion_weights or changed & fusion_weights)  # it trained, the fusion's weights too


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["data=text", "model=cnn_rnn"],  # padded batches: masks through a compiled CNN, a packed GRU left eager
    ["model=cnn_transformer", "model.taps=[1,2]", "fusion=attention"],  # multi-level fusion of tapped layers
    ["model=cnn_transformer", "+model.views={transformer: diff}"],  # a per-branch view
    ["fusion=late", "model.fusion.branch_loss=1.0"],  # per-branch losses read from the compiled forward
])
def test_masks_taps_and_views_work_compiled(make_cfg, capture_only, overrides: list[str]) -> None:
    cfg = make_cfg([*overrides, "compile=true", "debug=limit", "logger=none", "callbacks=none",
                    "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=0"])
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 2
    eval_logits_match_an_eager_copy(cfg, dm, module)
    if "fusion=late" in overrides:  # the compiled forward still hands the branches' logits to the loss
        x, y = next(iter(dm.train_dataloader()))[:2]
        module.train()
        torch.manual_seed(0)
        loss = module._step((x, y), "train")
        torch.manual_seed(0)  # the same dropout draws
        logits = module.net(x)
        extra = module.net.fusion.auxiliary_loss(y, module.label_smoothing)
        assert extra is not None and float(extra) > 0
        expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=module.label_smoothing) + extra
        torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compile_true_with_inductor_trains_reports_and_matches_eager(make_cfg, tmp_path: Path) -> None:
    """The real thing: Inductor-generated C++ kernels on the CPU; the compile time lands in metrics.json."""
    torch._dynamo.reset()
    cfg = make_cfg(["model=cnn", "compile=true", "debug=limit", "logger=none", "trainer.max_epochs=1",
                    "model.branches.cnn.channels=[8,8,8]"])
    train(cfg)
    m = read_metrics(tmp_path)
    assert m["status"] == "ok"
    assert m["compile"]["compiled"] == ["FusionNet"] and m["compile"]["eager"] == []
    assert m["compile"]["optimizer"] == "AdamW (fused)"
    assert m["compile"]["compile_s"] > 0 and m["compile"]["first_step_s"] >= m["compile"]["compile_s"]


def test_compile_is_off_by_default_and_the_network_stays_eager(make_cfg) -> None:
    cfg = make_cfg(["debug=limit", "logger=none", "callbacks=none", "trainer.max_epochs=1",
                    "trainer.limit_train_batches=1", "trainer.limit_val_batches=0"])
    assert cfg.compile is False
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    assert module.compile_plan is None
    assert getattr(module.net, "_compiled_call_impl", None) is None


def fit_one_step(make_cfg, overrides: list[str]):
    cfg = make_cfg([*overrides, "debug=limit", "logger=none", "callbacks=none", "trainer.max_epochs=1",
                    "trainer.limit_train_batches=1", "trainer.limit_val_batches=0"])
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 1
    return module, trainer.optimizers[0]


def test_compile_true_takes_the_fused_optimizer_step(make_cfg, capture_only) -> None:
    """The config's own optimizer (AdamW) takes its fused step with compile=true, its default step
    without; an optimizer without a fused implementation (RMSprop) is left as configured."""
    module, optimizer = fit_one_step(make_cfg, ["model=cnn", "compile=true"])
    assert type(optimizer) is torch.optim.AdamW and all(g["fused"] for g in optimizer.param_groups)
    assert module.compile_plan.optimizer == "AdamW (fused)"
    assert "optimizer: AdamW (fused)" in module.compile_plan.describe()
    module, optimizer = fit_one_step(make_cfg, ["model=cnn"])
    assert not any(g["fused"] for g in optimizer.param_groups)
    module, optimizer = fit_one_step(make_cfg, ["model=cnn", "compile=true", "optimizer=rmsprop"])
    assert type(optimizer) is torch.optim.RMSprop and module.compile_plan.optimizer == "RMSprop"


def test_a_fused_or_foreach_choice_in_the_config_is_kept() -> None:
    for chosen in ({"foreach": True}, {"foreach": False}, {"fused": False}, {"differentiable": True}):
        factory = functools.partial(torch.optim.AdamW, lr=1e-3, **chosen)
        assert with_fused_step(factory) is factory
    fused = with_fused_step(functools.partial(torch.optim.SGD, lr=0.1))
    assert fused.keywords == {"lr": 0.1, "fused": True}


def test_inductor_settings_go_to_inductor_only() -> None:
    assert with_inductor_options({})["options"] == {"fallback_random": True}
    assert with_inductor_options({}, "cuda") == {}  # on a GPU Inductor's fused random numbers stay
    assert with_inductor_options({"options": {"fallback_random": False}})["options"] == {"fallback_random": False}
    assert with_inductor_options({"backend": "aot_eager"}) == {"backend": "aot_eager"}
    assert with_inductor_options({"mode": "max-autotune"}) == {"mode": "max-autotune"}  # mode xor options


SMALL_WITH_DROPOUT = {  # the presets' own configs, narrowed for compile time, with dropout inside the branch
    "cnn": ["model=cnn", "model.branches.cnn.channels=[8,8,8]", "model.branches.cnn.dropout=0.3"],
    "transformer": ["model=transformer", "model.branches.transformer.d_model=16", "model.branches.transformer.heads=2",
                    "model.branches.transformer.layers=1", "model.branches.transformer.ff_dim=32",
                    "model.branches.transformer.dropout=0.3"],  # attention, residual and feed-forward dropout
}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SMALL_WITH_DROPOUT))
def test_compiled_training_step_draws_the_eager_dropout_masks(make_cfg, model: str) -> None:
    """Inductor with compile=true's settings, in training mode (dropout on, BatchNorm on batch
    statistics): from the same seed the compiled network gives the eager network's outputs, because
    dropout draws its masks from PyTorch's generator as eager mode does (``fallback_random``)."""
    torch._dynamo.reset()
    cfg = make_cfg(SMALL_WITH_DROPOUT[model])
    dm, module, _ = prepare(cfg)
    eager = build_model(cfg.model, dm)
    eager.load_state_dict(module.net.state_dict())
    compiled = module.net
    assert compile_network(compiled).compiled == ["FusionNet"]
    x = next(iter(dm.train_dataloader()))[0][:32]
    compiled.train()
    eager.train()
    refs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out = compiled(x)
        torch.manual_seed(seed)
        refs.append(eager(x))
        torch.testing.assert_close(out, refs[-1], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(refs[0], refs[1], atol=1e-3)  # another seed, other masks: dropout is on
    torch._dynamo.reset()
