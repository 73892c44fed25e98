"""Prediction throughput: ``predict.py`` (= ``fusionlab-predict``) against ``eval.py`` on the MNIST-1D test split.

Both read the same checkpoint and label the same 1000 test series. Two measures, side by side,
interleaved, medians of ``--repeats`` runs:

- end to end: wall time of the command (start-up, loading the checkpoint, preparing the data,
  the forward passes, writing the results), as examples per second;
- in process: the prediction work alone, ``fusionlab.load(ckpt).predict_proba(raw test series)``
  (scaling included) against Lightning's ``trainer.test`` on the datamodule eval.py builds.

    OMP_NUM_THREADS=1 python scripts/bench_predict.py [--ckpt best.ckpt] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def train_checkpoint(work: Path, data_dir: Path) -> Path:
    """A CNN+GRU trained for 2 short epochs on MNIST-1D (the weights do not change the speed)."""
    subprocess.run([sys.executable, "train.py", "debug=limit", "logger=none", f"paths.data_dir={data_dir}",
                    f"hydra.run.dir={work / 'run'}", "threads=1"], cwd=ROOT, check=True, capture_output=True)
    return work / "run" / "checkpoints" / "best.ckpt"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=None, help="a checkpoint trained on MNIST-1D (default: train one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt = args.ckpt or train_checkpoint(work, args.data_dir)
        from fusionlab.data import MNIST1DDataModule

        arrays = MNIST1DDataModule(data_dir=str(args.data_dir)).load_arrays()
        x, y = arrays["x_test"], arrays["y_test"]
        np.savez(work / "test.npz", x=x, y=y)
        n = len(y)
        predict_cmd = [sys.executable, "predict.py", f"ckpt_path={ckpt}", f"input={work / 'test.npz'}",
                       f"output={work / 'pred.csv'}", f"paths.log_dir={work / 'logs'}", "threads=1"]
        eval_cmd = [sys.executable, "eval.py", f"ckpt_path={ckpt}", f"paths.log_dir={work / 'logs'}", "threads=1"]
        cli = {"predict.py": [], "eval.py": []}
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            cli["predict.py"].append(timed(predict_cmd))
            cli["eval.py"].append(timed(eval_cmd))

        import pytorch_lightning as pl

        import fusionlab
        from fusionlab.config.build import build
        from fusionlab.inference import load_module
        from fusionlab.jobs.environment import quiet_lightning

        quiet_lightning()
        model = fusionlab.load(ckpt)
        module = load_module(ckpt)
        dm = build(model.config["data"] | {"data_dir": str(args.data_dir)}, "data")
        dm.prepare_data()
        dm.setup("test")
        trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
        inproc = {"predict_proba": [], "trainer.test": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.predict_proba(x)
            inproc["predict_proba"].append(time.perf_counter() - start)
            start = time.perf_counter()
            trainer.test(module, datamodule=dm, verbose=False)
            inproc["trainer.test"].append(time.perf_counter() - start)

    print(f"MNIST-1D test split, {n} series, 1 torch thread, median of {args.repeats}")
    print("| measure | predict | eval | predict / eval speed |")
    print("|---|---|---|---|")
    for label, (a, b) in (("end to end (command)", (cli["predict.py"], cli["eval.py"])),
                          ("in process (prediction work)", (inproc["predict_proba"], inproc["trainer.test"]))):
        ta, tb = statistics.median(a), statistics.median(b)
        print(f"| {label} | {n / ta:,.0f} ex/s ({ta:.3f} s) | {n / tb:,.0f} ex/s ({tb:.3f} s) | {tb / ta:.2f}x |")


if __name__ == "__main__":
    main()
