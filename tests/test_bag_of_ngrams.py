"""fastText's bag of word n-grams (branch=bag_of_ngrams): what it computes, padding, word order, the
routing of word ids past the shared embedding, and the text_bag preset."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fusionlab.branches import BagOfNgramsBranch
from fusionlab.config.schema import ConfigError
from tests.conftest import CONF

YAML = CONF / "branch" / "bag_of_ngrams.yaml"
VOCAB = 50


def bag(**overrides) -> BagOfNgramsBranch:
    """The branch as conf/branch/bag_of_ngrams.yaml builds it (its own defaults), with ``overrides``."""
    return instantiate(OmegaConf.merge(OmegaConf.load(YAML), overrides), vocab_size=VOCAB)


def rows_of(words: list[int], ngrams: int, buckets: int) -> list[int]:
    """The embedding rows fastText reads for one text, written out independently of the branch: each word's
    id, then for n = 2..ngrams each run of n words hashed as ((w1 * P + w2) * P + ...) mod buckets, after V."""
    rows = list(words)
    for n in range(2, ngrams + 1):
        for t in range(len(words) - n + 1):
            h = words[t]
            for w in words[t + 1:t + n]:
                h = (h * 1_000_003 + w) % buckets
            rows.append(VOCAB + h)
    return rows


@pytest.mark.parametrize("ngrams", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
def test_pooled_vector_is_the_sum_of_word_and_ngram_vectors_over_the_number_of_words(ngrams: int,
                                                                                     training: bool) -> None:
    """Mean pooling over real positions of s_t = E[w_t] + sum_n E[V + h(w_t..w_{t+n-1})] equals the sum of the
    text's word and n-gram rows divided by its number of words; padding (and what padded steps hold) adds
    nothing, and no n-gram spans into the padding."""
    branch = bag(ngrams=ngrams).train(training)
    words = [[5, 7, 9, 7, 3], [11, 2, 4]]
    x = torch.zeros(2, 8, dtype=torch.long)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    for i, w in enumerate(words):
        x[i, :len(w)] = torch.tensor(w)
        mask[i, :len(w)] = True
    junk = x.clone()
    junk[~mask] = 13  # a real word id where the mask says padding
    table = branch.vectors.weight
    for ids in (x, junk):
        seq = branch(ids, mask)
        assert seq.shape == (2, 8, 16) and (seq[~mask] == 0).all()
        pooled = branch.pool(seq, branch.out_mask(mask, seq.shape[1]))
        for i, w in enumerate(words):
            expected = table[rows_of(w, ngrams, branch.buckets)].sum(0) / len(w)
            torch.testing.assert_close(pooled[i], expected)


def test_yaml_defaults_are_fasttext_bigrams_and_the_parameter_count_is_rows_times_dim() -> None:
    default = bag()
    assert (default.out_dim, default.ngrams, default.buckets, default.pool_name) == (16, 2, 262144, "mean")
    assert sum(p.numel() for p in default.parameters()) == (VOCAB + 262144) * 16
    assert sum(p.numel() for p in bag(ngrams=1).parameters()) == VOCAB * 16  # words only: no hash rows


def test_bigrams_see_word_order_and_words_alone_do_not() -> None:
    x = torch.tensor([[5, 7, 9, 3], [9, 5, 3, 7]])  # the same words, another order
    words_only, bigrams = bag(ngrams=1), bag()
    with torch.no_grad():
        a, b = (words_only.pool(words_only(x)) for x in (x[:1], x[1:]))
        torch.testing.assert_close(a, b)
        a, b = (bigrams.pool(bigrams(x)) for x in (x[:1], x[1:]))
    assert (a - b).abs().max() > 1e-3


def test_the_gradient_reaches_only_the_rows_of_the_text() -> None:
    branch = bag(buckets=1024)
    x = torch.tensor([[5, 7, 9, 0, 0]])
    branch.pool(branch(x, x != 0)).sum().backward()
    touched = set(torch.nonzero(branch.vectors.weight.grad.abs().sum(1)).flatten().tolist())
    assert touched == set(rows_of([5, 7, 9], 2, 1024))


def test_fused_with_an_embedded_branch_reads_the_word_ids_and_the_cnn_the_embedding(make_cfg) -> None:
    """The default job's text CNN with a bag beside it: the bag is built with the vocabulary size and gets the
    word ids (not the embedded vectors), the CNN still reads the shared embedding; both train one step."""
    from fusionlab.jobs.builders import prepare

    cfg = make_cfg(["experiment=text_cnn", "+branch@model.branches.bag=bag_of_ngrams", "data.max_length=48",
                    "debug=fast"])
    dm, module, trainer = prepare(cfg)
    net = module.net
    assert isinstance(net.branches["bag"], BagOfNgramsBranch) and net.embedding is not None
    assert net.branches["bag"].vocab_size == dm.input_spec.vocab_size
    seen: dict[str, torch.Tensor] = {}
    for name in ("bag", "conv3"):
        net.branches[name].register_forward_pre_hook(lambda m, args, name=name: seen.update({name: args[0]}) or None)
    x, y, mask = next(iter(dm.train_dataloader()))
    net(x, mask)
    assert torch.equal(seen["bag"], x) and seen["conv3"].shape[1] == net.embedding.out_dim
    before = net.branches["bag"].vectors.weight.detach().clone()
    trainer.fit(module, datamodule=dm)
    assert not torch.equal(before, net.branches["bag"].vectors.weight)


def test_text_bag_preset_builds_no_embedding_and_learns(make_cfg, tmp_path) -> None:
    """experiment=text_bag (its YAML's values): the bag alone, no token embedding built, Adam 3e-3, 20 epochs;
    four epochs on the reviews (16,384 hash rows) bring the training loss below chance and validation above the
    majority class."""
    from fusionlab.jobs.builders import prepare

    cfg = make_cfg(["experiment=text_bag"])
    assert cfg.trainer.max_epochs == 20 and cfg.optimizer.lr == 0.003 and list(cfg.model.head_hidden) == []
    small = ["trainer.max_epochs=4", "model.branches.bag.buckets=16384"]  # 4 epochs, 16x fewer hash rows: seconds
    dm, module, trainer = prepare(make_cfg(["experiment=text_bag", *small], out=tmp_path / "run"))
    assert module.net.embedding is None and list(module.net.branches) == ["bag"]
    trainer.fit(module, datamodule=dm)
    losses = trainer.logged_metrics
    val = float(trainer.callback_metrics["val/acc"])
    assert val > 0.70, val  # the majority class is 65 %
    assert float(losses["train/loss"]) < 0.69  # below chance-level cross-entropy


@pytest.mark.parametrize(("overrides", "key", "words"), [
    (["+branch@model.branches.bag=bag_of_ngrams"], "model.branches.bag",
     "reads text (word ids), but the data is series"),
    (["data=text", "model=text_cnn", "+branch@model.branches.bag=bag_of_ngrams", "+model.views.bag=diff"],
     "model.views.bag", "takes no view"),
    (["data=text", "model=text_cnn", "+branch@model.branches.bag=bag_of_ngrams", "model.taps=[1]"],
     "model.taps", "word-id branch"),
])
def test_misplaced_bag_is_a_config_error_naming_the_key(make_cfg, overrides: list[str], key: str, words: str) -> None:
    from fusionlab.jobs.builders import prepare

    with pytest.raises(ConfigError) as err:
        prepare(make_cfg(overrides))
    assert err.value.key == key and words in str(err.value)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_text_bag_model_exports_and_matches_pytorch_on_texts_of_any_length(make_cfg, tmp_path, fmt: str) -> None:
    """experiment=text_bag trained two steps (16,384 hash rows): exported, the graph takes the word ids with a
    dynamic batch and length (the n-gram hashing included) and matches PyTorch on 160 test reviews."""
    from fusionlab.inference.export import SUFFIX, TOLERANCE, compare, example_inputs, export_model
    from fusionlab.jobs.builders import prepare

    cfg = make_cfg(["experiment=text_bag", "model.branches.bag.buckets=16384", "data.max_length=64",
                    "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=0",
                    "logger=none", "callbacks=none"])
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    net = module.net.eval()
    x, _, mask = dm.splits["test"]
    prepared = (x[:160], mask[:160])
    path = tmp_path / f"model{SUFFIX[fmt]}"
    result = export_model(net, "text", fmt, path, example_inputs(prepared, "text", rows=4))
    assert result["inputs"] == ["ids"] and set(result["dynamic_axes"]["ids"]) == {0, 1}
    check = compare(net, "text", fmt, path, prepared, batch_size=96, dynamic_length=True)
    assert check["max_abs_diff"] <= TOLERANCE, check
