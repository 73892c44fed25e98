"""Overhead of fusionlab against plain PyTorch, measured side by side in one process run.

Part 1, training throughput (examples/second). The config ``model=cnn_rnn fusion=gated`` is composed
with Hydra's compose API (``conf/train.yaml``, MNIST-1D from ``<repo>/data``) and trained two ways:

* fusionlab: the ``FusionClassifier`` built by ``fusionlab.training.run.build_module`` fitted by the
  Lightning ``Trainer`` that ``build_trainer`` makes from the config (no logger, no callbacks, no
  progress bar, no validation: ``+trainer.limit_val_batches=0``, and no checkpoint files:
  ``+trainer.enable_checkpointing=false``, since ``callbacks=none`` would otherwise bring back
  Lightning's default per-epoch checkpoint). Metrics, loss sums, the scheduler and every Lightning
  hook run as in a real run.
* plain: a second ``FusionNet`` built from the same config with the same seed, the same AdamW
  (``cfg.optimizer``) and per-epoch cosine scheduler, the same tensors, batch size and index
  batching (``dm.train_dataloader()``), and the bare loop ``forward -> F.cross_entropy ->
  zero_grad(set_to_none=True) -> backward -> step``; no metrics.

Both run ``--epochs`` epochs; the first is warm-up and is not timed: the clock runs from the start of
epoch 2 to the end of training (for Lightning: ``on_train_epoch_start`` of epoch index 1 to
``on_train_end``, so the per-epoch metric compute/reset and logging are included). Both use the
same ``torch.set_num_threads(--threads)`` and the config's ``deterministic`` flag (Lightning sets
it globally). ``--threads`` defaults to 1: with intra-op threads = cores, any other busy process
(a sweep, a test run) makes torch's OpenMP workers wait on each other and a 30 ms step takes
~2.7 s on a 2-core machine, which measures the scheduler, not fusionlab. The start-up commands get
``OMP_NUM_THREADS=--threads`` for the same reason.
The two paths alternate in pairs (order flipped every pair to cancel drift); the table gives the
median of each, the median of the per-pair ratios fusionlab/plain and the ratio of the medians.
After each pair the final weights of the two nets are compared: equal weights show that both paths
did the same arithmetic.

Part 2, start-up overhead: whole-process wall time of
``python train.py trainer.fast_dev_run=true`` (in the repo root, with ``hydra.run.dir`` and
``paths.log_dir`` pointed at a temp folder) against ``python -c "import torch, pytorch_lightning"``,
alternating, medians and ratio.

Usage: ``python scripts/bench_overhead.py [--pairs 5] [--epochs 3] [--startup-pairs 5] [--json PATH]``
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from bench_common import QUIET_RUN, REPO, command_line, compose_train_config
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import fusionlab.cli
from fusionlab.training import run

TARGETS = {"bs128": (">=", 0.95), "bs32": (">=", 0.90), "startup": ("<=", 1.5)}


# -- config ------------------------------------------------------------------------------------------
def compose_config(batch_size: int, epochs: int, out_dir: str) -> DictConfig:
    """``train.yaml`` with ``model=cnn_rnn fusion=gated`` and the benchmark's overrides."""
    return compose_train_config(["model=cnn_rnn", "fusion=gated", *QUIET_RUN, f"trainer.max_epochs={epochs}",
                                 f"data.batch_size={batch_size}"], out_dir)


# -- the two measured paths --------------------------------------------------------------------------
class EpochClock(pl.Callback):
    """Wall time from the start of epoch ``first`` to the end of training."""

    def __init__(self, first: int) -> None:
        self.first, self.start, self.end = first, None, None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.first:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = time.perf_counter()


def time_fusionlab(cfg: DictConfig, dm: Any, warmup: int) -> tuple[float, torch.nn.Module]:
    """Seconds of the timed epochs of ``trainer.fit``; the trained net."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = run.build_module(cfg, dm, OmegaConf.to_container(cfg, resolve=True))
    reg = cfg.regularizer
    trainer = run.build_trainer(cfg, gradient_clip_val=reg.gradient_clip_val,
                                gradient_clip_algorithm=reg.gradient_clip_algorithm)
    clock = EpochClock(warmup)
    trainer.callbacks.append(clock)
    gc.collect()
    trainer.fit(module, datamodule=dm)
    expected = cfg.trainer.max_epochs * len(dm.train_dataloader())
    if trainer.global_step != expected or clock.start is None or clock.end is None:
        raise RuntimeError(f"fusionlab fit ran {trainer.global_step} steps, expected {expected}")
    return clock.end - clock.start, module.net


def time_plain(cfg: DictConfig, dm: Any, warmup: int) -> tuple[float, torch.nn.Module]:
    """The same training as a bare PyTorch loop: seconds of the timed epochs; the trained net."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))
    net = run.build_model(cfg.model, dm)
    instantiate(cfg.init)(net)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    scheduler = instantiate(cfg.scheduler.scheduler)(optimizer)
    loader = dm.train_dataloader()
    gc.collect()
    start = None
    net.train()
    for epoch in range(cfg.trainer.max_epochs):
        if epoch == warmup:
            start = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    return time.perf_counter() - start, net


