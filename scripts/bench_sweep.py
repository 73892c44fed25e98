"""A 4-job sweep on MNIST-1D run in parallel (``hydra/launcher=joblib``) against the same sweep run
one job after the other (Hydra's basic launcher), side by side on this machine.

Each variant is the whole command a user types (``python train.py -m seed=0,1,2,3 ...``, Hydra
start-up included), timed by wall clock:

* sequential, ``threads=1``: one job at a time on one core;
* sequential, ``threads=<cores>``: one job at a time, torch's intra-op threads over all cores
  (what a plain ``-m`` run does when OMP_NUM_THREADS is unset);
* parallel: ``hydra/launcher=joblib hydra.launcher.n_jobs=<n_jobs> threads=<cores // n_jobs>``.

The variants alternate over ``--repeats`` rounds (the order rotates each round to cancel drift);
the table gives the median wall time of each and the speed-up of the parallel sweep over each
sequential one (median sequential / median parallel). The MNIST-1D cache is made once before
timing. Run it on an otherwise idle machine:

    python scripts/bench_sweep.py [--jobs 4] [--n-jobs 2] [--epochs 5] [--repeats 2]
    python scripts/bench_sweep.py --epochs 1 --jobs 2 --repeats 1 --extra +trainer.limit_train_batches=2  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"failed: train.py {' '.join(args)}\n{r.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (seeds 0..jobs-1)")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel jobs (joblib processes)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per job")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all variants")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to plan threads for")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for every job")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as folder:
        bench(args, Path(folder))


def bench(args: argparse.Namespace, tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(FUSIONLAB_DATA_DIR=os.environ.get("FUSIONLAB_DATA_DIR", str(ROOT / "data")),
               FUSIONLAB_LOG_DIR=str(tmp / "outputs"))
    seeds = ",".join(str(s) for s in range(args.jobs))
    common = [f"seed={seeds}", f"trainer.max_epochs={args.epochs}", *args.extra]
    per_job = max(1, args.cores // args.n_jobs)
    variants = {
        "sequential, threads=1": ["threads=1"],
        f"sequential, threads={args.cores}": [f"threads={args.cores}"],
        f"parallel, n_jobs={args.n_jobs}, threads={per_job}": [
            "hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}", f"threads={per_job}"],
    }
    run(["debug=fast", f"hydra.run.dir={tmp / 'warmup'}"], env)  # the MNIST-1D cache, outside the clock

    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(args.repeats):
        for name in names[i % len(names):] + names[: i % len(names)]:
            sweep = tmp / f"{len(times[name])}-{name.split(',')[0]}-{i}"
            times[name].append(run(["-m", *common, *variants[name], f"hydra.sweep.dir={sweep}"], env))
            done = sum(1 for p in sweep.glob("*/metrics.json") if json.loads(p.read_text())["status"] == "ok")
            if done != args.jobs:
                raise SystemExit(f"{name}: {done} of {args.jobs} jobs finished")

    medians = {name: statistics.median(t) for name, t in times.items()}
    parallel = medians[names[-1]]
    print(f"{args.jobs}-job sweep, {args.epochs} epochs per job, {args.cores} cores, {args.repeats} rounds "
          f"(overrides: {' '.join(common)})")
    print("| variant | wall time, median (s) | runs (s) | parallel speed-up |")
    print("|---|---|---|---|")
    for name in names:
        ratio = medians[name] / parallel
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"| {name} | {medians[name]:.1f} | {runs} | {'–' if name == names[-1] else f'{ratio:.2f}x'} |")
    if args.json:
        args.json.write_text(json.dumps({"times": times, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
