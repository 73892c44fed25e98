"""Parameters and forward+backward time of every fusion in conf/fusion, side by side.

For k = 2 and 3 branches of equal width D (64 and 256), every fusion is built from its own YAML file
(``conf/fusion/<name>.yaml``, its default settings) with ``in_dims = {b0: D, ..., b_{k-1}: D}`` (and ``num_classes=10``
where it makes logits). Vector fusions get ``k`` random ``(B, D)`` vectors; sequence fusions
(``takes = "sequences"``, e.g. cross_attention) get ``k`` random ``(B, T, D)`` sequences with no
mask, since they replace the pooling step. One timed step is ``forward → (out ** 2).mean() →
backward`` (gradients to the inputs too, as inside a model), after ``--warmup`` untimed steps.
The fusions take turns step by step (round-robin over ``--repeats`` rounds) so machine drift hits all
alike; the table gives each one's median and its ratio to ``concat`` measured in the same rounds.
A fusion that refuses the branch count (bilinear and film need exactly 2) is shown as refused.
``torch.set_num_threads(--threads)`` (default 1).

Usage: ``python scripts/bench_fusions.py [--batch 128] [--steps 40] [--repeats 20] [--warmup 3]
[--widths 64 256] [--branches 2 3] > docs/results/fusions_bench.md``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from fusionlab.config.schema import ConfigError, locate

CONF = Path(__file__).resolve().parents[1] / "conf" / "fusion"


def build(name: str, in_dims: dict[str, int], num_classes: int = 10) -> torch.nn.Module:
    """The fusion of ``conf/fusion/<name>.yaml`` with its default settings."""
    node = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    cls = locate(node.pop("_target_"))
    if "num_classes" in getattr(cls, "injected", ()):
        node["num_classes"] = num_classes
    return cls(in_dims=in_dims, **node)


def make_inputs(fusion: torch.nn.Module, k: int, width: int, batch: int, steps: int) -> tuple:
    names = [f"b{i}" for i in range(k)]  # named inputs, as the model passes them
    if getattr(fusion, "takes", "vectors") == "sequences":
        seqs = {n: torch.randn(batch, steps, width, requires_grad=True) for n in names}
        return (seqs, dict.fromkeys(names)), list(seqs.values())
    xs = {n: torch.randn(batch, width, requires_grad=True) for n in names}
    return (xs,), list(xs.values())


def step(fusion: torch.nn.Module, args: tuple, leaves: list[torch.Tensor]) -> float:
    fusion.zero_grad(set_to_none=True)
    for x in leaves:
        x.grad = None
    start = time.perf_counter()
    (fusion(*args) ** 2).mean().backward()
    return time.perf_counter() - start


def bench(names: list[str], k: int, width: int, args: argparse.Namespace) -> list[tuple]:
    torch.manual_seed(0)
    built, refused = {}, {}
    for name in names:
        try:
            fusion = build(name, {f"b{i}": width for i in range(k)})
        except ConfigError as e:
            refused[name] = e.message
            continue
        built[name] = (fusion, *make_inputs(fusion, k, width, args.batch, args.steps))
    for fusion, inputs, leaves in built.values():
        for _ in range(args.warmup):
            step(fusion, inputs, leaves)
    times: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.repeats):
        for name, (fusion, inputs, leaves) in built.items():
            times[name].append(step(fusion, inputs, leaves))
    base = statistics.median(times["concat"]) if "concat" in times else None
    rows = []
    for name in names:
        if name in refused:
            rows.append((name, k, width, "refused", "", "", ""))
            continue
        fusion = built[name][0]
        median = statistics.median(times[name])
        params = sum(p.numel() for p in fusion.parameters())
        ratio = f"{median / base:.2f}" if base else ""
        rows.append((name, k, width, f"{params:,}", str(fusion.out_dim), f"{median * 1e3:.3f}", ratio))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="sequence length for sequence fusions")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--branches", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--fusions", nargs="+", default=None, help="default: every conf/fusion/*.yaml")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.fusions or sorted(p.stem for p in CONF.glob("*.yaml"))
    names = ["concat", *[n for n in names if n != "concat"]] if "concat" in names else names

    print("# Fusion benchmark: parameters and forward+backward time\n")
    print(f"`python scripts/bench_fusions.py --batch {args.batch} --steps {args.steps} --repeats {args.repeats} "
          f"--warmup {args.warmup} --threads {args.threads} --widths {' '.join(map(str, args.widths))} "
          f"--branches {' '.join(map(str, args.branches))}`\n")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s); "
          f"batch {args.batch}; every fusion with its conf/fusion/<name>.yaml defaults; k branches of width D; "
          f"sequence fusions read (B, {args.steps}, D) sequences, the others (B, D) vectors. "
          f"Time: median over {args.repeats} round-robin rounds of one forward + backward; "
          f"ratio: that median over concat's.\n")
    print("| fusion | k | D | parameters | out_dim | fwd+bwd (ms) | ratio to concat |")
    print("|---|---|---|---|---|---|---|")
    for k in args.branches:
        for width in args.widths:
            for row in bench(names, k, width, args):
                print("| " + " | ".join(str(c) for c in row) + " |", flush=True)


if __name__ == "__main__":
    main()
