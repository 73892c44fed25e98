"""Shared helpers of the ``scripts/paper_*.py`` reproductions: launch a multirun, collect its
``metrics.json`` files (via ``fusionlab.report``), and describe the environment of the run.

Nothing here holds a result: every number in a table comes from the jobs' ``metrics.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from fusionlab.report import Job, collect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import command_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUN_FILE = "paper_run.json"  # written into the sweep folder: command, wall time, versions, hardware


def versions() -> str:
    names = ["torch", "lightning", "pytorch-lightning", "hydra-core", "numpy", "scikit-learn", "aeon", "mnist1d"]
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def hardware() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({model}), {platform.system()} {platform.release()}, no GPU"


def script_command() -> str:
    """How the calling script was started (recorded next to the launches)."""
    nice = os.nice(0)
    return f"OMP_NUM_THREADS=1 {f'nice -n {nice} ' if nice else ''}" + command_line()


def launch(overrides: list[str], sweep_dir: Path, n_jobs: int) -> dict[str, Any]:
    """Run ``train.py -m <overrides>`` (joblib, ``n_jobs`` processes of one thread) into ``sweep_dir``;
    record the command, wall time, versions and hardware in ``sweep_dir/paper_run.json``."""
    args = ["train.py", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    if n_jobs > 1:
        args += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", "threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = "OMP_NUM_THREADS=1 " + command_line(args)
    print(command, flush=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    info = {"script": script_command(), "command": command, "returncode": proc.returncode,
            "wall_time_s": round(wall, 1), "n_jobs": n_jobs, "load_average": round(os.getloadavg()[0], 1),
            "versions": versions(), "hardware": hardware(), "nice": os.nice(0),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / RUN_FILE
    runs = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(runs + [info], indent=2))
    return info


def load_runs(sweep_dir: Path) -> list[dict[str, Any]]:
    """The launches recorded in ``sweep_dir`` and its subfolders (in the order they finished)."""
    runs = [r for path in sweep_dir.rglob(RUN_FILE) for r in json.loads(path.read_text())]
    return sorted(runs, key=lambda r: r.get("finished", ""))


def jobs_by(folder: Path, keys: list[str]) -> dict[tuple[str, ...], list[Job]]:
    """Jobs of a multirun folder grouped by the values of ``keys`` in their overrides."""
    groups: dict[tuple[str, ...], list[Job]] = {}
    for job in collect([folder]):
        groups.setdefault(tuple(job.overrides.get(k, "") for k in keys), []).append(job)
    return groups


def stats(jobs: list[Job], metric: str = "test/acc") -> dict[str, Any]:
    """n, mean, sample std, parameters (median), epochs and wall time (mean) of the finished jobs."""
    ok = [j for j in jobs if j.ok and j.value(metric) is not None and math.isfinite(j.value(metric))]
    values = [j.value(metric) for j in ok]
    params = sorted(j.result.get("params", {}).get("total", 0) for j in ok)
    return {
        "n": len(values), "failed": len(jobs) - len(ok),
        "mean": statistics.fmean(values) if values else math.nan,
        "std": statistics.stdev(values) if len(values) > 1 else math.nan,
        "params": params[len(params) // 2] if params else None,
        "epochs": sorted({j.result.get("epochs") for j in ok}),
        "wall": statistics.fmean(float(j.result["wall_time_s"]) for j in ok) if ok else math.nan,
        "errors": sorted({j.error for j in jobs if not j.ok}),
        "seeds": sorted(int(j.result.get("seed", -1)) for j in ok),
    }


def pct(s: dict[str, Any], digits: int = 1) -> str:
    """``mean ± std`` in percent (``–`` when nothing finished)."""
    if not s["n"]:
        return "–"
    std = "–" if math.isnan(s["std"]) else f"{100 * s['std']:.{digits}f}"
    return f"{100 * s['mean']:.{digits}f} ± {std}"


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float, str]:
    """Difference of means a − b (points), its standard error, and a verdict at 2 standard errors."""
    if a["n"] < 2 or b["n"] < 2:
        return math.nan, math.nan, "too few runs"
    diff = 100 * (a["mean"] - b["mean"])
    se = 100 * math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    if diff > 2 * se:
        verdict = "better (beyond seed noise)"
    elif diff < -2 * se:
        verdict = "worse (beyond seed noise)"
    else:
        verdict = "tie (within seed noise)"
    return diff, se, verdict


def provenance(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: how the table was made (script, every launch, versions, hardware, wall time)."""
    lines = ["## How this table was made", "",
             "Each script run below launched the multirun after it (every job one torch thread); the table was "
             "then written from the jobs' metrics.json.", ""]
    for r in runs:
        lines += ["```bash", r.get("script", ""), "# launched:", r["command"], "```", "",
                  f"- exit code {r['returncode']}, wall time {r['wall_time_s'] / 60:.1f} min, "
                  f"finished {r['finished']}, niceness {r.get('nice', 0)}"
                  + (f", {r['n_jobs']} job(s) at a time" if "n_jobs" in r else "")
                  + (f", 1-minute load average {r['load_average']} at the end" if "load_average" in r else "")]
    if runs:
        lines += [f"- versions: {runs[-1]['versions']}", f"- hardware: {runs[-1]['hardware']}",
                  "- wall times are upper bounds when other processes shared the cores (see the load average)"]
    return lines + [""]


def paper_parser(doc: str, name: str, seeds: list[int], epochs: int | None) -> argparse.ArgumentParser:
    """The options every paper script shares; ``name`` picks ``outputs/paper/<name>`` and
    ``docs/results/paper_<name>.md``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs,
                        help="trainer.max_epochs for every job" + ("" if epochs else " (default: the experiments')"))
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel jobs (joblib), one thread each")
    parser.add_argument("--sweep-dir", type=Path, default=Path(f"outputs/paper/{name}"))
    parser.add_argument("--out", type=Path, default=ROOT / f"docs/results/paper_{name}.md")
    parser.add_argument("--subdir", default="", help="launch into <sweep-dir>/<subdir> (the table reads all)")
    parser.add_argument("--override", nargs="*", default=[], help="more overrides for every job, e.g. "
                        "data.bucket_by_length=false")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table")
    return parser


def run_paper(args: argparse.Namespace, overrides: list[str], table: Callable[[Path], str]) -> None:
    """Launch ``overrides`` (plus ``--seeds``, ``--epochs``, ``--override``) into the sweep folder unless
    ``--report-only``, then write and print the table made from everything in that folder."""
    sweep = args.sweep_dir if args.sweep_dir.is_absolute() else ROOT / args.sweep_dir
    if not args.report_only:
        overrides = [*overrides, f"seed={','.join(map(str, args.seeds))}"]
        if args.epochs is not None:
            overrides.append(f"trainer.max_epochs={args.epochs}")
        launch(overrides + args.override, sweep / args.subdir, args.n_jobs)
    text = table(sweep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
