"""``compile=true`` against the eager hand-written PyTorch loop: steady-state training throughput and compile time.

For each preset (``--presets``, default ``cnn transformer cnn_rnn lstm_fcn``) and batch size
(``--batch-sizes``, default 128 32) the config ``model=<preset> compile=true`` is composed from
``conf/train.yaml`` (MNIST-1D from ``<repo>/data``, the preset's default fusion) and trained two ways,
as ``scripts/bench_overhead.py`` does:

* fusionlab: the ``FusionClassifier`` from ``fusionlab.training.run.build_module`` fitted by the
  Lightning ``Trainer`` from ``build_trainer`` (no logger, callbacks, validation or checkpoint files);
  ``compile=true`` compiles its network when fitting starts (:mod:`fusionlab.training.compiling`).
  With ``compile=true`` the optimizer (AdamW) takes its fused step (``fused=True``; the table's
  ``optimizer`` column).
* plain: a second network built from the same config with the same weights, the same AdamW (its
  default, for-each step) and
  per-epoch cosine schedule, the same batches, and the bare eager loop ``forward -> F.cross_entropy ->
  zero_grad -> backward -> step``.

Each preset and batch size starts from a reset Dynamo (``torch._dynamo.reset()``), as a new run
does: its graphs are compiled for its own batch size, not reused from the previous configuration
(which would also mark the batch dimension dynamic). One module and one plain network are built
per preset and batch size; every repeat reloads the
same initial weights into both (in place, so the compiled graphs are reused) and trains
``--epochs`` epochs (of ``--steps`` steps each when given); the first is warm-up (it holds the
compilation, and the recompile for a last, smaller batch) and is not timed. The two paths
alternate in pairs (order flipped every pair); the table gives the median examples/s of each and
the median of the per-pair ratios
compiled fusionlab / eager plain. The same ratio of this process's CPU time (``time.process_time``,
plain / fusionlab) is given too: on a shared machine another process's load stretches wall time
(waiting for a core) but hardly the CPU time a step needs; one torch thread, no loader workers. The
target is judged on wall time. After each pair the final weights are compared (max |dW|):
compiled kernels sum in another order, so they agree closely rather than bit for bit.

Compile time: the first training step of the first fit minus the median of the next five
(``CompileReport``), with Inductor's caches in a fresh folder (``--cache-dir``, default a new temp
folder: a cold cache), so the first batch size of a preset pays the full compile.

``--plain-fused`` gives the plain loop's optimizer the fused step as well: the ratio then leaves out
what the fused optimizer step alone brings.

Usage: ``nice -n 10 python scripts/bench_compile.py [--pairs 3] [--epochs 2] [--steps N] [--plain-fused] [--threads 1]
[--json PATH]``
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench_common import QUIET_RUN, compose_train_config  # noqa: E402

TARGETS = {"cnn": 1.3, "transformer": 1.3}  # others (a recurrent branch): never slower than eager, >= 1.0


def compose_config(preset: str, batch_size: int, epochs: int, out_dir: str, steps: int) -> Any:
    return compose_train_config([
        f"model={preset}", "compile=true", *QUIET_RUN, f"trainer.max_epochs={epochs}", f"data.batch_size={batch_size}",
        *([f"+trainer.limit_train_batches={steps}"] if steps else []),
    ], out_dir)


def clocks() -> tuple[float, float]:
    """(wall time, this process's CPU time) in seconds."""
    return time.perf_counter(), time.process_time()


class EpochClock:
    """A Lightning callback: wall and CPU time from the start of epoch ``first`` to the end of training."""

    def __init__(self, first: int) -> None:
        self.first, self.start, self.end = first, None, None

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch == self.first:
            self.start = clocks()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.end = clocks()


def time_fusionlab(cfg: Any, dm: Any, module: Any, init: dict, warmup: int) -> tuple[float, float]:
    import pytorch_lightning as pl

    from fusionlab.training import run

    clock = type("Clock", (EpochClock, pl.Callback), {})(warmup)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module.net.load_state_dict(init)
    reg = cfg.regularizer
    trainer = run.build_trainer(cfg, gradient_clip_val=reg.gradient_clip_val,
                                gradient_clip_algorithm=reg.gradient_clip_algorithm)
    trainer.callbacks.append(clock)
    gc.collect()
    trainer.fit(module, datamodule=dm)
    expected = cfg.trainer.max_epochs * steps_per_epoch(cfg, dm)
    if trainer.global_step != expected or clock.start is None:
        raise RuntimeError(f"fusionlab fit ran {trainer.global_step} steps, expected {expected}")
    return clock.end[0] - clock.start[0], clock.end[1] - clock.start[1]


def time_plain(cfg: Any, dm: Any, net: Any, init: dict, warmup: int, fused: bool = False) -> tuple[float, float]:
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))
    net.load_state_dict(init)
    optimizer = instantiate(cfg.optimizer)(net.parameters(), **({"fused": True} if fused else {}))
    scheduler = instantiate(cfg.scheduler.scheduler)(optimizer)
    loader = dm.train_dataloader()
    gc.collect()
    start = None
    net.train()
    for epoch in range(cfg.trainer.max_epochs):
        if epoch == warmup:
            start = clocks()
        for batch in itertools.islice(loader, steps_per_epoch(cfg, dm)):
            x, y = batch[0], batch[1]
            loss = F.cross_entropy(net(x, batch[2] if len(batch) > 2 else None), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    end = clocks()
    return end[0] - start[0], end[1] - start[1]


def steps_per_epoch(cfg: Any, dm: Any) -> int:
    return min(len(dm.train_dataloader()), int(cfg.trainer.get("limit_train_batches") or 10**9))


def max_weight_diff(a: Any, b: Any) -> float:
    import torch

    with torch.no_grad():
        return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def bench(preset: str, batch_size: int, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    import pytorch_lightning as pl
    import torch
    from omegaconf import OmegaConf

    from fusionlab.training import run

    torch._dynamo.reset()  # a fresh compile for this configuration, as in a new run
    cfg = compose_config(preset, batch_size, args.epochs, tmp, args.steps)
    dm = run.build_datamodule(cfg.data)

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = run.build_module(cfg, dm, OmegaConf.to_container(cfg, resolve=True))
    init = copy.deepcopy(module.net.state_dict())
    net = run.build_model(cfg.model, dm)
    n_train = len(dm.splits["train"][1])
    per_epoch = steps_per_epoch(cfg, dm)
    examples = min(n_train, per_epoch * batch_size) * (args.epochs - 1)
    fl, plain, ratios, cpu_ratios, diffs = [], [], [], [], []
    compile_s = first_step_s = None
    for i in range(args.pairs):
        order = ("fusionlab", "plain") if i % 2 == 0 else ("plain", "fusionlab")
        secs = {}
        for path in order:
            if path == "fusionlab":
                secs[path] = time_fusionlab(cfg, dm, module, init, warmup=1)
                report = module._compile_report
                if compile_s is None:
                    compile_s, first_step_s = report.compile_s(), report.times[0]
            else:
                secs[path] = time_plain(cfg, dm, net, init, warmup=1, fused=args.plain_fused)
        fl.append(examples / secs["fusionlab"][0])
        plain.append(examples / secs["plain"][0])
        ratios.append(fl[-1] / plain[-1])
        cpu_ratios.append(secs["plain"][1] / secs["fusionlab"][1])
        diffs.append(max_weight_diff(module.net, net))
        print(f"  {preset} bs{batch_size} pair {i + 1}/{args.pairs} ({'/'.join(order)}): compiled fusionlab "
              f"{fl[-1]:6.0f} ex/s, eager plain {plain[-1]:6.0f} ex/s, ratio {ratios[-1]:.3f} "
              f"(CPU time {cpu_ratios[-1]:.3f}), "
              f"max |dW| {diffs[-1]:.1e}", flush=True)
    plan = module.compile_plan
    return {
        "preset": preset, "batch_size": batch_size, "train_examples": n_train,
        "steps_per_epoch": per_epoch, "timed_examples": examples,
        "compiled": plan.compiled, "eager": plan.eager, "optimizer": plan.optimizer, "plain_fused": args.plain_fused,
        "compile_s": compile_s, "first_step_s": first_step_s,
        "fusionlab_ex_per_s": fl, "plain_ex_per_s": plain, "ratios": ratios, "max_weight_diff": diffs,
        "fusionlab_median": statistics.median(fl), "plain_median": statistics.median(plain),
        "ratio_median": statistics.median(ratios), "cpu_ratios": cpu_ratios,
        "cpu_ratio_median": statistics.median(cpu_ratios),
    }


def verdict(r: dict[str, Any]) -> str:
    bound = TARGETS.get(r["preset"], 1.0)
    return f">= {bound:g} ({'met' if r['ratio_median'] >= bound else 'MISSED'})"


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| preset | batch | compiled | eager (recurrent) | optimizer | compile time (s) "
             "| compiled fusionlab (ex/s) | eager plain loop (ex/s) | ratio (median of pairs) | CPU-time ratio "
             "| max abs dW | target |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        eager = ", ".join(r["eager"]) or "-"
        cs = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        lines.append(f"| {r['preset']} | {r['batch_size']} | {', '.join(r['compiled'])} | {eager} | {r['optimizer']} "
                     f"| {cs} "
                     f"| {r['fusionlab_median']:.0f} | {r['plain_median']:.0f} | {r['ratio_median']:.3f} "
                     f"| {r['cpu_ratio_median']:.3f} "
                     f"| {max(r['max_weight_diff']):.1e} | {verdict(r)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cnn", "transformer", "cnn_rnn", "lstm_fcn"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--pairs", type=int, default=3, help="compiled/eager pairs per preset and batch size")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measurement (the first is warm-up)")
    parser.add_argument("--steps", type=int, default=0,
                        help="training steps per epoch (0: whole epochs); the same for both paths")
    parser.add_argument("--plain-fused", action="store_true",
                        help="the plain eager loop's optimizer takes the fused step too (a stricter baseline)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both paths")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="TORCHINDUCTOR_CACHE_DIR (default: a new temp folder, i.e. a cold cache)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    if args.epochs < 2 or args.pairs < 1:
        parser.error("--epochs must be >= 2 (one warm-up epoch) and --pairs >= 1")
    tmp_root = tempfile.mkdtemp(prefix="fl-bench-compile-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(args.cache_dir or Path(tmp_root) / "inductor")  # before torch
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    import pytorch_lightning as pl
    import torch

    import fusionlab.cli
    from fusionlab.training import run

    torch.set_num_threads(args.threads)
    run.quiet_lightning()
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    fusionlab.cli.setup()
    begin = time.perf_counter()
    results = [bench(p, bs, args, tmp_root) for p in args.presets for bs in args.batch_sizes]
    total = time.perf_counter() - begin
    command = shlex.join(["python", *sys.argv])
    per_epoch = f" of {args.steps} steps" if args.steps else ""
    print()
    print(table(results))
    print()
    print(f"command: `{command}` | python {platform.python_version()}, torch {torch.__version__}, lightning "
          f"{pl.__version__} | os.cpu_count()={os.cpu_count()}, torch threads {torch.get_num_threads()} "
          f"| {args.pairs} pairs x {args.epochs} epochs (1 warm-up){per_epoch} | total {total:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, "torch": torch.__version__, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
