"""Image augmentations: exact geometry on known images, training batches only, refused on other data."""

from __future__ import annotations

import pytest
import torch

from fusionlab.augmentations import Cutout, HorizontalFlip, RandomShift
from fusionlab.config.schema import ConfigError
from fusionlab.training.run import prepare
from tests.conftest import run_cli_shared


def _dots(b: int = 64, c: int = 2, h: int = 7, w: int = 9) -> torch.Tensor:
    """One bright pixel per image at the centre, its value the example's index (channel-scaled)."""
    x = torch.zeros(b, c, h, w)
    x[:, :, h // 2, w // 2] = torch.arange(1, b + 1, dtype=torch.float32).view(b, 1) * torch.tensor([1.0, -2.0])
    return x


def test_random_shift_moves_every_pixel_by_one_offset_within_range() -> None:
    torch.manual_seed(0)
    x = _dots()
    out = RandomShift(max_shift=2)(x)
    offsets = set()
    for i in range(x.shape[0]):
        (r, c), = (out[i, 0] != 0).nonzero().tolist()
        dy, dx = r - 3, c - 4
        assert abs(dy) <= 2 and abs(dx) <= 2
        offsets.add((dy, dx))
        assert torch.equal(out[i, :, r, c], x[i, :, 3, 4])  # both channels moved together, values kept
    assert len(offsets) > 10  # offsets are drawn per example


def test_random_shift_fills_the_uncovered_border_with_zeros() -> None:
    torch.manual_seed(1)
    x = torch.ones(32, 1, 5, 5)
    out = RandomShift(max_shift=1)(x)
    for i in range(32):
        zero_rows = int((out[i, 0].sum(1) == 0).sum())
        zero_cols = int((out[i, 0].sum(0) == 0).sum())
        assert zero_rows <= 1 and zero_cols <= 1
        assert out[i].sum() == (5 - zero_rows) * (5 - zero_cols)


def test_flip_mirrors_chosen_images_and_leaves_the_others_bit_for_bit() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 1, 4, 6)
    out = HorizontalFlip(p=0.5)(x)
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    same = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | same).all()) and 60 < int(flipped.sum()) < 140


def test_cutout_zeros_one_square_of_the_configured_size() -> None:
    torch.manual_seed(0)
    x = torch.ones(100, 3, 12, 12)
    out = Cutout(size=4)(x)
    holes = (out[:, 0] == 0)
    assert torch.equal(holes.unsqueeze(1).expand_as(out), out == 0)  # every channel, same square
    sizes = holes.sum(dim=(1, 2))
    assert int(sizes.max()) == 16 and int(sizes.min()) >= 4  # a full square, or one clipped by the border
    for i in range(100):
        rows, cols = holes[i].nonzero().unbind(1)
        assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == sizes[i]  # a rectangle


def test_p_zero_returns_the_input() -> None:
    x = torch.randn(8, 1, 5, 5)
    for aug in (RandomShift(p=0.0), HorizontalFlip(p=0.0), Cutout(p=0.0)):
        assert aug(x) is x


@pytest.mark.parametrize("aug", ["random_shift", "cutout", "flip"])
def test_image_augmentation_trains_on_digits_and_changes_training_batches_only(make_cfg, aug: str) -> None:
    dm, module, trainer = prepare(make_cfg(["data=digits", "model=cnn2d", f"augmentation={aug}",
                                            "augmentation.p=1.0", "debug=fast"]))
    x = dm.splits["train"][0][:64]
    module.train()
    assert not torch.equal(module.augmentation(x), x)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 1


def test_an_image_augmentation_on_series_data_is_refused_before_training(make_cfg) -> None:
    with pytest.raises(ConfigError, match="augmentation: 'cutout' applies to image data, but the data is series"):
        prepare(make_cfg(["augmentation=cutout", "debug=fast"]))


def test_a_series_augmentation_on_images_fails_from_the_cli_with_one_line(tmp_path) -> None:
    res = run_cli_shared("train.py", "data=digits", "model=cnn2d", "augmentation=time_shift", "debug=fast",
                  f"hydra.run.dir={tmp_path}")
    assert res.returncode == 2, res.stderr[-2000:]
    assert "augmentation: 'time_shift' applies to series data, but the data is image" in res.stderr
    assert "Traceback" not in res.stderr
