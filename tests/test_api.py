"""fusionlab.load: the documented Python example runs, and the Predictor matches the trained module."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusionlab.jobs.train import train

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "logger=none", "threads=1"]


def api_example() -> str:
    """The Python example of docs/predict.md (the README points there)."""
    text = (ROOT / "docs" / "predict.md").read_text()
    block = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/predict.md lost its api-example block"
    return block.group(1)


def test_import_fusionlab_stays_cheap() -> None:
    code = "import sys, fusionlab; assert callable(fusionlab.load); print(sorted(m for m in ('torch', " \
           "'pytorch_lightning', 'hydra') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_api_example_is_about_five_lines() -> None:
    lines = [line for line in api_example().splitlines() if line.strip()]
    assert 4 <= len(lines) <= 6


@pytest.fixture(scope="module")
def series_ckpt(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path]:
    from fusionlab.data import MNIST1DDataModule
    from tests.conftest import compose_cfg

    base = tmp_path_factory.mktemp("api")
    arrays = MNIST1DDataModule(data_dir=str(data_dir)).load_arrays()
    np.savez(base / "new.npz", x=arrays["x_test"][:50], y=arrays["y_test"][:50])
    train(compose_cfg([*SHORT, "model=cnn_rnn", "fusion=gated"], base / "run", data_dir))
    return base / "run" / "checkpoints" / "best.ckpt", base / "new.npz"


@pytest.mark.slow
def test_documented_example_runs_on_a_trained_checkpoint(series_ckpt, monkeypatch) -> None:
    ckpt, new = series_ckpt
    code = api_example().replace("outputs/train/runs/<run>/checkpoints/best.ckpt", str(ckpt))
    code = code.replace('"new.npz"', f'"{new}"')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/predict.md", "exec"), {})
    printed = out.getvalue()
    assert "[0 1 2 3 4 5 6 7 8 9]" in printed and "modality='series', shape=(1, 40)" in printed


@pytest.mark.slow
def test_predictor_matches_the_module_and_takes_every_input_form(series_ckpt) -> None:
    import torch

    import fusionlab
    from fusionlab.inference import load_module

    ckpt, new = series_ckpt
    model = fusionlab.load(ckpt)
    x = np.load(new)["x"]
    assert model.classes_.tolist() == list(range(10)) and model.input_spec.shape == (1, 40)
    assert model.config["model"]["fusion"]["_target_"].endswith("GatedFusion")
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (model.classes_[proba.argmax(1)] == model.predict(x)).all()
    # (n, L), (n, 1, L) and a list of (L,) arrays are the same examples
    np.testing.assert_allclose(model.predict_proba(x[:, None, :]), proba, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(list(x)), proba, atol=1e-6)
    # batch size changes nothing; the module gives the same probabilities on the prepared inputs
    np.testing.assert_allclose(model.predict_proba(x, batch_size=7), proba, atol=1e-6)
    module = load_module(ckpt)
    inputs, mask = model.prepare(x)
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(module(inputs, mask), 1).numpy(), proba, atol=1e-6)
    # a model trained on equal-length series without a mask refuses a shorter one, naming the row
    from fusionlab.config.schema import ConfigError

    with pytest.raises(ConfigError, match="row 1 has 30 steps"):
        model.predict([x[0], x[1][:30]])
