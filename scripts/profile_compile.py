"""Where a training step's time goes, eager against ``compile=true``: ``torch.profiler`` tables per step.

For one preset and batch size (``conf/train.yaml`` composed as ``scripts/bench_compile.py`` does), the
same network and batches train in the bare loop ``forward -> F.cross_entropy -> zero_grad -> backward ->
step`` twice: eager with the config's optimizer, and compiled as ``compile=true`` compiles it
(:func:`fusionlab.training.compiling.compile_network`, the optimizer's fused step). Each path prints its
median step time and the ``--rows`` operators with the most self CPU time per step, Inductor's
generated kernels named one by one (``torch._inductor.config.cpp.enable_kernel_profile``, which wraps
each generated C++ kernel in a profiler range). ``--mask-store`` adds the micro-benchmark that
explains the largest compiled-only cost on these CPUs: a comparison stored as a bool tensor
(what ReLU and dropout save for the backward), eager against Inductor, at the vector width Inductor
picks and at 256 bits.

Usage: ``nice -n 10 python scripts/profile_compile.py --preset transformer [--batch-size 128] [--steps 6]
[--rows 20] [--inductor-random] [--mask-store]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_common import QUIET_RUN, compose_train_config  # noqa: E402


def step_fn(net: Any, optimizer: Any) -> Callable[[tuple], None]:
    import torch.nn.functional as F

    def step(batch: tuple) -> None:
        loss = F.cross_entropy(net(batch[0], batch[2] if len(batch) > 2 else None), batch[1])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def profile_path(name: str, step: Callable[[tuple], None], batches: list, rows: int) -> float:
    """Median step time (s) over ``batches`` after two warm-up steps, and the profiler's table."""
    from torch.profiler import ProfilerActivity, profile

    for b in batches[:2]:
        step(b)  # compiles, on the compiled path
    times = []
    for b in batches[2:]:
        start = time.perf_counter()
        step(b)
        times.append(time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches[2:]:
            step(b)
    median = statistics.median(times)
    print(f"\n== {name}: median step {median * 1e3:.1f} ms over {len(times)} steps; profiler totals are for "
          f"{len(times)} steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=90))
    return median


def mask_store(n: int = 327_680, repeat: int = 50) -> None:
    """``x <= 0`` stored as bool, as uint8, and ``relu(x) * 2`` stored as float, eager against Inductor,
    at the vector width Inductor picks for this CPU and at 256 bits (``cpp.simdlen``, AVX2)."""
    import torch
    from torch._inductor import cpu_vec_isa

    print(f"Inductor's vector ISA on this CPU: {cpu_vec_isa.pick_vec_isa()}")
    x = torch.randn(n)
    cases = (("x <= 0 (bool out)", lambda t: t <= 0), ("x <= 0 (uint8 out)", lambda t: (t <= 0).to(torch.uint8)),
             ("relu(x) * 2 (float out)", lambda t: t.relu() * 2))
    for simdlen in (None, 256):
        for name, fn in cases:
            torch._dynamo.reset()
            compiled = torch.compile(fn, options={} if simdlen is None else {"cpp.simdlen": simdlen})
            compiled(x)
            ms = {}
            for path, f in (("eager", fn), ("inductor", compiled)):
                start = time.perf_counter()
                for _ in range(repeat):
                    f(x)
                ms[path] = (time.perf_counter() - start) / repeat * 1e3
            print(f"{name:26s} on {n} floats, simdlen {simdlen or 'auto'}: eager {ms['eager']:.3f} ms, "
                  f"Inductor {ms['inductor']:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="transformer")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed and profiled steps per path")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--inductor-random", action="store_true",
                        help="dropout from Inductor's own random numbers (fallback_random off, as before)")
    parser.add_argument("--mask-store", action="store_true", help="also time a bool-mask store, eager vs Inductor")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(tempfile.mkdtemp(prefix="fl-profile-"), "inductor"))

    import copy

    import torch
    import torch._inductor.config as inductor_config
    from hydra.utils import instantiate

    from fusionlab.training import run
    from fusionlab.training.compiling import compile_network, with_fused_step

    torch.set_num_threads(1)
    inductor_config.cpp.enable_kernel_profile = True  # name each generated kernel in the profile
    cfg = compose_train_config([f"model={args.preset}", *QUIET_RUN, f"data.batch_size={args.batch_size}"],
                               tempfile.mkdtemp())
    dm = run.build_datamodule(cfg.data)
    dm.setup("fit")
    batches = [b for b in dm.train_dataloader() if b[0].shape[0] == args.batch_size][: args.steps + 2]
    torch.manual_seed(cfg.seed)
    init = copy.deepcopy(run.build_model(cfg.model, dm).state_dict())
    medians = {}
    for path in ("eager", "compiled"):
        net = run.build_model(cfg.model, dm)
        net.load_state_dict(init)
        net.train()
        factory = instantiate(cfg.optimizer)
        if path == "compiled":
            options = {"options": {"fallback_random": False}} if args.inductor_random else {}
            plan = compile_network(net, **options)
            print(f"\ntorch.compile: {plan.describe()} ({options or 'compile=true settings'})")
            factory = with_fused_step(factory)
        optimizer = factory(net.parameters())
        medians[path] = profile_path(f"{args.preset} batch {args.batch_size}, {path} "
                                     f"({type(optimizer).__name__}, fused={bool(optimizer.defaults.get('fused'))})",
                                     step_fn(net, optimizer), batches, args.rows)
    print(f"\nstep time eager / compiled: {medians['eager'] / medians['compiled']:.3f}")
    if args.mask_store:
        print()
        mask_store()


if __name__ == "__main__":
    main()
