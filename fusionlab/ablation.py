"""Does fusion help on my data? One command: ``fusionlab-ablate [options] <train overrides>``.

    fusionlab-ablate experiment=mnist1d_cnn_rnn_gated --seeds 0 1 2 trainer.max_epochs=10
    fusionlab-ablate experiment=ucr_inception_rnn data.name=GunPoint,ArrowHead --seeds 0 1 2
    python -m fusionlab.ablation --report-only --out outputs/ablation/<name>   # rewrite the table

Trains the fused model of the given config and each of its branches alone (the other branches
removed, ``fusion=concat`` over the one left, everything else, recipe and budget included, the
same) over the same seeds, then writes ``ablation.md`` and ``ablation.png`` into ``--out``:

- fused minus each branch alone, test accuracy in points, mean ± standard error over the paired
  seeds, and a paired t-test (``scipy.stats.ttest_rel``) over those seeds;
- the fusion's learnt branch weights (``test/weight_<branch>``, fusions that have them: gated,
  attention), averaged over test examples and seeds;
- test-time branch dropout: the fused checkpoint tested again with one branch's output zeroed
  (so its pooled features are 0); the accuracy drop says how much the fused model leans on it.

Selection is the training job's own (its validation metric, or the training loss with
``data.val_size=0``); the test split is only evaluated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FUSED = "fused"
RECORD = "ablation_run.json"


# -- which runs ------------------------------------------------------------------------------------
def compose(overrides: list[str]) -> Any:
    """The training config these overrides make (``./conf`` in a clone, else the installed presets)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from fusionlab.cli import setup

    setup()
    GlobalHydra.instance().clear()
    single = [_first_choice(o) for o in overrides]  # a swept value: its first choice
    local = Path.cwd() / "conf"
    context = (initialize_config_dir(str(local), version_base="1.3") if (local / "train.yaml").is_file()
               else initialize_config_module("fusionlab.conf", version_base="1.3"))
    with context:
        return hydra_compose("train", overrides=single)


def _first_choice(override: str) -> str:
    """``key=a,b`` -> ``key=a``; other overrides (a list or dict value ``key=[4,5,6]`` included) as they are."""
    key, sep, value = override.partition("=")
    if not sep or "," not in value or value.lstrip()[:1] in ("[", "{", "'", '"'):
        return override
    return f"{key}={value.split(',')[0]}"


def variants(overrides: list[str]) -> dict[str, list[str]]:
    """``fused``: the overrides as given; ``<branch>``: that branch alone with the same recipe."""
    from fusionlab.config.schema import ConfigError

    cfg = compose(overrides)
    branches = list(cfg.model.branches)
    if len(branches) < 2:
        raise ConfigError("model.branches", f"an ablation needs a fused model of 2 or more branches, got {branches}")
    views = set((cfg.model.get("views") or {}).keys())
    out = {FUSED: list(overrides)}
    for keep in branches:
        drop = [f"~model.branches.{b}" for b in branches if b != keep]
        drop += [f"~model.views.{b}" for b in branches if b != keep and b in views]
        drop += kept_values(cfg, [b for b in branches if b != keep])
        # the one branch left goes straight to the head: the fusion node is replaced by concat (identity on
        # one input), whatever keys the fused preset set on its own fusion (e.g. gated's dim)
        out[keep] = [*overrides, *drop, "~model.fusion", "+model.fusion={_target_:fusionlab.fusions.ConcatFusion}",
                     "model.taps=null"]
    return out


def kept_values(cfg: Any, removed: list[str]) -> list[str]:
    """Overrides that keep, at their composed values, the keys outside ``model`` that interpolate a removed
    branch's keys (e.g. ``data.subwords: ${model.branches.minilm.source}``), so the branch left alone reads
    the same data as in the fused run instead of failing on a dangling interpolation."""
    from omegaconf import OmegaConf

    refs = tuple(f"model.branches.{b}." for b in removed)
    out = []

    def walk(raw: dict[str, Any], path: str) -> None:  # the unresolved values, read once
        for key, value in raw.items():
            full = f"{path}.{key}"
            if isinstance(value, dict):
                walk(value, full)
            elif isinstance(value, str) and any(r in value for r in refs):
                value = OmegaConf.select(cfg, full)
                value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
                plain = isinstance(value, str) and re.fullmatch(r"[\w./:-]+", value)
                out.append(f"{full}={value if plain else json.dumps(value, separators=(',', ':'))}")

    for top, raw in OmegaConf.to_container(cfg, resolve=False).items():
        if top != "model" and isinstance(raw, dict):
            walk(raw, str(top))
    return out


