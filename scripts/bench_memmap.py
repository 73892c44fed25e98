"""Data larger than memory: one training epoch from a memory-mapped ``data=npy`` folder, peak RSS and
throughput, against the in-memory ``data=npz`` path on a dataset that fits.

Data: the official MNIST-1D series (4000 train / 1000 test, real data from the ``mnist1d`` package,
as ``data=mnist1d`` makes them) linearly resampled to ``--length`` steps, the training series written
``--copies`` times over, each copy rolled by a different offset in time (a real augmentation, so
the copies differ), in chunks straight into ``x.npy`` (``np.lib.format.open_memmap``: the dataset is
never in memory here either). The test series are written once as ``x_test.npy``.

Runs, each in a fresh subprocess that reports its own peak resident set (``VmHWM`` of
``/proc/self/status`` at the end: every page the process touched, torch's allocations and the mapped
file's resident pages included; not ``ru_maxrss``, which Linux carries over from the forking parent):

* ``large``: ``data=npy`` on the whole folder, ``--copies`` copies: the file is several times the
  bound ``--bound-mb`` on the peak RSS;
* ``small npy`` and ``small npz``: the first ``--small-copies`` copies, once memory-mapped
  (``data=npy``) and once loaded into memory (``data=npz``, the same arrays in one ``.npz``).

Each run composes ``conf/train.yaml`` with ``model=mlp`` (a cheap model, so the data path shows),
``trainer.max_epochs=1``, no validation, no test, no logger or checkpoints, and reports the
datamodule set-up time (loading, or the streaming statistics pass), the epoch time and training
examples/s (epoch only). The files are fresh, so they are in the page cache: a cold disk reads slower.

Usage: ``nice -n 10 python scripts/bench_memmap.py [--copies 200] [--length 1000] [--bound-mb 1024]
[--markdown docs/results/memmap.md]``
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import REPO, write_results  # noqa: E402


def mnist1d_arrays() -> dict[str, np.ndarray]:
    files = sorted(glob.glob(str(REPO / "data" / "mnist1d" / "*.npz")))
    if not files:
        from fusionlab.data.mnist1d import MNIST1DDataModule

        return MNIST1DDataModule(data_dir=str(REPO / "data")).load_arrays()
    with np.load(files[0]) as f:
        return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def resample(x: np.ndarray, length: int) -> np.ndarray:
    grid = np.linspace(0, x.shape[1] - 1, length)
    return np.stack([np.interp(grid, np.arange(x.shape[1]), row) for row in x]).astype(np.float32)


def write_folder(folder: Path, copies: int, length: int, npz: bool) -> int:
    """``x.npy``/``y.npy`` (``copies`` rolled copies of the resampled training series), ``x_test.npy``,
    ``y_test.npy``; also ``data.npz`` with the same arrays when ``npz``. Returns the bytes of ``x.npy``."""
    folder.mkdir(parents=True, exist_ok=True)
    a = mnist1d_arrays()
    train, test = resample(a["x_train"], length), resample(a["x_test"], length)
    n = len(train)
    x = np.lib.format.open_memmap(folder / "x.npy", mode="w+", dtype=np.float32, shape=(copies * n, length))
    rng = np.random.default_rng(0)
    for c in range(copies):
        x[c * n:(c + 1) * n] = np.roll(train, int(rng.integers(0, length)) if c else 0, axis=1)
    x.flush()
    del x
    np.save(folder / "y.npy", np.tile(a["y_train"], copies))
    np.save(folder / "x_test.npy", test)
    np.save(folder / "y_test.npy", a["y_test"])
    if npz:
        np.savez(folder / "data.npz", x=np.load(folder / "x.npy"), y=np.load(folder / "y.npy"), x_test=test,
                 y_test=a["y_test"])
    return (folder / "x.npy").stat().st_size


def child(data: list[str], batch_size: int, threads: int) -> dict[str, Any]:
    """In the subprocess: build the datamodule (timed) and fit one epoch (timed)."""
    import logging
    import warnings

    import pytorch_lightning as pl
    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import fusionlab.cli
    from fusionlab.training import run

    torch.set_num_threads(threads)
    run.quiet_lightning()
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    fusionlab.cli.setup()
    out = tempfile.mkdtemp(prefix="fl-bench-memmap-run-")
    overrides = [*data, "model=mlp", f"data.batch_size={batch_size}", "trainer.max_epochs=1", "logger=none",
                 "callbacks=none", "trainer.enable_progress_bar=false", "+trainer.limit_val_batches=0",
                 "+trainer.enable_checkpointing=false", f"paths.output_dir={out}"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    start = time.perf_counter()
    dm = run.build_datamodule(cfg.data)
    setup_s = time.perf_counter() - start
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = run.build_module(cfg, dm, OmegaConf.to_container(cfg, resolve=True))
    trainer = run.build_trainer(cfg)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    epoch_s = time.perf_counter() - start
    n = len(dm.splits["train"][1])
    shutil.rmtree(out, ignore_errors=True)
    return {"setup_s": setup_s, "epoch_s": epoch_s, "train_examples": n, "steps": trainer.global_step,
            "examples_per_s": n / epoch_s, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``, MiB): since its ``exec``, unlike ``ru_maxrss``, which
    Linux carries over from the forking parent (here the parent that wrote the files)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(name: str, data: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`child` in a fresh process: its result, with its own peak RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(data), "--batch-size",
                                 str(args.batch_size), "--threads", str(args.threads)], stdout=out, stderr=err, env=env)
        proc.wait()
        out.seek(0)
        err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            raise SystemExit(f"{name} run failed ({proc.returncode}): {err.read().strip().splitlines()[-1:]}")
    result = {"run": name, **json.loads(lines[-1])}
    print(f"  {name}: {result['examples_per_s']:.0f} examples/s, epoch {result['epoch_s']:.1f} s, set-up "
          f"{result['setup_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200, help="copies of the 4000 training series (large run)")
    parser.add_argument("--small-copies", type=int, default=10, help="copies for the in-memory comparison")
    parser.add_argument("--length", type=int, default=1000, help="series length after resampling")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--bound-mb", type=float, default=1024, help="the peak RSS the large run must stay under")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where the datasets go (default: a temp folder)")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.batch_size, args.threads)))
        return
    command = shlex.join(["python", *sys.argv])
    root = args.dir or Path(tempfile.mkdtemp(prefix="fl-bench-memmap-"))
    try:
        start = time.perf_counter()
        large_bytes = write_folder(root / "large", args.copies, args.length, npz=False)
        small_bytes = write_folder(root / "small", args.small_copies, args.length, npz=True)
        print(f"  wrote {large_bytes / 2**20:.0f} MB (large) and {small_bytes / 2**20:.0f} MB (small) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        rows = [
            {**measure("small, data=npz (in memory)", ["data=npz", f"data.path={root / 'small' / 'data.npz'}"], args),
             "x_mb": small_bytes / 2**20},
            {**measure("small, data=npy (memory-mapped)", ["data=npy", f"data.path={root / 'small'}"], args),
             "x_mb": small_bytes / 2**20},
            {**measure("large, data=npy (memory-mapped)", ["data=npy", f"data.path={root / 'large'}"], args),
             "x_mb": large_bytes / 2**20},
        ]
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    large = rows[-1]
    lines = ["| run | x.npy (MB) | training examples | set-up (s) | epoch (s) | examples/s | peak RSS (MB) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['x_mb']:.0f} | {r['train_examples']:,} | {r['setup_s']:.1f} | {r['epoch_s']:.1f} "
              f"| {r['examples_per_s']:.0f} | {r['peak_rss_mb']:.0f} |" for r in rows]
    verdict = "met" if large["peak_rss_mb"] <= args.bound_mb else "MISSED"
    text = "\n".join(lines) + (
        f"\n\nbound: peak RSS of the large run <= {args.bound_mb:.0f} MB with x.npy {large['x_mb']:.0f} MB "
        f"({large['x_mb'] / args.bound_mb:.1f}x the bound): {verdict} ({large['peak_rss_mb']:.0f} MB). "
        f"memory-mapped / in-memory throughput on the small set: "
        f"{rows[1]['examples_per_s'] / rows[0]['examples_per_s']:.2f}\n\n"
        f"command: `{command}` | model=mlp, batch {args.batch_size}, series length {args.length}, torch threads "
        f"{args.threads}, os.cpu_count()={os.cpu_count()} | python {platform.python_version()}")
    write_results(text, args.markdown, args.json, {"command": command, "results": rows})


if __name__ == "__main__":
    main()
