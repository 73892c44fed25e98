"""The data state a checkpoint carries, and new examples prepared from it exactly as the test split was."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data import (
    DigitsDataModule,
    InputsDataModule,
    NPZDataModule,
    UCRDataModule,
    encode_labels,
    prepare_inputs,
    read_inputs,
)
from fusionlab.data.text import ReviewsDataModule


def _reloaded(state: dict) -> dict:
    """``state`` through torch.save and ``torch.load(weights_only=True)``, as a checkpoint holds it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _assert_batches_equal(dm, raw, state: dict, batch_size: int) -> None:
    """Each test batch of ``dm`` equals ``prepare_inputs`` on the same raw rows."""
    start = 0
    for batch in dm.test_dataloader():
        rows = raw[start : start + len(batch[1])]
        x, mask = prepare_inputs(state, rows)
        torch.testing.assert_close(x, batch[0], rtol=0, atol=0)
        if len(batch) > 2:
            assert mask is not None and torch.equal(mask, batch[2])
        else:
            assert mask is None
        start += len(batch[1])
    assert start == len(raw)


@pytest.fixture(scope="module")
def vowels(data_dir: Path) -> UCRDataModule:
    dm = UCRDataModule("JapaneseVowels", data_dir=str(data_dir), impute="mean", eval_batch_size=100)
    dm.setup()
    return dm


def _vowels_raw(dm: UCRDataModule) -> list[np.ndarray]:
    arrays = dm.load_arrays()
    return [x[:, : int(m.sum())] for x, m in zip(arrays["x_test"], arrays["mask_test"])]


def test_series_state_loads_weights_only_and_prepares_the_test_split_exactly(vowels: UCRDataModule) -> None:
    state = _reloaded(vowels.data_state())
    assert state["input_spec"] == {"modality": "series", "shape": [12, vowels.length], "vocab_size": None,
                                   "masked": True}
    assert state["classes"] == vowels.classes and state["class_names"] == [str(c) for c in vowels.classes]
    assert state["length"] == vowels.length and state["length_policy"] == "cut"
    assert state["preprocessing"]["kind"] == "standardize" and state["impute"] == "mean"
    assert isinstance(state["impute_fill"], torch.Tensor)
    _assert_batches_equal(vowels, _vowels_raw(vowels), state, 100)


def test_image_state_prepares_the_test_split_exactly() -> None:
    dm = DigitsDataModule(eval_batch_size=250)
    dm.setup()
    state = _reloaded(dm.data_state())
    raw = dm.load_arrays()["x_test"]
    _assert_batches_equal(dm, raw, state, 250)
    x, _ = prepare_inputs(state, raw[:5, 0])  # (n, h, w): one channel
    torch.testing.assert_close(x, dm.splits["test"][0][:5])


