"""``fusionlab-report``: summarise Hydra multirun folders as a Markdown table, a CSV and a bar chart.

    fusionlab-report outputs/train/multiruns/<time> [more folders] [--metric test/acc] [--out DIR]

Every job folder (one holding ``.hydra/overrides.yaml``) is collected with its ``metrics.json``.
Jobs are grouped by the swept keys (override keys whose value differs between jobs) other than
``seed``; each group gets mean ± sample std, n, min and max of the metric, the mean wall time and
the parameter count. Failed jobs (``status: failed`` or no ``metrics.json``) are listed with their
error. Writes ``report.md``, ``report.csv`` (one row per group), ``jobs.csv`` (one row per job) and
``report.png`` into ``--out`` (default: the first folder) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PERCENT_METRICS = ("acc", "f1", "precision", "recall", "auroc")
IGNORED_KEYS = ("seed",)


@dataclass
class Job:
    """One job folder: its overrides, ``metrics.json`` (if any) and error."""

    folder: Path
    overrides: dict[str, str]
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def value(self, metric: str) -> float | None:
        v = self.result.get("metrics", {}).get(metric)
        return float(v) if v is not None else None


@dataclass
class Group:
    """The jobs of one setting (swept keys other than the seed)."""

    setting: str
    jobs: list[Job]

    def values(self, metric: str) -> list[float]:
        return [v for j in self.jobs if j.ok and (v := j.value(metric)) is not None and math.isfinite(v)]


def _natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _key(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _error_of(folder: Path, result: dict[str, Any] | None) -> str | None:
    if result is not None:
        return None if result.get("status", "ok") == "ok" else str(result.get("error") or "failed")
    log = folder / "error.log"
    if log.is_file():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "no metrics.json (still running, killed or crashed)"


def collect(folders: list[Path]) -> list[Job]:
    """Every job folder under ``folders`` (in natural order: 2 before 10)."""
    jobs: list[Job] = []
    seen: set[Path] = set()
    for folder in folders:
        for overrides_file in sorted(folder.rglob(".hydra/overrides.yaml"), key=_natural):
            job = overrides_file.parent.parent.resolve()
            if job in seen:
                continue
            seen.add(job)
            overrides = dict(_key(o) for o in (yaml.safe_load(overrides_file.read_text()) or []))
            metrics_file = job / "metrics.json"
            result = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
            jobs.append(Job(job, overrides, result or {}, _error_of(job, result)))
    return jobs


def swept_keys(jobs: list[Job], ignore: tuple[str, ...] = IGNORED_KEYS) -> list[str]:
    """Override keys whose value differs between jobs (a key missing from a job counts as a value)."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.overrides if k not in keys and k not in ignore]
    return [k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1]


def group(jobs: list[Job], keys: list[str] | None = None, ignore: tuple[str, ...] = IGNORED_KEYS) -> list[Group]:
    """Jobs grouped by ``keys`` (default: the swept keys other than ``ignore``), in order of appearance.
    ``keys=[]`` groups by all overrides but ``ignore`` (as scripts/results_table.py always did)."""
    groups: dict[str, Group] = {}
    chosen = swept_keys(jobs, ignore) if keys is None else keys
    for job in jobs:
        if chosen:
            parts = [f"{k}={job.overrides[k]}" for k in chosen if k in job.overrides]
        else:  # keys=[]: every override (or nothing swept: one group)
            parts = [f"{k}={v}" for k, v in job.overrides.items() if k not in ignore] if keys == [] else []
        setting = " ".join(parts) or "(all jobs)"
        groups.setdefault(setting, Group(setting, [])).jobs.append(job)
    return list(groups.values())


