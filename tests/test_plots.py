"""Per-run plots: learning curves from the logged epoch metrics, the test confusion matrix, lazy matplotlib."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fusionlab.training.plots import TrainingPlots
from fusionlab.training.run import prepare, train
from tests.conftest import ROOT, read_metrics

PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_are_written_from_the_logged_metrics_and_test_predictions(make_cfg, tmp_path: Path) -> None:
    dm, module, trainer = prepare(make_cfg(["debug=limit", "trainer.max_epochs=3"]))
    plots = next(c for c in trainer.callbacks if isinstance(c, TrainingPlots))
    trainer.fit(module, datamodule=dm)
    tested = trainer.test(module, datamodule=dm, verbose=False)[0]

    # the curves hold exactly what the CSV logger recorded, epoch by epoch
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/f1"):
        logged = {int(r["epoch"]): float(r[key]) for r in rows if r.get(key)}
        assert plots.history[key] == pytest.approx(logged), key
    assert sorted(plots.history["val/acc"]) == [0, 1, 2]

    # the confusion matrix is the test split's: its diagonal gives the logged test accuracy
    cm = plots.confusion
    assert cm is not None and cm.shape == (dm.num_classes, dm.num_classes)
    tested_samples = sum(len(b[1]) for b, _ in zip(dm.test_dataloader(), range(trainer.num_test_batches[0])))
    assert int(cm.sum()) == tested_samples
    assert float(cm.diag().sum() / cm.sum()) == pytest.approx(tested["test/acc"], abs=1e-6)

    for name in ("learning_curves.png", "confusion_matrix.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG


def test_a_training_run_leaves_both_plots_in_its_folder(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(["debug=limit", "logger=none"]))
    assert read_metrics(tmp_path)["status"] == "ok"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion_matrix.png", "learning_curves.png"]


def test_matplotlib_is_imported_only_when_a_plot_is_written() -> None:
    """fusionlab adds no matplotlib module at import (Lightning itself loads some); the report CLI none."""
    code = ("import sys\n"
            "mpl = lambda: {m for m in sys.modules if m.split('.')[0] == 'matplotlib'}\n"
            "import fusionlab.report\n"
            "print(len(mpl()))\n"
            "import pytorch_lightning\n"
            "before = mpl()\n"
            "import fusionlab.cli, fusionlab.training.run, fusionlab.training.plots\n"
            "print(len(mpl() - before))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_a_fast_dev_run_smoke_check_draws_nothing(make_cfg, tmp_path) -> None:
    from fusionlab.training.run import train

    train(make_cfg(["trainer.fast_dev_run=true", "logger=none"]))
    assert not (tmp_path / "plots").exists() or not any((tmp_path / "plots").iterdir())


@pytest.mark.parametrize(("n", "names"), [(2, ["negative", "positive"]), (3, None), (4, ["a", "b", "c", "d"]),
                                          (10, None), (30, [f"class_{i}" for i in range(30)])])
def test_confusion_matrix_labels_its_classes_and_keeps_every_text_inside_the_figure(n: int, names, tmp_path: Path,
                                                                                   monkeypatch) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import fusionlab.training.plots as plots

    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi: saved.append(fig))
    counts = torch.arange(n * n).view(n, n) % 7 + torch.eye(n, dtype=torch.long) * 20
    TrainingPlots(str(tmp_path), ["loss"], 100).write_confusion_matrix(counts, tmp_path / "cm.png", names)
    fig = saved[0]
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax, cbar = fig.axes
    expected = names if names is not None else [str(i) for i in range(n)]
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    assert ax.get_title().startswith("test confusion matrix")
    assert cbar.get_ylabel() == "fraction of the true class"
    texts = [ax.title, cbar.yaxis.label, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
    box = fig.bbox
    for t in texts:
        e = t.get_window_extent(renderer)
        assert box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1, (t.get_text(), e, box)


def test_the_plot_names_classes_as_the_datamodule_does(make_cfg, tmp_path: Path, monkeypatch) -> None:
    """The labels drawn are the datamodule's ``class_names`` (label order), not 0..K-1."""
    import fusionlab.training.plots as plots

    drawn = {}
    real = plots.confusion_figure

    def record(counts, names=None):
        drawn["names"] = list(names) if names is not None else None
        return real(counts, names)

    monkeypatch.setattr(plots, "confusion_figure", record)
    dm, module, trainer = prepare(make_cfg(["debug=limit", "trainer.max_epochs=1", "logger=none"]))
    dm.classes = [f"digit {c}" for c in dm.classes]  # names that differ from the label indices
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm, verbose=False)
    assert drawn["names"] == dm.class_names == [f"digit {i}" for i in range(dm.num_classes)]
    assert (tmp_path / "plots" / "confusion_matrix.png").read_bytes()[:8] == PNG