def launch(name: str, overrides: list[str], seeds: list[int], folder: Path, n_jobs: int) -> dict[str, Any]:
    """One multirun (``seed`` swept, joblib with one thread per job when ``n_jobs > 1``) into ``folder``."""
    args = ["-m", *overrides, f"seed={','.join(map(str, seeds))}", f"hydra.sweep.dir={folder}"]
    if n_jobs > 1:
        args += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", "threads=1"]
    # in a clone: its train.py and conf/ (what compose() read); elsewhere the installed fusionlab-train
    local = Path("train.py").is_file() and Path("conf/train.yaml").is_file()
    entry = ["train.py"] if local else ["-c", "from fusionlab.cli import train_entry; train_entry()"]
    command = ("python train.py " if local else "fusionlab-train ") + " ".join(shlex.quote(a) for a in args)
    print(f"[{name}] {command}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *entry, *args], env={**os.environ, "OMP_NUM_THREADS": "1"})
    return {"variant": name, "command": command, "returncode": proc.returncode,
            "wall_time_s": round(time.perf_counter() - start, 1)}


# -- what they show ----------------------------------------------------------------------------------
def jobs_in(folder: Path) -> list[Any]:
    from fusionlab.report import collect

    return collect([folder]) if folder.is_dir() else []


def _key(job: Any, keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(job.overrides.get(k, "") for k in keys)


def selected_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a finished run tested: ``metrics.json``'s ``best_checkpoint`` where it is, else the file
    of that name in the run's own ``checkpoints/`` (a sweep folder copied or moved since: the recorded path is
    absolute), else ``checkpoints/best.ckpt``."""
    recorded = json.loads((run_dir / "metrics.json").read_text()).get("best_checkpoint")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    local = run_dir / "checkpoints" / (Path(recorded).name if recorded else "best.ckpt")
    return local if local.is_file() else run_dir / "checkpoints" / "best.ckpt"


def branch_dropout(run_dir: Path, branches: list[str]) -> dict[str, float]:
    """Test accuracy of a fused run's selected checkpoint with nothing zeroed (``none``) and with each
    branch's output zeroed (a forward hook returns zeros). The network comes from the checkpoint
    (registry-checked, ``weights_only``) built for the inputs it was trained on, as ``eval.py`` builds it; the test
    batches from the datamodule its own config builds, read through its test loader as in training, so
    padding masks, memory-mapped rows and sub-word inputs arrive as the network expects them."""
    import torch

    from fusionlab.config.build import build
    from fusionlab.jobs.evaluate import module_for_data
    from fusionlab.jobs.saved_run import for_loading, read_saved_run

    run = read_saved_run(selected_checkpoint(run_dir))
    saved = for_loading(run.config)
    dm = build(saved.data, "data")
    dm.prepare_data()
    dm.setup("test")
    # built for the inputs it was trained on (e.g. a frozen encoder's cached states), as eval.py builds it
    net = module_for_data(run, saved, dm).net.eval()

    def accuracy() -> float:
        correct, total = 0, 0
        with torch.no_grad():
            for batch in dm.test_dataloader():
                mask = batch[2] if len(batch) > 2 else None
                correct += int((net(batch[0], mask, *batch[3:]).argmax(-1) == batch[1]).sum())
                total += len(batch[1])
        return correct / total

    out = {"none": accuracy()}
    for name in branches:
        handle = net.branches[name].register_forward_hook(lambda _m, _i, o: torch.zeros_like(o))
        try:
            out[name] = accuracy()
        finally:
            handle.remove()
    return out


def paired(fused: dict[int, float], alone: dict[int, float]) -> dict[str, Any]:
    """Fused minus branch over the seeds both have: mean, standard error, paired t-test p."""
    from scipy import stats

    seeds = sorted(set(fused) & set(alone))
    diffs = [100 * (fused[s] - alone[s]) for s in seeds]
    n = len(diffs)
    out: dict[str, Any] = {"n": n, "mean": statistics.fmean(diffs) if diffs else math.nan, "se": math.nan,
                           "p": math.nan}
    if n >= 2:
        out["se"] = statistics.stdev(diffs) / math.sqrt(n)
        if any(d != diffs[0] for d in diffs) or diffs[0] != 0:
            out["p"] = float(stats.ttest_rel([fused[s] for s in seeds], [alone[s] for s in seeds]).pvalue)
    return out


def analyse(groups: dict[str, list[Any]], by: list[str], metric: str = "test/acc") -> list[dict[str, Any]]:
    """One row per (setting of ``by``, branch) from the jobs of each variant (``fused`` and branches)."""
    rows = []
    branches = [v for v in groups if v != FUSED]
    settings = sorted({_key(j, by) for j in groups.get(FUSED, [])})
    for setting in settings:
        fused_jobs = [j for j in groups[FUSED] if _key(j, by) == setting and j.ok and j.value(metric) is not None]
        fused = {int(j.result["seed"]): j.value(metric) for j in fused_jobs}
        drops: dict[str, list[float]] = {b: [] for b in branches}
        for j in fused_jobs:
            try:
                acc = branch_dropout(j.folder, branches)
            except (OSError, KeyError, RuntimeError) as e:  # no checkpoint kept: no dropout numbers
                print(f"branch dropout skipped for {j.folder}: {e}", file=sys.stderr)
                continue
            for b in branches:
                drops[b].append(100 * (acc["none"] - acc[b]))
        for b in branches:
            alone = {int(j.result["seed"]): j.value(metric) for j in groups[b]
                     if _key(j, by) == setting and j.ok and j.value(metric) is not None}
            weights = [j.value(f"test/weight_{b}") for j in fused_jobs if j.value(f"test/weight_{b}") is not None]
            rows.append({
                "setting": dict(zip(by, setting)), "branch": b,
                "fused": statistics.fmean(fused.values()) if fused else math.nan,
                "alone": statistics.fmean(alone.values()) if alone else math.nan,
                "diff": paired(fused, alone),
                "weight": statistics.fmean(weights) if weights else None,
                "drop": (statistics.fmean(drops[b]), statistics.stdev(drops[b]) / math.sqrt(len(drops[b]))
                         if len(drops[b]) > 1 else math.nan) if drops[b] else None,
                "seeds": sorted(set(fused) & set(alone)),
            })
    return rows


def _fmt(v: float, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown(rows: list[dict[str, Any]], title: str, notes: list[str]) -> str:
    lines = [f"# {title}", "", *notes, "",
             "| setting | branch | branch alone (%) | fused (%) | fused − branch (points, mean ± SE) | paired t-test p "
             "| seeds | learnt weight | zeroed at test: accuracy drop (points, mean ± SE) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        setting = ", ".join(f"{v}" for v in r["setting"].values()) or "–"
        d = r["diff"]
        drop = "–" if r["drop"] is None else f"{_fmt(r['drop'][0])} ± {_fmt(r['drop'][1])}"
        diff = f"{d['mean']:+.1f} ± {_fmt(d['se'])}" if d["n"] else "–"
        lines.append(f"| {setting} | {r['branch']} | {_fmt(100 * r['alone'])} | {_fmt(100 * r['fused'])} | "
                     f"{diff} | {_fmt(d['p'], 3)} | {d['n']} | "
                     f"{_fmt(r['weight'], 2) if r['weight'] is not None else 'n/a'} | {drop} |")
    helps = [r for r in rows if r["diff"]["n"] >= 2 and r["diff"]["mean"] - 2 * r["diff"]["se"] > 0]
    hurts = [r for r in rows if r["diff"]["n"] >= 2 and r["diff"]["mean"] + 2 * r["diff"]["se"] < 0]
    lines += ["", f"Fused above the branch alone by more than 2 standard errors: {len(helps)} of {len(rows)} rows; "
              f"below by more than 2 standard errors: {len(hurts)}; the rest are within seed noise."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Two panels: fused − branch (mean ± SE) and the test-time dropout drop, per setting and branch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [" ".join(str(v) for v in r["setting"].values()) + f"\n{r['branch']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 0.9 * len(rows) + 2), 4), sharex=True)
    xs = range(len(rows))
    axes[0].bar(xs, [r["diff"]["mean"] for r in rows],
                yerr=[0 if math.isnan(r["diff"]["se"]) else r["diff"]["se"] for r in rows], capsize=3)
    axes[0].axhline(0, color="black", linewidth=0.8)
    axes[0].set_title("fused − branch alone (points, ± SE)")
    axes[1].bar(xs, [r["drop"][0] if r["drop"] else 0 for r in rows],
                yerr=[r["drop"][1] if r["drop"] and not math.isnan(r["drop"][1]) else 0 for r in rows],
                capsize=3, color="tab:orange")
    axes[1].set_title("accuracy drop, branch zeroed at test (points)")
    for ax in axes:
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def swept(overrides: list[str]) -> list[str]:
    """Keys given several comma-separated values (reported as the table's settings)."""
    return [o.split("=", 1)[0] for o in overrides if "=" in o and "," in o.split("=", 1)[1]
            and not o.startswith(("~", "hydra"))]


def report(out: Path, groups: dict[str, list[Any]], by: list[str], title: str, notes: list[str]) -> str:
    rows = analyse(groups, by)
    text = markdown(rows, title, notes)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text(text)
    (out / "ablation.json").write_text(json.dumps(rows, indent=2, default=float))
    if rows:
        plot(rows, out / "ablation.png")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fusionlab-ablate", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="training overrides, e.g. experiment=<x> data.name=<y>")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="paired seeds (the same for all)")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel jobs, one thread each")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: outputs/ablation/<task_name>)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table from finished runs")
    parser.add_argument("--only", nargs="+", default=None, help="launch only these variants (fused, <branch>): "
                        "e.g. rerun the branches alone into an existing --out")
    args = parser.parse_intermixed_args(argv)
    from fusionlab.config.schema import ConfigError

    try:
        record_path = (args.out / RECORD) if args.out else None
        if args.report_only and record_path is not None and record_path.is_file():
            record = json.loads(record_path.read_text())
            args.overrides = record["overrides"]
        plan = variants(args.overrides)
        out = args.out or Path("outputs/ablation") / str(compose(args.overrides).task_name)
    except ConfigError as e:
        print(f"Error in config: {e}", file=sys.stderr)
        return 2
    if args.only and not set(args.only) <= set(plan):
        print(f"Error in config: --only: expected some of {list(plan)}, got {args.only}", file=sys.stderr)
        return 2
    if not args.report_only:
        previous = json.loads((out / RECORD).read_text()) if (out / RECORD).is_file() else {}
        launches = [r for r in previous.get("launches", []) if args.only and r["variant"] not in args.only]
        for name, overrides in plan.items():
            if not args.only or name in args.only:
                launches.append(launch(name, overrides, args.seeds, out / name, args.n_jobs))
        command = "fusionlab-ablate " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        (out / RECORD).write_text(json.dumps({"overrides": args.overrides, "seeds": args.seeds, "launches": launches,
                                              "command": previous.get("command", command) if args.only else command,
                                              "reruns": previous.get("reruns", []) + ([command] if args.only else [])},
                                             indent=2))
    record = json.loads((out / RECORD).read_text()) if (out / RECORD).is_file() else {}
    groups = {name: jobs_in(out / name) for name in plan}
    notes = [f"Command: `{record.get('command', '')}` (seeds {record.get('seeds', args.seeds)})"
             + "".join(f"; then `{c}`" for c in record.get("reruns", [])) + ". Each branch alone: the same overrides "
             "with the other branches removed and a concat fusion (identity on one input) before the same head."]
    notes += [f"- `{r['command']}`: exit {r['returncode']}, {r['wall_time_s'] / 60:.1f} min"
              for r in record.get("launches", [])]
    print(report(out, groups, swept(args.overrides), "Does fusion help? Fused model against each branch alone", notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