def test_text_state_prepares_the_test_split_exactly(data_dir: Path) -> None:
    dm = ReviewsDataModule(data_dir=str(data_dir), max_length=200, min_freq=2)
    dm.setup()
    state = _reloaded(dm.data_state())
    assert state["tokenizer"]["tokens"] == list(dm.tokenizer.tokens) and state["text_column"] == "review"
    texts = dm.load_texts()["texts_test"]
    _assert_batches_equal(dm, texts, state, dm.eval_batch_size)
    x, mask = prepare_inputs(state, ["zzqqx great coffee"])
    assert x[0, 0] == 1 and mask.all()  # an unknown token is <unk> (id 1)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (lambda: [np.zeros((11, 20))], r"input: row 0 has 11 channel\(s\), expected 12"),
        (lambda: np.zeros((3, 12, 20, 2)), r"input: row 0 has shape \(12, 20, 2\)"),
        (lambda: [np.zeros((12, 9)), np.full((12, 5), np.inf)], r"input: row 1 has non-finite values \(NaN/inf\)"),
        (lambda: [np.zeros((12, 9)), np.zeros((12, 0))], "input: row 1 is empty"),
    ],
)
def test_bad_series_are_one_line_naming_the_row(vowels: UCRDataModule, raw, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        prepare_inputs(vowels.data_state(), raw())


def test_a_series_longer_than_training_is_cut_or_refused_per_the_state(vowels: UCRDataModule) -> None:
    state = vowels.data_state()
    long = [np.ones((12, 5)), np.arange(12 * 40, dtype=float).reshape(12, 40)]
    x, mask = prepare_inputs(state, long)
    assert x.shape == (2, 12, vowels.length) and mask.sum(1).tolist() == [5, vowels.length]
    with pytest.raises(ConfigError, match=f"^input: row 1 has 40 steps, longer than the {vowels.length}"):
        prepare_inputs({**state, "length_policy": "refuse"}, long)


def test_an_empty_text_is_refused_naming_its_row(data_dir: Path) -> None:
    dm = ReviewsDataModule(data_dir=str(data_dir), max_length=200, min_freq=2)
    dm.setup()
    with pytest.raises(ConfigError, match="input: row 2 has an empty text"):
        prepare_inputs(dm.data_state(), ["good", "bad", "  "])


def test_equal_length_models_take_exactly_their_length(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "eq.npz", x=rng.normal(size=(30, 2, 16)), y=np.arange(30) % 3)
    dm = NPZDataModule(str(tmp_path / "eq.npz"), val_size=0)
    dm.setup()
    state = dm.data_state()
    x, mask = prepare_inputs(state, rng.normal(size=(4, 2, 20)))
    assert x.shape == (4, 2, 16) and mask is None  # cut to the training length (data.too_long=cut)
    with pytest.raises(ConfigError, match="row 0 has 12 steps; the model was trained on series of exactly 16"):
        prepare_inputs(state, rng.normal(size=(4, 2, 12)))


# -- reading new files ----------------------------------------------------------------------------------------
def test_read_inputs_reads_npz_with_a_mask_numbered_arrays_and_ts(vowels: UCRDataModule, tmp_path: Path) -> None:
    import os

    import aeon.datasets

    state = vowels.data_state()
    raw = _vowels_raw(vowels)
    arrays = vowels.load_arrays()
    np.savez(tmp_path / "masked.npz", x=arrays["x_test"], mask=arrays["mask_test"], y=arrays["y_test"])
    np.savez(tmp_path / "listed.npz", *raw)
    ts = Path(os.path.dirname(aeon.datasets.__file__)) / "data" / "JapaneseVowels" / "JapaneseVowels_TEST.ts"
    expected = prepare_inputs(state, raw)
    for path in (tmp_path / "masked.npz", tmp_path / "listed.npz", ts):
        got, labels = read_inputs(path, state)
        x, mask = prepare_inputs(state, got)
        torch.testing.assert_close(x, expected[0], rtol=0, atol=0)
        assert torch.equal(mask, expected[1])
        if path.name != "listed.npz":
            assert labels is not None and encode_labels(state, labels).tolist() == vowels.splits["test"][1].tolist()
    pickled = np.empty(len(raw), dtype=object)
    for i, a in enumerate(raw):
        pickled[i] = a
    np.save(tmp_path / "pickled.npy", pickled, allow_pickle=True)
    with pytest.raises(ConfigError, match="object .pickled. arrays, which are not loaded"):
        read_inputs(tmp_path / "pickled.npy", state)


def test_read_inputs_reads_text_tables_and_lines(data_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    dm = ReviewsDataModule(data_dir=str(data_dir), max_length=200, min_freq=2)
    dm.setup()
    state = dm.data_state()
    frame = pd.DataFrame({"review": ["great coffee", "stale and bitter"], "body": ["a", "b"],
                          "score": ["great", "other"]})
    frame.to_csv(tmp_path / "new.csv", index=False)
    frame.to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "new.parquet")
    (tmp_path / "new.txt").write_text("great coffee\nstale and bitter\n")
    for name in ("new.csv", "new.jsonl", "new.parquet", "new.txt"):
        texts, labels = read_inputs(tmp_path / name, state)
        assert texts == ["great coffee", "stale and bitter"]
        assert (labels is None) == (name == "new.txt")
    texts, _ = read_inputs(tmp_path / "new.csv", state, text_column="body")
    assert texts == ["a", "b"]
    with pytest.raises(ConfigError, match="'nope' is not a column of"):
        read_inputs(tmp_path / "new.csv", state, text_column="nope")
    with pytest.raises(ConfigError, match="label 'meh' .row 1. does not occur"):
        encode_labels(state, ["great", "meh"])


def test_inputs_datamodule_tests_like_the_datamodule_without_the_training_data(vowels: UCRDataModule,
                                                                              tmp_path: Path) -> None:
    arrays = vowels.load_arrays()
    np.savez(tmp_path / "test.npz", x=arrays["x_test"], mask=arrays["mask_test"], y=arrays["y_test"])
    for size in (1, 7, 1000):
        inputs = InputsDataModule(_reloaded(vowels.data_state()), path=tmp_path / "test.npz", eval_batch_size=size)
        vowels.eval_batch_size = size
        pairs = list(zip(inputs.test_dataloader(), vowels.test_dataloader(), strict=True))
        for got, want in pairs[:50]:
            for a, b in zip(got, want, strict=True):
                assert torch.equal(a, b)
    vowels.eval_batch_size = 100
    assert inputs.class_names == vowels.class_names and inputs.input_spec == vowels.input_spec.with_(tokens=None)
