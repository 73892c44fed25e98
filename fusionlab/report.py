"""``fusionlab-report``: summarise Hydra multirun folders as a Markdown table, a CSV and a bar chart.

    fusionlab-report outputs/train/multiruns/<time> [more folders] [--metric val/acc] [--also test/acc] [--out DIR]

Every job folder (one holding ``.hydra/overrides.yaml``) is collected with its ``metrics.json``.
Jobs are grouped by the swept keys (override keys whose value differs between jobs) other than
``seed``; each group gets mean ± sample std, n, min and max of the selection metric, the mean of
each ``--also`` metric beside it, the mean wall time and the parameter count.

Settings are ranked, and the best one selected, on the selection metric only: ``val/acc`` by
default, or ``train/loss`` (lower is better) when no job has validation data. A test metric can
never be the selection metric (that would pick the winner on the test set); test metrics
(``test/acc`` by default) are reported beside it. Failed jobs (``status: failed`` or no
``metrics.json``) are listed with their error. Writes ``report.md``, ``report.csv`` (one row per
group), ``jobs.csv`` (one row per job) and ``report.png`` into ``--out`` (default: the first folder)
and prints the Markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PERCENT_METRICS = ("acc", "f1", "precision", "recall", "auroc")
IGNORED_KEYS = ("seed",)
VALIDATION_METRIC, NO_VALIDATION_METRIC = "val/acc", "train/loss"  # the default selection metrics
REPORTED_BESIDE = ("test/acc",)


class SelectionError(ValueError):
    """A selection metric that would choose on the test set (or is not recorded)."""


def check_selection_metric(metric: str) -> None:
    """Refuse to rank or select on a test metric."""
    if metric.split("/", 1)[0] == "test":
        raise SelectionError(f"--metric {metric}: settings are selected on validation (e.g. val/acc) or on the "
                             "training loss, never on test; test metrics are reported beside it (--also)")


def selection_metric(jobs: list[Job]) -> str:
    """``val/acc`` when any finished job has it, else ``train/loss`` (runs without validation data)."""
    if any(j.ok and j.value(VALIDATION_METRIC) is not None for j in jobs):
        return VALIDATION_METRIC
    return NO_VALIDATION_METRIC


def higher_is_better(metric: str) -> bool:
    """Losses and errors go down; everything else (accuracy, F1, ...) goes up."""
    name = metric.rsplit("/", 1)[-1]
    return not any(word in name for word in ("loss", "error", "mse", "mae", "nll"))


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


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values) if values else float("nan")
    return mean, statistics.stdev(values) if len(values) > 1 else (0.0 if values else float("nan"))


def summarise(groups: list[Group], metric: str, also: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per group: n, mean, std, min, max of ``metric`` (raw units), failures, the mean and std
    of each ``also`` metric (``<name>_mean``, ``<name>_std``), wall time, parameters; in group order."""
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
            **{f"{m}_{k}": v for m in also for k, v in zip(("mean", "std"), _mean_std(g.values(m)))},
            "wall_time_s": statistics.fmean(walls) if walls else float("nan"),
            "params": int(statistics.median(params)) if params else None,
        })
    return rows


