"""mixup / CutMix: mixed inputs, mixed one-hot labels, and a loss that uses the soft targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fusionlab.training.mixing import CutMix, Mixup
from fusionlab.training.run import prepare


def batch(b: int = 16, classes: int = 5, length: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(b, 2, length), F.one_hot(torch.randint(0, classes, (b,)), classes).float()


def test_mixup_labels_are_the_mixed_one_hots() -> None:
    x, y = batch()
    torch.manual_seed(7)
    xm, ym = Mixup(alpha=0.4)(x, y)
    torch.manual_seed(7)  # replay the same draws
    lam = torch.distributions.Beta(0.4, 0.4).sample().item()
    perm = torch.randperm(x.shape[0])
    torch.testing.assert_close(ym, lam * y + (1 - lam) * y[perm])
    torch.testing.assert_close(xm, lam * x + (1 - lam) * x[perm])
    torch.testing.assert_close(ym.sum(dim=1), torch.ones(len(y)))


def test_cutmix_pastes_a_window_and_mixes_labels_by_its_length() -> None:
    x, y = batch()
    torch.manual_seed(3)
    xm, ym = CutMix(alpha=1.0)(x, y)
    torch.manual_seed(3)  # replay the same draws
    lam = torch.distributions.Beta(1.0, 1.0).sample().item()
    perm = torch.randperm(x.shape[0])
    width = int(round(20 * (1 - lam)))
    start = int(torch.randint(0, 20 - width + 1, ()).item())
    expected = x.clone()
    expected[:, :, start : start + width] = x[perm][:, :, start : start + width]
    torch.testing.assert_close(xm, expected)
    torch.testing.assert_close(ym, (1 - width / 20) * y + (width / 20) * y[perm])
    assert 0 < width < 20


def test_probability_zero_leaves_the_batch_alone() -> None:
    x, y = batch()
    for aug in (Mixup(p=0.0), CutMix(p=0.0)):
        xm, ym = aug(x, y)
        assert torch.equal(xm, x) and torch.equal(ym, y)


@pytest.mark.parametrize("option", ["mixup", "cutmix"])
def test_training_loss_uses_the_soft_targets_and_eval_is_untouched(make_cfg, option: str) -> None:
    dm, module, _ = prepare(make_cfg([f"augmentation={option}", "debug=fast", "model.dropout=0"]))
    module.eval()
    x, y = next(iter(dm.train_dataloader()))
    torch.manual_seed(11)
    loss = module._step((x, y), "train")
    torch.manual_seed(11)
    xm, ym = module.augmentation(x, F.one_hot(y, 10).float())
    expected = F.cross_entropy(module.net(xm), ym)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not torch.allclose(ym, F.one_hot(y, 10).float())
    val = module._step((x, y), "val")
    assert val.item() == pytest.approx(F.cross_entropy(module.net(x), y).item(), rel=1e-5)


def test_cutmix_on_images_pastes_a_box_and_mixes_labels_by_its_area() -> None:
    torch.manual_seed(5)
    x = torch.randn(8, 1, 12, 12)
    y = F.one_hot(torch.arange(8) % 4, 4).float()
    xm, ym = CutMix(alpha=1.0)(x, y)
    changed = (xm != x).any(dim=0).any(dim=0)  # (H, W)
    rows, cols = changed.any(dim=1).sum().item(), changed.any(dim=0).sum().item()
    assert 0 < rows * cols < 144
    kept = 1 - rows * cols / 144
    own = (ym * y).sum(dim=1)  # label weight left on each example's own class
    # own class keeps exactly the unpasted area, unless the partner has the same class (then all of it)
    same = (own - 1).abs() < 1e-6
    assert torch.all(((own - kept).abs() < 1e-6) | same) and not torch.all(same)
