"""Augmentations on padded series honour the mask, with the configs' own defaults, in training mode.

What the network receives from a training step is compared for one batch of an unequal-length UCR
problem (JapaneseVowels) as the loader gives it and the same batch padded further with garbage:
padding must never reach a real step, whatever its value or amount.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from fusionlab.augmentations import Compose, CutMix, Jitter, Mixup, TimeMask, TimeShift, WindowCrop
from fusionlab.training.module import FusionClassifier
from fusionlab.training.run import build_augmentation, train
from tests.conftest import read_metrics

SERIES = ["time_shift", "window_crop", "time_mask", "scaling", "magnitude_warp", "mixup", "cutmix"]
UCR = ["data=ucr", "data.name=JapaneseVowels"]


class Recorder(nn.Module):
    """A network that keeps what it is given (masked mean over time, then a linear layer)."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(channels, classes)
        self.seen: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.seen = (x.detach().clone(), mask.clone())
        m = mask[:, None, :].to(x.dtype)
        return self.head((x * m).sum(-1) / m.sum(-1))


def _training_module(make_cfg, option: str) -> FusionClassifier:
    """The LightningModule of a run with ``augmentation=<option>`` as its YAML states it, in training mode."""
    cfg = make_cfg([*UCR, f"augmentation={option}"])
    module = FusionClassifier(net=Recorder(12, 9), num_classes=9, optimizer=torch.optim.SGD,
                              augmentation=build_augmentation(cfg, "series"))
    return module.train()


