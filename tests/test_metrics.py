"""Training metrics from the running confusion matrix equal torchmetrics' accuracy and macro-F1."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from fusionlab.training.metrics import ConfusionMetrics, make_metrics


@pytest.mark.parametrize("absent_class", [False, True])
def test_confusion_metrics_match_torchmetrics(absent_class: bool) -> None:
    torch.manual_seed(0)
    metric = ConfusionMetrics(6)
    all_logits, all_y = [], []
    for _ in range(4):
        logits = torch.randn(50, 6)
        y = torch.randint(0, 6, (50,))
        if absent_class:  # class 5 is never a target nor a prediction
            logits[:, 5] -= 100
            y = y % 5
        metric.update(logits, y)
        all_logits.append(logits)
        all_y.append(y)
    logits, y = torch.cat(all_logits), torch.cat(all_y)
    out = metric.compute()
    assert out["acc"].item() == pytest.approx(multiclass_accuracy(logits, y, 6, average="micro").item(), abs=1e-6)
    assert out["f1"].item() == pytest.approx(multiclass_f1_score(logits, y, 6, average="macro").item(), abs=1e-6)


def test_collections_log_the_same_names_for_every_stage() -> None:
    logits, y = torch.randn(30, 4), torch.randint(0, 4, (30,))
    for stage in ("train", "val", "test"):
        m = make_metrics(4, f"{stage}/")
        m.update(logits, y)
        assert set(m.compute()) == {f"{stage}/acc", f"{stage}/f1"}


def test_confusion_update_reads_nothing_back_to_the_host() -> None:
    """``torch.bincount`` (used before) reads its input's maximum back on CUDA: a sync every step."""
    from tests.test_no_host_sync import HostSyncDetector

    metric = ConfusionMetrics(5)
    logits, y = torch.randn(40, 5), torch.randint(0, 5, (40,))
    with HostSyncDetector() as detector:
        metric.update(logits, y)
    assert detector.calls == []
    cm = metric.counts.view(5, 5)
    assert cm.sum() == 40 and cm[y[0], logits[0].argmax()] >= 1
    assert torch.equal(cm.diag().sum(), (logits.argmax(-1) == y).sum())
