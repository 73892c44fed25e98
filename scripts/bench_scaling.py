"""Time and peak memory of one training step as the series grow longer and the branches more numerous.

Two sweeps, every point in a fresh subprocess (so each peak is that point's own):

* length: each single-branch preset (``--branches``, default ``cnn rnn transformer inception resnet
  mlp``: ``model=<name>`` composed from ``conf/train.yaml`` with its YAML defaults) and the
  ``cross_attention`` fusion (``model=cnn_rnn fusion=cross_attention``; also with
  ``record_weights=True``, the unfused path that returns attention weights every step) at series
  lengths ``--lengths`` (default 100 300 1000 3000);
* branches: ``fusion=cross_attention`` over 2..6 branches (``--counts``) at length ``--count-length``
  (default 300), the branches taken in the order cnn, rnn, transformer, inception, resnet, cnn
  (added with ``+branch@model.branches.<name>=<kind>``).

Input: real MNIST-1D training series (the first ``--batch-size`` of the official split, standardised),
linearly resampled to the length of the point (a step's cost depends on the shape, not on the
values; MNIST-1D is the data every preset is tuned on). One step is ``forward -> cross_entropy ->
zero_grad -> backward -> AdamW.step`` with the config's optimizer; one warm-up step (it allocates
the gradients and the optimizer state), then ``--repeats`` timed steps; the median is reported.

Memory: ``ru_maxrss`` (the process's peak resident set, which sees every allocation torch makes,
unlike tracemalloc) at the end, and the step's own peak = ``ru_maxrss`` minus the resident set just
before the first step (network, optimizer and batch built, torch imported). The parent holds only
numpy (tens of MB), so the ``ru_maxrss`` a child inherits from it at fork is far below its own. A
step may add at most ``MAX_STEP_GB`` of address space (``RLIMIT_AS``): the machine is shared, so a
point beyond it is reported as failed (out of memory) instead of taking everyone's memory.

Usage: ``nice -n 10 python scripts/bench_scaling.py [--batch-size 16] [--repeats 3] [--threads 1]
[--markdown docs/results/scaling.md]``
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import REPO, command_line, write_results  # noqa: E402

MAX_STEP_GB = 6  # address space a step may add (RLIMIT_AS): beyond it the point fails as out of memory
COUNT_KINDS = ["cnn", "rnn", "transformer", "inception", "resnet", "cnn"]


def rss_mb() -> float:
    """The resident set now, MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def vm_mb() -> float:
    """The virtual size now, MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def overrides_for(point: dict[str, Any]) -> list[str]:
    if point["kind"] == "branch":
        return [f"model={point['name']}"]
    if point["kind"] == "cross_attention":
        return ["model=cnn_rnn", "fusion=cross_attention"]
    kinds = COUNT_KINDS[: point["count"]]  # branches sweep: cnn and rnn from the preset, then added ones
    return ["model=cnn_rnn", "fusion=cross_attention",
            *[f"+branch@model.branches.{kind}{i}={kind}" for i, kind in enumerate(kinds[2:], start=2)]]


def run_point(point: dict[str, Any], batch_file: str, repeats: int, threads: int) -> dict[str, Any]:
    """In the child: build the network for the point, time ``repeats`` training steps, read the peak RSS."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import fusionlab.cli
    from fusionlab.data.spec import InputSpec
    from fusionlab.training import run

    torch.set_num_threads(threads)
    fusionlab.cli.setup()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides_for(point))
    torch.manual_seed(0)
    x40, y = (torch.from_numpy(a) for a in np.load(batch_file).values())
    x = F.interpolate(x40.unsqueeze(1), size=point["length"], mode="linear", align_corners=True)
    net = run.build_net(cfg.model, InputSpec("series", (1, point["length"])), 10)
    if point.get("record_weights"):
        net.fusion.record_weights = True
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    net.train()

    def step() -> None:
        loss = F.cross_entropy(net(x, None), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    before = rss_mb()
    limit = int((vm_mb() + MAX_STEP_GB * 1024) * 2**20)  # a point may not take the shared machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        step()
        if i:  # the first step is warm-up
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    params = sum(p.numel() for p in net.parameters())
    return {**point, "step_s": statistics.median(times), "times": times, "peak_rss_mb": peak,
            "before_step_mb": before, "step_peak_mb": peak - before, "params": params,
            "branches": list(getattr(net, "branches", {}))}


def spawn(point: dict[str, Any], args: argparse.Namespace, batch_file: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--point", json.dumps(point), "--batch-file", batch_file,
           "--repeats", str(args.repeats), "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**point, "error": f"over {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**point, "error": tail[:160]}
    return json.loads(lines[-1])


def label(r: dict[str, Any]) -> str:
    if r["kind"] == "branch":
        return f"model={r['name']}"
    if r["kind"] == "cross_attention":
        return "cross_attention (cnn+rnn)" + (", record_weights=True" if r.get("record_weights") else "")
    return f"cross_attention, {r['count']} branches"


def cell(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    return f"{r['step_s'] * 1000:.0f} ms / {r['step_peak_mb']:.0f} MB"


def length_table(rows: list[dict[str, Any]], lengths: list[int]) -> str:
    lines = ["| one training step: median time / step's peak RSS above the built network | "
             + " | ".join(f"L={n}" for n in lengths) + " | time L=max / L=min |",
             "|" + "---|" * (len(lengths) + 2)]
    for name in dict.fromkeys(label(r) for r in rows):
        row = {r["length"]: r for r in rows if label(r) == name}
        first, last = row.get(lengths[0]), row.get(lengths[-1])
        growth = (f"{last['step_s'] / first['step_s']:.1f}x"
                  if first and last and "error" not in first and "error" not in last else "-")
        lines.append(f"| {name} | " + " | ".join(cell(row[n]) if n in row else "-" for n in lengths)
                     + f" | {growth} |")
    return "\n".join(lines)


def count_table(rows: list[dict[str, Any]], length: int) -> str:
    lines = [f"| cross_attention at L={length} | branches | parameters | step time (ms) | step's peak RSS (MB) "
             "| peak RSS of the process (MB) |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['count']} branches | - | - | failed: {r['error']} | - | - |")
            continue
        lines.append(f"| {r['count']} branches | {', '.join(r['branches'])} | {r['params']:,} "
                     f"| {r['step_s'] * 1000:.0f} | {r['step_peak_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def write_batch(batch_size: int, path: str) -> None:
    """The first ``batch_size`` MNIST-1D training series, standardised with the training mean/std."""
    import numpy as np

    files = sorted(glob.glob(str(REPO / "data" / "mnist1d" / "*.npz")))
    if not files:  # generate the cache the way the datamodule does
        from fusionlab.data.mnist1d import MNIST1DDataModule

        MNIST1DDataModule(data_dir=str(REPO / "data")).load_arrays()
        files = sorted(glob.glob(str(REPO / "data" / "mnist1d" / "*.npz")))
    with np.load(files[0]) as f:
        x, y = f["x_train"], f["y_train"]
    x = ((x - x.mean()) / x.std()).astype(np.float32)
    np.savez(path, x=x[:batch_size], y=y[:batch_size])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", nargs="+", default=["cnn", "rnn", "transformer", "inception", "resnet", "mlp"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--counts", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--count-length", type=int, default=300, help="series length of the branches sweep")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per point (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per point")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables and command here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--point", help=argparse.SUPPRESS)
    parser.add_argument("--batch-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:  # child process: one point
        print(json.dumps(run_point(json.loads(args.point), args.batch_file, args.repeats, args.threads)))
        return
    if max(args.counts) > len(COUNT_KINDS) or min(args.counts) < 2:
        parser.error(f"--counts must lie in 2..{len(COUNT_KINDS)}")
    command = command_line()
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fl-bench-scaling-") as tmp:
        batch_file = str(Path(tmp) / "batch.npz")
        write_batch(args.batch_size, batch_file)
        length_points = [{"kind": "branch", "name": b, "length": n} for b in args.branches for n in args.lengths]
        length_points += [{"kind": "cross_attention", "length": n, "record_weights": w}
                          for w in (False, True) for n in args.lengths]
        count_points = [{"kind": "count", "count": k, "length": args.count_length} for k in args.counts]
        results = []
        for point in length_points + count_points:
            results.append(spawn(point, args, batch_file))
            print(f"  {label(results[-1])} L={point['length']}: {cell(results[-1])}", flush=True)
    total = time.perf_counter() - begin
    lengths = [r for r in results if r["kind"] != "count"]
    counts = [r for r in results if r["kind"] == "count"]
    footer = (f"command: `{command}` | batch {args.batch_size}, {args.repeats} timed steps after 1 warm-up, "
              f"median | torch threads {args.threads}, os.cpu_count()={os.cpu_count()} | python "
              f"{platform.python_version()} | total {total:.0f} s")
    text = length_table(lengths, args.lengths) + "\n\n" + count_table(counts, args.count_length) + "\n\n" + footer
    write_results(text, args.markdown, args.json, {"command": command, "results": results})


if __name__ == "__main__":
    main()
