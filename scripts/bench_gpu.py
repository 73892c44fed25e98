"""GPU training throughput of the presets: eager, ``compile=true`` and ``bf16-mixed``, and a sync check.

For each preset (``--presets``, default ``cnn transformer cnn_rnn lstm_fcn``), batch size
(``--batch-sizes``, default 128 1024) and mode (``--modes``, default ``eager compile bf16
compile_bf16``) the config ``model=<preset> trainer=gpu`` is composed from ``conf/train.yaml``
(MNIST-1D from ``<repo>/data``, the preset's default fusion) and fitted by the Lightning ``Trainer``
that ``fusionlab.training.run.build_trainer`` makes (no logger, callbacks, validation or checkpoint
files):

* ``eager``: ``trainer.precision=32-true``, ``compile=false``;
* ``compile``: ``trainer.precision=32-true``, ``compile=true`` (recurrent cells stay eager,
  :mod:`fusionlab.training.compiling`);
* ``bf16``: ``trainer.precision=bf16-mixed``, ``compile=false``;
* ``compile_bf16``: both.

``--epochs`` epochs are run; the first is warm-up (compilation, cuDNN autotuning) and not timed.
The clock runs from ``torch.cuda.synchronize()`` at the start of epoch 2 to ``synchronize()`` at the
end of training; samples/s = examples in the timed epochs / seconds. ``--repeats`` fits per point,
the median is reported.

Sync check: one training epoch per preset (batch ``--batch-sizes[0]``, eager and ``compile``) with
``torch.cuda.set_sync_debug_mode("error")`` switched on at the start of the epoch and off at its end
(the epoch-end metric computation reads values back by design): any host sync inside a training step
(``.item()``, ``.cpu()``, ``nonzero``, a per-step host tensor) raises, and the row says where.

Without CUDA the script prints one line saying so and exits 0 (so it can sit in any CI).
``--allow-cpu`` runs the same code on the CPU with ``--steps`` steps (a dry run of the script, not
a GPU number).

Usage: ``python scripts/bench_gpu.py [--epochs 4] [--repeats 3] [--json PATH] [--markdown PATH]``
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench_common import QUIET_RUN, command_line, compose_train_config, write_results  # noqa: E402

MODES: dict[str, tuple[str, bool]] = {  # mode -> (trainer.precision, compile)
    "eager": ("32-true", False),
    "compile": ("32-true", True),
    "bf16": ("bf16-mixed", False),
    "compile_bf16": ("bf16-mixed", True),
}


def compose_config(preset: str, batch_size: int, mode: str, epochs: int, steps: int, out_dir: str,
                   accelerator: str) -> Any:
    """``train.yaml`` with ``model=<preset> trainer=gpu`` and the mode's precision and compile flag."""
    precision, compiled = MODES[mode]
    return compose_train_config([
        f"model={preset}", "trainer=gpu", f"trainer.accelerator={accelerator}",
        f"trainer.precision={precision}", f"compile={str(compiled).lower()}", *QUIET_RUN,
        f"trainer.max_epochs={epochs}", f"data.batch_size={batch_size}",
        *([f"+trainer.limit_train_batches={steps}"] if steps else []),
    ], out_dir)


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def make_callbacks(warmup: int, sync_check: bool) -> tuple[Any, Any]:
    """A clock over the epochs after ``warmup`` and, with ``sync_check``, the sync-debug switch."""
    import pytorch_lightning as pl
    import torch

    class EpochClock(pl.Callback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.end: float | None = None

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.current_epoch == warmup:
                synchronize()
                self.start = time.perf_counter()

        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            synchronize()
            self.end = time.perf_counter()

    class SyncDebug(pl.Callback):
        """``set_sync_debug_mode("error")`` from the first to the last training step of each epoch."""

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            torch.cuda.set_sync_debug_mode("error")

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            torch.cuda.set_sync_debug_mode("default")

        def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, err: BaseException) -> None:
            torch.cuda.set_sync_debug_mode("default")

    return EpochClock(), (SyncDebug() if sync_check else None)


def fit(cfg: Any, dm: Any, warmup: int, sync_check: bool = False) -> tuple[float | None, int]:
    """Fit once: seconds of the timed epochs (None without a timed epoch) and the steps run."""
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from fusionlab.training import run

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = run.build_module(cfg, dm, OmegaConf.to_container(cfg, resolve=True))
    reg = cfg.regularizer
    trainer = run.build_trainer(cfg, gradient_clip_val=reg.gradient_clip_val,
                                gradient_clip_algorithm=reg.gradient_clip_algorithm)
    clock, sync = make_callbacks(warmup, sync_check)
    trainer.callbacks.extend([c for c in (clock, sync) if c is not None])
    gc.collect()
    trainer.fit(module, datamodule=dm)
    seconds = None if clock.start is None or clock.end is None else clock.end - clock.start
    return seconds, trainer.global_step


def steps_per_epoch(cfg: Any, dm: Any) -> int:
    return min(len(dm.train_dataloader()), int(cfg.trainer.get("limit_train_batches") or 10**9))


