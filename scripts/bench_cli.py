"""Start-up time of the command line: ``--help``, ``--cfg job`` and a Tab-completion query against
``python -c pass`` (median of ``--repeat`` runs each, in seconds, run one after another): wall time and
CPU time (user + system, which a busy shared machine inflates less than wall time).

    python scripts/bench_cli.py [--repeat 5] [--root PATH]

``--root`` times another clone (e.g. an older commit in a git worktree) with the same interpreter,
so two trees can be compared side by side. Each command's ``torch imported`` column says whether
``torch`` was loaded by the time it exited.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the torch check: run the script under a wrapper that reports whether torch was imported at exit
PROBE = ("import atexit, runpy, sys; "
         "atexit.register(lambda: sys.stderr.write('\\nTORCH_IMPORTED=%s\\n' % ('torch' in sys.modules))); "
         "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def commands(root: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    train = str(root / "train.py")
    completion_line = "python train.py fusion="
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        "train.py --help": ([sys.executable, train, "--help"], {}),
        "train.py --cfg job": ([sys.executable, train, "--cfg", "job"], {}),
        "completion (fusion=<Tab>)": ([sys.executable, train, "-sc", "query=bash"],
                                      {"COMP_LINE": completion_line, "COMP_POINT": str(len(completion_line))}),
    }


def time_once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one run; CPU time is less sensitive to a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imports_torch(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    if len(cmd) < 2 or not cmd[1].endswith(".py"):
        return "–"
    r = subprocess.run([cmd[0], "-c", PROBE, *cmd[1:]], cwd=cwd, env={**os.environ, **env},
                       capture_output=True, text=True)
    return "yes" if "TORCH_IMPORTED=True" in r.stderr else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (the median is reported)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the clone whose train.py is timed")
    args = parser.parse_args()
    root = args.root.resolve()
    env_path = {"PYTHONPATH": str(root)}
    print(f"tree: {root}  python: {sys.executable}  repeat: {args.repeat}  load average: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores\n")
    print("| command | wall median (s) | wall min (s) | CPU median (s) | torch imported |")
    print("|---|---|---|---|---|")
    for name, (cmd, env) in commands(root).items():
        env = {**env_path, **env}
        time_once(cmd, env, root)  # warm the file cache
        runs = [time_once(cmd, env, root) for _ in range(args.repeat)]
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        print(f"| `{name}` | {statistics.median(wall):.2f} | {min(wall):.2f} | {statistics.median(cpu):.2f} "
              f"| {imports_torch(cmd, env, root)} |", flush=True)


if __name__ == "__main__":
    main()
