"""mixup / CutMix: mixed inputs, mixed one-hot labels, and a loss that uses the soft targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fusionlab.augmentations import CutMix, Mixup
from fusionlab.training.run import prepare


def batch(b: int = 16, classes: int = 5, length: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(b, 2, length), F.one_hot(torch.randint(0, classes, (b,)), classes).float()


def _partners(xm: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each mixed row ``i``: the ``(lam_i, j_i)`` that best explain ``xm_i = lam x_i + (1 - lam) x_j``
    (least squares over every candidate partner ``j``), found from the outputs alone."""
    b = x.shape[0]
    lams, partners = torch.empty(b), torch.empty(b, dtype=torch.long)
    for i in range(b):
        best = (float("inf"), 0.0, 0)
        for j in range(b):
            d = (x[i] - x[j]).ravel()
            r = (xm[i] - x[j]).ravel()
            lam = float(r @ d / (d @ d)) if j != i else 1.0
            err = float((r - lam * d).abs().max()) if j != i else float((xm[i] - x[i]).abs().max())
            if err < best[0]:
                best = (err, lam, j)
        assert best[0] < 1e-4, f"row {i} is not a mix of two examples"
        lams[i], partners[i] = best[1], best[2]
    return lams, partners


def test_mixup_mixes_each_example_with_one_partner_and_its_label_alike() -> None:
    x, y = batch()
    xm, ym = Mixup(alpha=0.4)(x, y)
    lams, partners = _partners(xm, x)
    moved = (xm - x).flatten(1).abs().amax(dim=1) > 1e-5  # rows paired with themselves stay as they were
    lam = lams[moved]
    assert len(lam) > 0 and torch.allclose(lam, lam[0].expand_as(lam), atol=1e-4)  # one lam per batch
    assert 0 <= float(lam[0]) <= 1
    torch.testing.assert_close(ym, lams[:, None] * y + (1 - lams[:, None]) * y[partners], atol=1e-4, rtol=0)
    torch.testing.assert_close(ym.sum(dim=1), torch.ones(len(y)))


def test_mixup_draws_differ_between_batches_and_follow_the_seed() -> None:
    x, y = batch()
    torch.manual_seed(0)
    first = Mixup(alpha=1.0)(x, y)[0]
    second = Mixup(alpha=1.0)(x, y)[0]
    torch.manual_seed(0)
    again = Mixup(alpha=1.0)(x, y)[0]
    assert not torch.equal(first, second) and torch.equal(first, again)


def test_cutmix_pastes_a_window_and_mixes_labels_by_its_length() -> None:
    x, y = batch()
    y = F.one_hot(torch.arange(16), 16).float()  # every example its own class: label weights show the window
    torch.manual_seed(3)
    xm, ym = CutMix(alpha=1.0)(x, y)
    widths = []
    for i in range(len(x)):
        changed = (xm[i] != x[i]).any(dim=0).nonzero().ravel()
        width = len(changed)
        widths.append(width)
        if width:
            assert int(changed.max() - changed.min()) + 1 == width  # one contiguous window
            j = int(ym[i].argsort()[-2]) if width < 20 else int(ym[i].argmax())
            torch.testing.assert_close(xm[i, :, changed], x[j, :, changed])  # taken from one partner
            assert float(ym[i, j]) == pytest.approx(width / 20, abs=1e-6)
        assert float(ym[i, i]) == pytest.approx(1 - width / 20, abs=1e-6) or width == 20
    pasted = {w for w in widths if w}  # rows paired with themselves show no change
    assert len(pasted) == 1  # one lam, one window width for the batch
    assert 0 < max(widths) < 20


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
    y = F.one_hot(torch.arange(8), 8).float()  # every image its own class
    xm, ym = CutMix(alpha=1.0)(x, y)
    areas = set()
    for i in range(8):
        changed = (xm[i, 0] != x[i, 0])
        rows, cols = changed.any(dim=1).nonzero().ravel(), changed.any(dim=0).nonzero().ravel()
        if not len(rows):
            assert float(ym[i, i]) == pytest.approx(1.0)  # paired with itself
            continue
        h, w = int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1
        assert int(changed.sum()) == h * w  # one rectangle
        areas.add(h * w)
        assert float(ym[i, i]) == pytest.approx(1 - h * w / 144, abs=1e-6)
    assert len(areas) == 1 and 0 < areas.pop() < 144