def bench_point(preset: str, batch_size: int, mode: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    from fusionlab.training import run

    cfg = compose_config(preset, batch_size, mode, args.epochs, args.steps, tmp, args.accelerator)
    dm = run.build_datamodule(cfg.data)
    n_train = len(dm.splits["train"][1])
    per_epoch = steps_per_epoch(cfg, dm)
    examples = min(n_train, per_epoch * batch_size) * (args.epochs - 1)
    rates = []
    for _ in range(args.repeats):
        seconds, _steps = fit(cfg, dm, warmup=1)
        rates.append(examples / seconds if seconds else float("nan"))
    row = {"preset": preset, "batch_size": batch_size, "mode": mode, "precision": MODES[mode][0],
           "compile": MODES[mode][1], "steps_per_epoch": per_epoch, "timed_examples": examples,
           "samples_per_s": rates, "median": statistics.median(rates)}
    print(f"  {preset} bs{batch_size} {mode}: {row['median']:.0f} samples/s "
          f"({', '.join(f'{r:.0f}' for r in rates)})", flush=True)
    return row


def sync_check(preset: str, batch_size: int, mode: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """One epoch under ``set_sync_debug_mode("error")``: ``ok`` or the first line of the error."""
    from fusionlab.training import run

    cfg = compose_config(preset, batch_size, mode, 1, args.steps, tmp, args.accelerator)
    dm = run.build_datamodule(cfg.data)
    try:
        _, steps = fit(cfg, dm, warmup=1, sync_check=True)
        result = f"ok ({steps} steps, no host sync)"
    except RuntimeError as err:
        result = "FAILED: " + (str(err).strip().splitlines() or ["RuntimeError"])[0]
    print(f"  sync check {preset} bs{batch_size} {mode}: {result}", flush=True)
    return {"preset": preset, "batch_size": batch_size, "mode": mode, "result": result}


def tables(rows: list[dict[str, Any]], checks: list[dict[str, Any]], modes: list[str]) -> str:
    head = "| preset | batch | " + " | ".join(f"{m} (samples/s)" for m in modes) + " | best / eager |"
    lines = [head, "|" + "---|" * (3 + len(modes))]
    keys = list(dict.fromkeys((r["preset"], r["batch_size"]) for r in rows))
    for preset, bs in keys:
        by_mode = {r["mode"]: r["median"] for r in rows if r["preset"] == preset and r["batch_size"] == bs}
        cells = [f"{by_mode[m]:.0f}" if m in by_mode else "-" for m in modes]
        eager = by_mode.get("eager")
        best = max(by_mode.values())
        ratio = f"{best / eager:.2f}" if eager else "-"
        lines.append(f"| {preset} | {bs} | " + " | ".join(cells) + f" | {ratio} |")
    if checks:
        lines += ["", "| sync check (one epoch, set_sync_debug_mode('error')) | batch | mode | result |",
                  "|---|---|---|---|"]
        lines += [f"| {c['preset']} | {c['batch_size']} | {c['mode']} | {c['result']} |" for c in checks]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cnn", "transformer", "cnn_rnn", "lstm_fcn"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit (the first is warm-up)")
    parser.add_argument("--steps", type=int, default=0, help="steps per epoch (0: whole epochs)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per point (median)")
    parser.add_argument("--no-sync-check", action="store_true", help="skip the set_sync_debug_mode epoch")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="without CUDA, run the same code on the CPU (a dry run of the script)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables and command here")
    args = parser.parse_args()
    if args.epochs < 2 or args.repeats < 1:
        parser.error("--epochs must be >= 2 (one warm-up epoch) and --repeats >= 1")

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("bench_gpu: no CUDA device (torch.cuda.is_available() is False); nothing measured")
        return 0
    args.accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    tmp_root = tempfile.mkdtemp(prefix="fl-bench-gpu-")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(tmp_root) / "inductor"))

    import pytorch_lightning as pl

    import fusionlab.cli
    from fusionlab.training import run

    run.quiet_lightning()
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    fusionlab.cli.setup()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    begin = time.perf_counter()
    rows = [bench_point(p, bs, m, args, tmp_root)
            for p in args.presets for bs in args.batch_sizes for m in args.modes]
    checks = []
    if not args.no_sync_check and torch.cuda.is_available():
        checks = [sync_check(p, args.batch_sizes[0], m, args, tmp_root)
                  for p in args.presets for m in ("eager", "compile")]
    total = time.perf_counter() - begin
    command = command_line()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU (dry run, {os.cpu_count()} cores)"
    footer = (f"command: `{command}` | {device} | python {platform.python_version()}, torch {torch.__version__}, "
              f"lightning {pl.__version__} | {args.repeats} fits x {args.epochs} epochs (1 warm-up), median "
              f"| total {total:.0f} s")
    text = tables(rows, checks, args.modes) + "\n\n" + footer
    write_results(text, args.markdown, args.json, {"command": command, "device": device, "torch": torch.__version__,
                                                   "results": rows, "sync_checks": checks})
    return 1 if any(c["result"].startswith("FAILED") for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