def max_weight_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def bench_throughput(batch_size: int, args: argparse.Namespace, out_dir: str) -> dict[str, Any]:
    cfg = compose_config(batch_size, args.epochs, out_dir)
    dm = run.build_datamodule(cfg.data)
    n_train = len(dm.splits["train"][1])
    examples = n_train * (args.epochs - 1)
    fl, plain, ratios, diffs = [], [], [], []
    for i in range(args.pairs):
        order = ("fusionlab", "plain") if i % 2 == 0 else ("plain", "fusionlab")
        result = {}
        for path in order:
            timer = time_fusionlab if path == "fusionlab" else time_plain
            result[path] = timer(cfg, dm, warmup=1)
        fl.append(examples / result["fusionlab"][0])
        plain.append(examples / result["plain"][0])
        ratios.append(fl[-1] / plain[-1])
        diffs.append(max_weight_diff(result["fusionlab"][1], result["plain"][1]))
        print(f"  bs{batch_size} pair {i + 1}/{args.pairs} ({'/'.join(order)}): "
              f"fusionlab {fl[-1]:6.0f} ex/s, plain {plain[-1]:6.0f} ex/s, ratio {ratios[-1]:.3f}, "
              f"max |dW| {diffs[-1]:.1e}", flush=True)
    return {
        "batch_size": batch_size, "train_examples": n_train, "steps_per_epoch": len(dm.train_dataloader()),
        "timed_examples": examples, "fusionlab_ex_per_s": fl, "plain_ex_per_s": plain, "ratios": ratios,
        "max_weight_diff": diffs,
        "fusionlab_median": statistics.median(fl), "reference_median": statistics.median(plain),
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(fl) / statistics.median(plain),
    }


# -- start-up ----------------------------------------------------------------------------------------
def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def bench_startup(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    ref_cmd = [sys.executable, "-c", "import torch, pytorch_lightning"]
    fl, ref, ratios = [], [], []
    for i in range(args.startup_pairs):
        fl_cmd = [sys.executable, "train.py", "trainer.fast_dev_run=true",
                  f"hydra.run.dir={tmp}/startup/{i}", f"paths.log_dir={tmp}/logs"]
        if i % 2 == 0:
            fl.append(wall(fl_cmd))
            ref.append(wall(ref_cmd))
        else:
            ref.append(wall(ref_cmd))
            fl.append(wall(fl_cmd))
        ratios.append(fl[-1] / ref[-1])
        print(f"  startup pair {i + 1}/{args.startup_pairs}: train.py fast_dev_run {fl[-1]:.2f} s, "
              f"import torch+lightning {ref[-1]:.2f} s, ratio {ratios[-1]:.2f}", flush=True)
    return {
        "command": shlex.join(fl_cmd[:3] + ["hydra.run.dir=<tmp>", "paths.log_dir=<tmp>"]),
        "reference_command": shlex.join(ref_cmd),
        "fusionlab_s": fl, "reference_s": ref, "ratios": ratios,
        "fusionlab_median": statistics.median(fl), "reference_median": statistics.median(ref),
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(fl) / statistics.median(ref),
    }


# -- report ------------------------------------------------------------------------------------------
def met(key: str, value: float) -> str:
    if key not in TARGETS:
        return "-"
    op, bound = TARGETS[key]
    ok = value >= bound if op == ">=" else value <= bound
    return f"{op} {bound:g} ({'met' if ok else 'MISSED'})"


def table(results: dict[str, Any]) -> str:
    lines = ["| measurement | fusionlab | reference | ratio (median) | ratio of medians | target |",
             "|---|---|---|---|---|---|"]
    for key, r in results.items():
        if key == "startup":
            name = "start-up: train.py fast_dev_run vs import torch+lightning (s)"
            fl, ref = f"{r['fusionlab_median']:.2f} s", f"{r['reference_median']:.2f} s"
        else:
            name = f"bs{r['batch_size']} train throughput, fusionlab vs plain loop (ex/s)"
            fl, ref = f"{r['fusionlab_median']:.0f}", f"{r['reference_median']:.0f}"
        lines.append(f"| {name} | {fl} | {ref} | {r['ratio_median']:.3f} | {r['ratio_of_medians']:.3f} "
                     f"| {met(key, r['ratio_median'])} |")
    return "\n".join(lines)


def quiet() -> None:
    if hasattr(run, "quiet_lightning"):
        run.quiet_lightning()
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*GPU available but not used.*")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="fusionlab/plain pairs per batch size")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement (the first is warm-up)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--startup-pairs", type=int, default=5, help="start-up pairs (0: skip)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for both paths (0: torch's default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    if args.epochs < 2 or args.pairs < 1:
        parser.error("--epochs must be >= 2 (one warm-up epoch) and --pairs >= 1")

    quiet()
    fusionlab.cli.setup()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # children
    begin = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fl-bench-") as tmp:
        for bs in args.batch_sizes:
            results[f"bs{bs}"] = bench_throughput(bs, args, tmp)
        if args.startup_pairs > 0:
            results["startup"] = bench_startup(args, tmp)
    total = time.perf_counter() - begin

    command = command_line()
    env = {"python": platform.python_version(), "torch": torch.__version__, "lightning": pl.__version__,
           "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "total_s": round(total, 1)}
    print()
    print(table(results))
    print()
    print(f"command: `{command}` | python {env['python']}, torch {env['torch']}, lightning "
          f"{env['lightning']} | os.cpu_count()={env['cpu_count']}, torch threads {env['threads']} "
          f"| {args.pairs} pairs x {args.epochs} epochs (1 warm-up), {args.startup_pairs} start-up pairs "
          f"| total {total:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": command, "env": env, "args": {k: str(v) for k, v in vars(args).items()},
                   "targets": {k: f"{op} {b}" for k, (op, b) in TARGETS.items()}, "results": results}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
