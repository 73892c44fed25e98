"""Summarise finished runs as a Markdown table: mean ± std of a metric over seeds, per setting.

    python scripts/results_table.py outputs/results/mnist1d_models [more folders] [--metric test/acc]

Each job folder must hold ``metrics.json`` and ``.hydra/overrides.yaml`` (any Hydra multirun
folder does). Jobs are grouped by their overrides other than ``seed``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import yaml


def collect(folders: list[Path]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for folder in folders:
        for metrics_file in sorted(folder.rglob("metrics.json")):
            job = metrics_file.parent
            overrides_file = job / ".hydra" / "overrides.yaml"
            if not overrides_file.is_file():
                continue
            overrides = [o for o in yaml.safe_load(overrides_file.read_text()) if not o.startswith("seed=")]
            groups[" ".join(overrides)].append(json.loads(metrics_file.read_text()))
    return groups


def fmt(values: list[float], scale: float = 100.0) -> str:
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--metric", default="test/acc")
    args = parser.parse_args()
    print(f"| setting | {args.metric} (%) | val/acc (%) | n | parameters | wall time / run (s) |")
    print("|---|---|---|---|---|---|")
    for setting, runs in collect(args.folders).items():
        ok = [r for r in runs if r.get("status") == "ok"]
        if not ok:
            continue
        test = [r["metrics"][args.metric] for r in ok]
        val = [r["metrics"]["val/acc"] for r in ok]
        params = ok[0]["params"].get("total", "")
        wall = statistics.median(r["wall_time_s"] for r in ok)
        print(f"| `{setting}` | {fmt(test)} | {fmt(val)} | {len(ok)} | {params:,} | {wall:.0f} |")


if __name__ == "__main__":
    main()
