"""Length-bucketed training batches (``data.bucket_by_length``): every example once per epoch, the
same number of batches as plain shuffling, reproducible from the seed, and much less padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusionlab.data.buckets import LengthBuckets
from fusionlab.data.text import ReviewsDataModule


def padded_area(batches: list[list[int]], lengths: torch.Tensor) -> int:
    """Token slots a trimmed batch holds: batch size × its longest example, summed over batches."""
    return sum(len(b) * int(lengths[b].max()) for b in batches)


def test_every_index_once_and_as_many_batches_as_plain_shuffling() -> None:
    lengths = torch.randint(1, 200, (1001,), generator=torch.Generator().manual_seed(0))
    sampler = LengthBuckets(lengths, batch_size=32, generator=torch.Generator().manual_seed(1), pool=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32  # ceil(1001 / 32)
    assert sorted(i for b in batches for i in b) == list(range(1001))
    assert sorted(len(b) for b in batches)[1:] == [32] * 31  # one short batch, as with plain shuffling


def test_order_follows_the_generator_and_changes_between_epochs() -> None:
    lengths = torch.arange(500) % 97
    first = list(LengthBuckets(lengths, 16, torch.Generator().manual_seed(3)))
    again = list(LengthBuckets(lengths, 16, torch.Generator().manual_seed(3)))
    assert first == again
    sampler = LengthBuckets(lengths, 16, torch.Generator().manual_seed(3))
    assert list(sampler) != list(sampler)  # the next epoch draws a new order


def test_bucketed_batches_hold_far_less_padding_than_shuffled_ones() -> None:
    lengths = torch.randint(1, 200, (2000,), generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    shuffled = [b.tolist() for b in torch.randperm(2000, generator=gen).split(32)]
    bucketed = list(LengthBuckets(lengths, 32, gen))
    real = int(lengths.sum())
    assert padded_area(bucketed, lengths) < 1.1 * real < 0.6 * padded_area(shuffled, lengths)


@pytest.mark.parametrize("bucket", [True, False])
def test_review_corpus_batches(data_dir: Path, bucket: bool) -> None:
    dm = ReviewsDataModule(data_dir=str(data_dir), min_freq=2, max_length=200, bucket_by_length=bucket, seed=0)
    dm.setup()
    batches = list(dm.train_dataloader())
    ys = torch.cat([y for _, y, _ in batches])
    assert len(batches) == 55 and len(ys) == 3500  # 3500 training reviews, batches of 64
    assert torch.equal(ys.sort().values, dm.splits["train"][1].sort().values)  # each review once
    area = sum(x.numel() for x, _, _ in batches)
    real = int(dm.splits["train"][2].sum())
    assert all(mask[:, -1].any() for _, _, mask in batches)  # every batch cut to its longest review
    if bucket:
        assert area < 1.25 * real  # little padding is left
    else:
        assert area > 2 * real  # about 5% of reviews reach max_length: most batches hold one
    assert dm.val_dataloader().batch_sampler.__class__.__name__ == "BatchSampler"  # evaluation is not bucketed


def test_unequal_length_series_bucket_too_and_train_from_the_cli(make_cfg, tmp_path: Path, data_dir: Path) -> None:
    from fusionlab.data.ucr import UCRDataModule
    from fusionlab.training.run import train

    plain = UCRDataModule("JapaneseVowels", data_dir=str(data_dir), val_size=0, batch_size=16)
    bucketed = UCRDataModule("JapaneseVowels", data_dir=str(data_dir), val_size=0, batch_size=16,
                             bucket_by_length=True)
    areas = []
    for dm in (plain, bucketed):
        dm.setup()
        batches = list(dm.train_dataloader())
        assert len(batches) == 17 and sum(len(y) for _, y, _ in batches) == 270
        areas.append(sum(mask.numel() for _, _, mask in batches))
    assert areas[1] < areas[0]
    train(make_cfg(["data=ucr", "data.name=JapaneseVowels", "data.bucket_by_length=true", "model=cnn_rnn",
                    "trainer.max_epochs=1", "logger=none"]))
    assert (tmp_path / "metrics.json").is_file()