def _percent(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in PERCENT_METRICS


def summarise(groups: list[Group], metric: str) -> list[dict[str, Any]]:
    """One row per group: n, mean, std, min, max of ``metric`` (raw units), failures, wall time, parameters."""
    rows = []
    for g in groups:
        values = g.values(metric)
        ok = [j for j in g.jobs if j.ok]
        walls = [float(j.result["wall_time_s"]) for j in ok if "wall_time_s" in j.result]
        params = [j.result.get("params", {}).get("total") for j in ok]
        params = [p for p in params if p is not None]
        rows.append({
            "setting": g.setting,
            "n": len(values),
            "failed": len(g.jobs) - len(ok),
            "mean": statistics.fmean(values) if values else float("nan"),
            "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else float("nan")),
            "min": min(values) if values else float("nan"),
            "max": max(values) if values else float("nan"),
            "wall_time_s": statistics.fmean(walls) if walls else float("nan"),
            "params": int(statistics.median(params)) if params else None,
        })
    return rows


def markdown(rows: list[dict[str, Any]], metric: str, failed: list[Job]) -> str:
    scale, unit = (100.0, " (%)") if _percent(metric) else (1.0, "")
    digits = 1 if scale == 100.0 else 4

    def f(x: float) -> str:
        return "–" if math.isnan(x) else f"{x * scale:.{digits}f}"

    lines = [f"| setting | {metric}{unit} mean ± std | n | min | max | wall time / run (s) | parameters |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        n = f"{r['n']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        wall = "–" if math.isnan(r["wall_time_s"]) else f"{r['wall_time_s']:.1f}"
        params = f"{r['params']:,}" if r["params"] is not None else "–"
        lines.append(f"| `{r['setting']}` | {f(r['mean'])} ± {f(r['std'])} | {n} | {f(r['min'])} | {f(r['max'])} "
                     f"| {wall} | {params} |")
    if failed:
        lines += ["", f"Failed jobs ({len(failed)}):", ""]
        lines += [f"- `{j.folder}` ({' '.join(f'{k}={v}' for k, v in j.overrides.items())}): {j.error}"
                  for j in failed]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["setting"])
        writer.writeheader()
        writer.writerows(rows)


def job_rows(jobs: list[Job], metric: str) -> list[dict[str, Any]]:
    return [{"folder": str(j.folder), "overrides": " ".join(f"{k}={v}" for k, v in j.overrides.items()),
             "status": "ok" if j.ok else "failed", metric: j.value(metric) if j.ok else None,
             "wall_time_s": j.result.get("wall_time_s"), "params": j.result.get("params", {}).get("total"),
             "error": j.error or ""} for j in jobs]


def bar_chart(path: Path, rows: list[dict[str, Any]], metric: str) -> None:
    """Mean per group with sample-std error bars (matplotlib imported here only, Agg canvas)."""
    from matplotlib.figure import Figure

    shown = [r for r in rows if r["n"]]
    scale = 100.0 if _percent(metric) else 1.0
    fig = Figure(figsize=(max(4.0, 0.7 * len(shown) + 1.5), 4.0), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(shown)), [r["mean"] * scale for r in shown], yerr=[r["std"] * scale for r in shown],
           capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(shown)), [r["setting"] for r in shown], rotation=30 if len(shown) > 3 else 0,
                  ha="right" if len(shown) > 3 else "center", fontsize=8)
    ax.set_ylabel(f"{metric}{' (%)' if scale == 100.0 else ''}, mean ± std")
    ax.grid(axis="y", alpha=0.3)
    if shown:
        low = min((r["mean"] - r["std"]) * scale for r in shown)
        high = max((r["mean"] + r["std"]) * scale for r in shown)
        pad = max(high - low, abs(high) * 0.02, 1e-6) * 0.15
        ax.set_ylim(low - pad, high + pad)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def report(folders: list[Path], metric: str = "test/acc", out: Path | None = None, plot: bool = True,
           keys: list[str] | None = None) -> str:
    """Write ``report.md``, ``report.csv``, ``jobs.csv`` (and ``report.png``) into ``out``; return the Markdown."""
    jobs = collect(folders)
    if not jobs:
        raise SystemExit(f"no job folders (with .hydra/overrides.yaml) under {', '.join(map(str, folders))}")
    rows = summarise(group(jobs, keys), metric)
    text = markdown(rows, metric, [j for j in jobs if not j.ok])
    out = out or folders[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(text)
    write_csv(out / "report.csv", rows)
    write_csv(out / "jobs.csv", job_rows(jobs, metric))
    if plot:
        bar_chart(out / "report.png", rows, metric)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fusionlab-report", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="multirun folders (searched recursively)")
    parser.add_argument("--metric", default="test/acc", help="metric from metrics.json (default: test/acc)")
    parser.add_argument("--out", type=Path, default=None, help="where to write report.* (default: first folder)")
    parser.add_argument("--keys", nargs="*", default=None,
                        help="group by these override keys (default: the swept ones but seed; "
                             "given without keys: all overrides but seed)")
    parser.add_argument("--no-plot", action="store_true", help="skip report.png")
    args = parser.parse_args(argv)
    print(report(args.folders, args.metric, args.out, not args.no_plot, args.keys), end="")


if __name__ == "__main__":
    main()