def _net_inputs(module: Any, batch: tuple[torch.Tensor, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, mask)`` as the network receives them in one training step (seeded)."""
    torch.manual_seed(seed)
    module._step(batch, "train")
    return module.net.seen


def _garbage_padded(batch: tuple[torch.Tensor, ...], extra: int) -> tuple[torch.Tensor, ...]:
    """The batch padded by ``extra`` more steps, every padded value replaced by large garbage."""
    x, y, mask = batch
    x = F.pad(x, (0, extra))
    mask = F.pad(mask, (0, extra))
    garbage = 1e3 * (1 + torch.rand_like(x))
    return torch.where(mask[:, None, :], x, garbage), y, mask


@pytest.fixture(scope="module")
def vowels_batch(data_dir) -> tuple[torch.Tensor, ...]:
    from fusionlab.data import UCRDataModule

    dm = UCRDataModule("JapaneseVowels", data_dir=str(data_dir), batch_size=16)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    lengths = batch[2].sum(1)
    assert lengths.min() < lengths.max()  # padded
    return batch


@pytest.mark.parametrize("option", SERIES)
def test_padding_never_reaches_real_steps_in_a_training_step(make_cfg, vowels_batch, option: str) -> None:
    module = _training_module(make_cfg, option)
    x, y, mask = vowels_batch
    out, out_mask = _net_inputs(module, vowels_batch, seed=3)
    wide, wide_mask = _net_inputs(module, _garbage_padded(vowels_batch, extra=9), seed=3)
    n = out.shape[-1]
    assert torch.equal(wide_mask[:, :n], out_mask) and not wide_mask[:, n:].any()
    assert torch.all(out_mask <= mask)  # no padded step becomes real
    assert torch.all(out_mask.sum(1) >= 1)
    real = out_mask[:, None, :].expand_as(out)
    torch.testing.assert_close(wide[..., :n][real], out[real], rtol=1e-5, atol=1e-5)
    assert torch.all(out[~real] == 0)  # padding stays exactly 0
    assert not torch.equal(out, x)  # the augmentation did change the batch


def test_jitter_leaves_padding_at_zero_in_a_training_step(make_cfg, vowels_batch) -> None:
    module = _training_module(make_cfg, "jitter")
    x, _, mask = vowels_batch
    out, out_mask = _net_inputs(module, vowels_batch, seed=0)
    real = mask[:, None, :].expand_as(x)
    assert torch.equal(out_mask, mask)
    assert torch.all(out[~real] == 0) and not torch.equal(out[real], x[real])


def _yaml(option: str, make_cfg) -> Any:
    return instantiate(make_cfg([f"augmentation={option}"]).augmentation)


def _short_examples(lengths: list[int], width: int, channels: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    x = torch.randn(len(lengths), channels, width) * mask[:, None, :]
    return x, mask


def test_time_mask_lands_on_real_steps(make_cfg) -> None:
    aug = _yaml("time_mask", make_cfg)
    assert isinstance(aug, TimeMask)
    x, mask = _short_examples([5, 6, 4, 30] * 8, 60)
    torch.manual_seed(1)
    out = aug(x, mask)
    zeroed = (out == 0) & (x != 0)
    assert torch.all(zeroed.any(dim=1).sum(dim=1) >= 1)  # every example loses at least one real step
    assert not torch.any(zeroed & ~mask[:, None, :])


def test_time_shift_rolls_only_the_real_steps(make_cfg) -> None:
    aug = _yaml("time_shift", make_cfg)
    assert isinstance(aug, TimeShift)
    x, mask = _short_examples([5, 9, 13, 30], 30)
    torch.manual_seed(2)
    out = aug(x, mask)
    for i, n in enumerate(mask.sum(1).tolist()):
        rolls = [torch.roll(x[i, :, :n], s, dims=-1) for s in range(-aug.max_shift, aug.max_shift + 1)]
        assert any(torch.equal(out[i, :, :n], r) for r in rolls)
        assert torch.all(out[i, :, n:] == 0)


def test_window_crop_stretches_a_crop_of_the_real_steps(make_cfg) -> None:
    aug = _yaml("window_crop", make_cfg)
    assert isinstance(aug, WindowCrop)
    ramp = torch.arange(20, dtype=torch.float32)
    x = torch.zeros(3, 1, 40)
    x[:, 0, :20] = ramp
    mask = torch.arange(40)[None, :] < 20
    mask = mask.expand(3, -1)
    torch.manual_seed(4)
    out = aug(x, mask)
    real = out[:, 0, :20]
    steps = real.diff(dim=-1)
    torch.testing.assert_close(steps, steps[:, :1].expand_as(steps))  # still a ramp: no padding stretched in
    assert torch.all(real >= 0) and torch.all(real <= 19) and torch.all(out[:, :, 20:] == 0)


def test_mixup_mask_is_the_steps_real_in_both() -> None:
    x, mask = _short_examples([5, 9, 13, 30, 7, 21], 30)
    y = F.one_hot(torch.arange(6) % 3, 3).float()
    torch.manual_seed(5)
    xm, ym, mm = Mixup(alpha=1.0).apply(x, y, mask)
    lengths, mixed = mask.sum(1), mm.sum(1)
    for i in range(6):
        # the partner: the example whose mix reproduces row i on the shared steps
        n = int(mixed[i])
        assert torch.equal(mm[i, :n], torch.ones(n, dtype=torch.bool)) and not mm[i, n:].any()
        assert n in lengths.tolist() and n <= int(lengths[i])
        assert torch.all(xm[i, :, n:] == 0)
    torch.testing.assert_close(ym.sum(1), torch.ones(6))


def test_cutmix_pastes_only_inside_steps_real_in_both() -> None:
    x, mask = _short_examples([5, 9, 13, 30, 7, 21], 30)
    x = torch.where(mask[:, None, :], x, torch.full_like(x, 1e3))  # garbage padding
    y = F.one_hot(torch.arange(6), 6).float()
    torch.manual_seed(6)
    xm, ym, mm = CutMix(alpha=1.0).apply(x, y, mask)
    assert torch.equal(mm, mask)
    assert torch.all(xm[mask[:, None, :].expand_as(x)].abs() < 1e3)  # no partner padding pasted in
    for i in range(6):
        n = int(mask[i].sum())
        changed = (xm[i] != x[i]).any(dim=0).nonzero().ravel()
        pasted = len(changed)
        if pasted:
            assert int(changed.max() - changed.min()) + 1 == pasted and int(changed.max()) < n  # one window
        own = float(ym[i, i])
        assert own == pytest.approx(1 - pasted / n, abs=1e-6) or pasted == 0


def test_compose_keeps_mixing_and_the_mask() -> None:
    both = Compose([Jitter(sigma=0.1), Mixup(alpha=0.4)])
    assert both.mixes_labels and both.uses_mask and set(both.reads) == {"series", "image"}
    x, mask = _short_examples([5, 9, 13, 30], 30)
    y = F.one_hot(torch.arange(4) % 2, 2).float()
    xm, ym, mm = both(x, y, mask)
    assert ym.shape == y.shape and torch.all(mm <= mask) and torch.all(xm[:, :, 13:][~mm[:, None, 13:].expand(
        -1, 2, -1)] == 0)
    xm2, ym2 = both(x[:, :, :5], y)  # unpadded batch: (x, y_soft)
    assert xm2.shape == (4, 2, 5)


def test_mixup_inside_compose_trains(make_cfg, tmp_path) -> None:
    cfg = make_cfg([*UCR, "augmentation=compose", "debug=fast"])
    cfg.augmentation.transforms.append({"_target_": "fusionlab.augmentations.Mixup", "alpha": 0.2, "p": 1.0})
    train(cfg)
    m = read_metrics(tmp_path)
    assert m["status"] == "ok" and "test/acc" in m["metrics"]


@pytest.mark.parametrize("option", [*SERIES, "jitter", "compose"])
def test_augmentations_read_nothing_back_to_the_host(make_cfg, vowels_batch, option: str) -> None:
    from tests.test_no_host_sync import HostSyncDetector

    module = _training_module(make_cfg, option)
    with HostSyncDetector() as detector:
        module.augmentation.apply(vowels_batch[0], F.one_hot(vowels_batch[1], 9).float(), vowels_batch[2])
    assert detector.calls == []