def rank(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Rows best first on ``metric``'s mean (settings without a value last); adds ``rank`` and ``selected``."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    ranked = sorted(rows, key=lambda r: (math.isnan(r["mean"]), sign * r["mean"] if not math.isnan(r["mean"]) else 0))
    for i, r in enumerate(ranked):
        r["rank"] = i + 1 if not math.isnan(r["mean"]) else None
        r["selected"] = i == 0 and not math.isnan(r["mean"])
    return ranked


def _formatter(metric: str) -> tuple[str, Any]:
    scale, unit = (100.0, " (%)") if _percent(metric) else (1.0, "")
    digits = 1 if scale == 100.0 else 4

    def f(x: float) -> str:
        return "–" if math.isnan(x) else f"{x * scale:.{digits}f}"

    return unit, f


def markdown(rows: list[dict[str, Any]], metric: str, failed: list[Job], also: tuple[str, ...] = ()) -> str:
    unit, f = _formatter(metric)
    beside = [(m, *_formatter(m)) for m in also]
    lines = [f"| setting | {metric}{unit} mean ± std | n | min | max | "
             + "".join(f"{m}{u} mean ± std | " for m, u, _ in beside) + "wall time / run (s) | parameters |",
             "|---|---|---|---|---|" + "---|" * len(beside) + "---|---|"]
    for r in rows:
        n = f"{r['n']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        wall = "–" if math.isnan(r["wall_time_s"]) else f"{r['wall_time_s']:.1f}"
        params = f"{r['params']:,}" if r["params"] is not None else "–"
        setting = f"**`{r['setting']}`** (selected)" if r.get("selected") else f"`{r['setting']}`"
        lines.append(f"| {setting} | {f(r['mean'])} ± {f(r['std'])} | {n} | {f(r['min'])} | {f(r['max'])} | "
                     + "".join(f"{g(r[f'{m}_mean'])} ± {g(r[f'{m}_std'])} | " for m, _, g in beside)
                     + f"{wall} | {params} |")
    chosen = next((r for r in rows if r.get("selected")), None)
    if chosen is not None:
        better = "higher" if higher_is_better(metric) else "lower"
        lines += ["", f"Ranked and selected on {metric} ({better} is better): `{chosen['setting']}`"
                  + (f"; {', '.join(also)} reported beside it, never used to choose." if also else ".")]
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


def job_rows(jobs: list[Job], metric: str, also: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"folder": str(j.folder), "overrides": " ".join(f"{k}={v}" for k, v in j.overrides.items()),
             "status": "ok" if j.ok else "failed", metric: j.value(metric) if j.ok else None,
             **{m: j.value(m) if j.ok else None for m in also},
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


def report(folders: list[Path], metric: str | None = None, out: Path | None = None, plot: bool = True,
           keys: list[str] | None = None, also: tuple[str, ...] = REPORTED_BESIDE) -> str:
    """Write ``report.md``, ``report.csv``, ``jobs.csv`` (and ``report.png``) into ``out``; return the Markdown.

    ``metric`` ranks and selects the settings (default: :func:`selection_metric`); it may not be a test
    metric (:class:`SelectionError`). ``also`` are reported beside it (test/acc by default)."""
    jobs = collect(folders)
    if not jobs:
        raise SystemExit(f"no job folders (with .hydra/overrides.yaml) under {', '.join(map(str, folders))}")
    metric = metric or selection_metric(jobs)
    check_selection_metric(metric)
    also = tuple(m for m in also if m != metric)
    rows = rank(summarise(group(jobs, keys), metric, also), metric)
    text = markdown(rows, metric, [j for j in jobs if not j.ok], also)
    out = out or folders[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(text)
    write_csv(out / "report.csv", rows)
    write_csv(out / "jobs.csv", job_rows(jobs, metric, also))
    if plot:
        bar_chart(out / "report.png", rows, metric)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fusionlab-report", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="multirun folders (searched recursively)")
    parser.add_argument("--metric", default=None,
                        help="metric that ranks and selects settings: validation or training, never test "
                             "(default: val/acc, or train/loss when no job has validation data)")
    parser.add_argument("--also", nargs="*", default=list(REPORTED_BESIDE),
                        help="metrics reported beside it, never used to choose (default: test/acc)")
    parser.add_argument("--out", type=Path, default=None, help="where to write report.* (default: first folder)")
    parser.add_argument("--keys", nargs="*", default=None,
                        help="group by these override keys (default: the swept ones but seed; "
                             "given without keys: all overrides but seed)")
    parser.add_argument("--no-plot", action="store_true", help="skip report.png")
    args = parser.parse_args(argv)
    try:
        print(report(args.folders, args.metric, args.out, not args.no_plot, args.keys, tuple(args.also)), end="")
    except SelectionError as e:
        print(f"fusionlab-report: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
