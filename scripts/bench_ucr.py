"""Benchmark fusionlab models on UCR/UEA problems against published and same-run references.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_ucr.py [--datasets GunPoint ArrowHead ...]
        [--models ucr_inception ucr_rnn ucr_inception_rnn] [--seeds 0 1 2] [--epochs 120]
    python scripts/bench_ucr.py --report-only            # rewrite the table from the finished runs

Official train/test splits, every model trained on the whole training split with the checkpoint of
lowest training loss tested (model selection never sees the test split). One multirun over
``experiment=<models>`` x ``data.name`` x seeds (joblib, two one-thread jobs), then one table:
per dataset each model's test accuracy mean ± std over the seeds; aeon's ``MiniRocketClassifier``
fitted in the same run on the same splits (one fit per seed); and the InceptionTime and HC2
accuracies of resample 0 (the official split) READ AT RUN TIME from the results files the installed
aeon ships (``aeon/testing/example_results_files/classification/accuracy/<name>_accuracy.csv``).
No reference number is typed into this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_common import ROOT, jobs_by, launch, load_runs, pct, provenance, script_command, stats, versions  # noqa: E402

DATASETS = ["GunPoint", "ArrowHead", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels"]
# display labels of the shipped ucr_* experiments (column order); any other experiment in a sweep gets a column
# too, labelled from its runs' branches and fusion (e.g. "inception+resnet (late)")
MODELS = {
    "ucr_inception": "Inception",
    "ucr_resnet": "ResNet",
    "ucr_rnn": "BiGRU",
    "ucr_inception_rnn": "Inception+BiGRU (gated)",
    "ucr_inception_transformer": "Inception+Transformer (gated)",
    "ucr_inception_resnet": "Inception+ResNet (gated)",
    "ucr_inception_resnet_late": "Inception+ResNet (late)",
    "ucr_fcn": "FCN",
    "ucr_inception_resnet_fcn_late": "Inception+ResNet+FCN (late)",
}
DEFAULT_MODELS = ["ucr_inception", "ucr_rnn", "ucr_inception_rnn", "ucr_resnet"]
REFERENCES = ["InceptionTime", "HC2"]
MINIROCKET_FILE = "minirocket.json"


def branches_of(jobs: list[Any]) -> list[str]:
    """The branch names of an experiment's runs, in their config's order (``.hydra/config.yaml``)."""
    import yaml

    for job in jobs:
        path = job.folder / ".hydra" / "config.yaml"
        if path.is_file():
            model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
            return list(model.get("branches") or {})
    return []


def roles(groups: dict[tuple[str, ...], list[Any]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """From a sweep's jobs grouped by (experiment, ...): each experiment's column label (``MODELS`` order
    first), and for each fused experiment (several branches) the experiments that train one of its branches
    alone: a single branch of the same name, ``ucr_<branch>`` preferred. No list to keep by hand: a new
    ``ucr_*`` experiment gets its column and its goal lines from its runs."""
    jobs: dict[str, list[Any]] = {}
    for key, group in groups.items():
        jobs.setdefault(key[0], []).extend(group)
    branches = {e: branches_of(j) for e, j in jobs.items()}
    labels: dict[str, str] = {}
    alone: dict[str, list[str]] = {}
    for e in [*(m for m in MODELS if m in jobs), *sorted(set(jobs) - set(MODELS))]:
        names = branches[e]
        fusion = next((c["fusion"] for j in jobs[e] if (c := j.result.get("choices", {})).get("fusion")), None)
        derived = "+".join(names) + (f" ({fusion})" if fusion else "") if len(names) > 1 else (names or [e])[0]
        labels[e] = MODELS.get(e, derived)
        if len(names) > 1:
            single = {n: sorted((x for x in jobs if branches[x] == [n]), key=lambda x: (x != f"ucr_{n}", x))
                      for n in names}
            alone[e] = [found[0] for n in names if (found := single[n])]
    return labels, alone


# -- references ------------------------------------------------------------------------------------
def results_dir() -> Path:
    import aeon

    return Path(aeon.__file__).parent / "testing" / "example_results_files" / "classification" / "accuracy"


def published(name: str) -> dict[str, float]:
    """Dataset -> accuracy of resample 0 (the official split) in aeon's ``<name>_accuracy.csv``."""
    path = results_dir() / f"{name}_accuracy.csv"
    out = {}
    with path.open() as f:
        rows = csv.reader(f)
        header = next(rows)
        col = header.index("0")
        for row in rows:
            if len(row) > col and row[col]:
                out[row[0]] = float(row[col])
    return out


def minirocket_once(name: str, seed: int, data_dir: Path) -> dict[str, Any]:
    """Fit aeon's MiniRocketClassifier on the official training split (padded to one length like ours,
    no scaling), test it; accuracy and seconds (fit + predict, one thread)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    from fusionlab.data.preprocessing import NoScaling
    from fusionlab.data.ucr import UCRDataModule

    dm = UCRDataModule(name, data_dir=str(data_dir), val_size=0, preprocessing=NoScaling())
    dm.setup("fit")
    x_train, y_train = dm.splits["train"][0].numpy(), dm.splits["train"][1].numpy()
    x_test, y_test = dm.splits["test"][0].numpy(), dm.splits["test"][1].numpy()
    start = time.perf_counter()
    clf = MiniRocketClassifier(random_state=seed, n_jobs=1)
    clf.fit(x_train.astype("float64"), y_train)
    acc = float((clf.predict(x_test.astype("float64")) == y_test).mean())
    return {"dataset": name, "seed": seed, "acc": acc, "seconds": round(time.perf_counter() - start, 3)}


def warm_up_minirocket(data_dir: Path) -> None:
    """Fit MiniRocket once, untimed, on a few univariate (GunPoint) and multivariate (BasicMotions)
    training series, so numba's one-off compilation is not counted in the first timed fit."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    from fusionlab.data.preprocessing import NoScaling
    from fusionlab.data.ucr import UCRDataModule

    for name in ("GunPoint", "BasicMotions"):
        dm = UCRDataModule(name, data_dir=str(data_dir), val_size=0, preprocessing=NoScaling())
        dm.setup("fit")
        x, y = dm.splits["train"][0].numpy()[:20], dm.splits["train"][1].numpy()[:20]
        MiniRocketClassifier(random_state=0, n_jobs=1).fit(x.astype("float64"), y).predict(x.astype("float64"))


def run_minirocket(datasets: list[str], seeds: list[int], sweep: Path, data_dir: Path) -> None:
    warm_up_minirocket(data_dir)
    path = sweep / MINIROCKET_FILE
    done = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    have = {(r["dataset"], r["seed"]) for r in done["runs"]}
    for d in datasets:
        for s in seeds:
            if (d, s) not in have:
                r = minirocket_once(d, s, data_dir)
                print(f"MiniRocket {d} seed {s}: {r['acc']:.4f} in {r['seconds']:.1f} s", flush=True)
                done["runs"].append(r)
    done["versions"] = versions()
    done["command"] = script_command()
    sweep.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(done, indent=2))


# -- the table ----------------------------------------------------------------------------------------
def _ranks(values: dict[str, float]) -> dict[str, float]:
    """Rank 1 = most accurate; ties share the mean rank."""
    order = sorted(values, key=lambda k: -values[k])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and math.isclose(values[order[j + 1]], values[order[i]], abs_tol=1e-9):
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def table(sweep: Path, datasets: list[str]) -> str:
    groups = jobs_by(sweep, ["experiment", "data.name"])
    labels, alone = roles(groups)
    ours = [e for e in labels if any((e, d) in groups for d in datasets)]
    s = {(e, d): stats(groups.get((e, d), [])) for e in ours for d in datasets}
    mr_path = sweep / MINIROCKET_FILE
    mr_runs = json.loads(mr_path.read_text())["runs"] if mr_path.is_file() else []
    mr = {d: [r for r in mr_runs if r["dataset"] == d] for d in datasets}
    refs = {name: published(name) for name in REFERENCES}
    # column -> dataset -> mean accuracy (fraction) or None
    cols: dict[str, dict[str, float | None]] = {}
    for e in ours:
        cols[labels[e]] = {d: s[e, d]["mean"] if s[e, d]["n"] else None for d in datasets}
    cols["MiniRocket"] = {d: statistics.fmean(r["acc"] for r in mr[d]) if mr[d] else None for d in datasets}
    for name in REFERENCES:
        cols[f"{name} (aeon file)"] = {d: refs[name].get(d) for d in datasets}

    def cell_ours(e: str, d: str) -> str:
        r = s[e, d]
        return pct(r) + (f" ({r['failed']} failed)" if r["failed"] else "") if r["n"] or r["failed"] else "–"

    def cell_mr(d: str) -> str:
        a = [r["acc"] for r in mr[d]]
        if not a:
            return "–"
        return f"{100 * statistics.fmean(a):.1f} ± " + (f"{100 * statistics.stdev(a):.1f}" if len(a) > 1 else "–")

    header = list(cols)
    epochs = sorted({ep for v in s.values() for ep in v["epochs"] if ep is not None})
    seeds = sorted({x for v in s.values() for x in v["seeds"]})
    lines = [
        "# UCR/UEA benchmark: fused presets against InceptionTime, HC2 and MiniRocket",
        "",
        "Official train/test splits. Ours: the whole training split, batch 16, Adam lr 1e-3 with 50 warm-up steps "
        f"and cosine decay, {', '.join(map(str, epochs)) or '–'} epochs (the `ucr_*` experiments), the checkpoint "
        "of **lowest training loss** tested (no selection on test; no validation carve-out on 36-270 training "
        f"series). Seeds {', '.join(map(str, seeds)) or '–'}; test accuracy in %, mean ± sample std over seeds. "
        "MiniRocket: aeon's `MiniRocketClassifier` fitted in the same run on the same (zero-padded, unscaled) "
        "splits, one fit per seed (`random_state`). InceptionTime (an ensemble of 5 Inception networks, 1500 "
        "epochs each) and HC2: resample 0 (= the official split) of the results files shipped in the installed "
        f"aeon (`{results_dir().relative_to(results_dir().parents[4])}/<name>_accuracy.csv`), read when this "
        "table was written; '–' where the file has no row (it covers univariate UCR problems only).",
        "",
        "| dataset | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    for d in datasets:
        cells = [cell_ours(e, d) for e in ours] + [cell_mr(d)]
        cells += [f"{100 * v:.1f}" if (v := cols[f"{n} (aeon file)"][d]) is not None else "–" for n in REFERENCES]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    # summaries
    full = [d for d in datasets if all(cols[c][d] is not None for c in header)]
    ours_cols = [c for c in header if "aeon file" not in c]
    ours_full = [d for d in datasets if all(cols[c][d] is not None for c in ours_cols)]

    def mean_row(label: str, over: list[str], columns: list[str]) -> str:
        vals = []
        for c in header:
            if c in columns and over and all(cols[c][d] is not None for d in over):
                vals.append(f"{100 * statistics.fmean(cols[c][d] for d in over):.2f}")
            else:
                vals.append("")
        return f"| {label} | " + " | ".join(vals) + " |"

    def rank_row(label: str, over: list[str], columns: list[str]) -> str:
        total = {c: 0.0 for c in columns}
        for d in over:
            for c, r in _ranks({c: cols[c][d] for c in columns}).items():
                total[c] += r
        vals = [f"{total[c] / len(over):.2f}" if c in columns and over else "" for c in header]
        return f"| {label} | " + " | ".join(vals) + " |"

    lines += [mean_row(f"**mean accuracy, {len(ours_full)} sets (ours, MiniRocket)**", ours_full, ours_cols),
              rank_row(f"**average rank, {len(ours_full)} sets (ours, MiniRocket)**", ours_full, ours_cols)]
    if full:
        lines += [mean_row(f"**mean accuracy, {len(full)} sets with every reference ({', '.join(full)})**",
                           full, header),
                  rank_row(f"**average rank, {len(full)} sets with every reference**", full, header)]
    walls = []
    for c in header:
        e = next((e for e in ours if labels[e] == c), None)
        if e is not None:
            w = [s[e, d]["wall"] for d in datasets if s[e, d]["n"]]
            walls.append(f"{statistics.fmean(w):.0f} s" if w else "")
        elif c == "MiniRocket" and mr_runs:
            walls.append(f"{statistics.fmean(r['seconds'] for r in mr_runs):.1f} s")
        else:
            walls.append("")
    lines.append("| wall time per run (mean over datasets and seeds) | " + " | ".join(walls) + " |")
    lines += ["", "Wall time per run, ours: the whole job (data, fit, test) at one thread "
              "(jobs in parallel: see below); "
              "MiniRocket: fit + predict at one thread."]
    lines += goal(cols, labels, {f: p for f, p in alone.items() if f in ours}, datasets)
    errors = {(e, d): s[e, d]["errors"] for e in ours for d in datasets if s[e, d]["errors"]}
    if errors:
        lines += ["", "Failed jobs:", ""]
        lines += [f"- `{e}` on {d}: {'; '.join(map(str, v))}" for (e, d), v in errors.items()]
    runs = load_runs(sweep)
    lines += ["", *provenance(runs)]
    if not runs and (sweep / "multirun.yaml").is_file():  # a sweep stopped before its end: no launch record
        lines += unfinished_launch(sweep)
    if mr_runs:
        info = json.loads(mr_path.read_text())
        lines += ["MiniRocket runs (in the same script run, before the multirun):", "", "```bash",
                  info.get("command", ""), "```", "", f"- versions: {info.get('versions', '')}", ""]
    return "\n".join(lines)


def unfinished_launch(sweep: Path) -> list[str]:
    """The launch command of a sweep that was stopped (Hydra's ``multirun.yaml``), and when it began."""
    import yaml

    cfg = yaml.safe_load((sweep / "multirun.yaml").read_text())
    task = cfg["hydra"]["overrides"]["task"]
    hydra_keys = [o for o in cfg["hydra"]["overrides"].get("hydra", []) if not o.startswith("hydra.mode")]
    jobs = [p for p in sweep.glob("*/metrics.json")]
    done = [json.loads(p.read_text()) for p in jobs]
    first = (sweep / "multirun.yaml").stat().st_mtime  # written when the sweep starts
    last = max((p.stat().st_mtime for p in jobs), default=None)
    lines = ["The multirun was **stopped before its end** (the time budget of this session); it was launched as:", "",
             "```bash", "OMP_NUM_THREADS=1 python train.py -m " + " ".join(task + hydra_keys), "```", "",
             f"- {len(done)} jobs finished"]
    if last is not None:
        lines[-1] += (f" between the launch at {time.strftime('%H:%M', time.gmtime(first))} and "
                      f"{time.strftime('%H:%M UTC', time.gmtime(last))} ({(last - first) / 60:.0f} min wall)")
    return lines + [f"- versions: {versions()}", ""]


def goal(cols: dict[str, dict[str, float | None]], labels: dict[str, str], alone: dict[str, list[str]],
         datasets: list[str]) -> list[str]:
    """The issue's bar for each fused preset (``alone``: fused -> its branches' experiments): mean >=
    InceptionTime's and MiniRocket's, never more than 2 points below either on a dataset, and mean above
    its best single branch."""
    out = ["", "## The goal, checked", ""]
    for fused, parts in alone.items():
        f = cols[labels[fused]]
        out.append(f"`{fused}` ({labels[fused]}):")
        out.append("")
        for ref in ["InceptionTime (aeon file)", "MiniRocket"]:
            over = [d for d in datasets if f[d] is not None and cols[ref][d] is not None]
            if not over:
                continue
            mf = statistics.fmean(f[d] for d in over)
            mrf = statistics.fmean(cols[ref][d] for d in over)
            worst = min(over, key=lambda d: f[d] - cols[ref][d])
            gap = 100 * (f[worst] - cols[ref][worst])
            out.append(f"- vs {ref} on {len(over)} sets: mean {100 * mf:.2f} vs {100 * mrf:.2f} "
                       f"({'≥, met' if mf >= mrf else '<, NOT met'}); largest deficit {gap:+.1f} points on {worst} "
                       f"({'within 2 points' if gap >= -2 else 'MORE than 2 points below'})")
        for p in parts:
            if labels[p] not in cols:  # its branch alone has no runs on these datasets
                continue
            over = [d for d in datasets if f[d] is not None and cols[labels[p]][d] is not None]
            if over:
                mf = statistics.fmean(f[d] for d in over)
                mp = statistics.fmean(cols[labels[p]][d] for d in over)
                out.append(f"- vs its branch alone {labels[p]} on {len(over)} sets: {100 * mf:.2f} vs {100 * mp:.2f} "
                           f"({'above, met' if mf > mp else 'NOT above'})")
        out.append("")
    return out


def ablation_table(sweep: Path, fused: str, out_md: Path,
                   by_experiment: dict[tuple[str, ...], list[Any]] | None = None) -> str | None:
    """``fusionlab-ablate``'s table from this sweep's runs (``by_experiment``: its jobs grouped by
    experiment, read here when not given): ``fused`` against each of its branches alone (the experiments
    :func:`roles` finds: same recipe, same seeds), per dataset; the plot beside it."""
    import shutil

    from fusionlab.ablation import FUSED as FUSED_KEY
    from fusionlab.ablation import report

    by_experiment = by_experiment if by_experiment is not None else jobs_by(sweep, ["experiment"])
    labels, alone = roles(by_experiment)
    parts = alone.get(fused, [])
    groups = {FUSED_KEY: by_experiment.get((fused,), [])}
    for part in parts:  # keyed by the fused model's branch name: the dropout column zeroes that branch
        groups[branches_of(by_experiment[(part,)])[0]] = by_experiment[(part,)]
    if not groups[FUSED_KEY] or len(groups) < 2:
        return None
    notes = [f"From the benchmark runs of `scripts/bench_ucr.py` (sweep `{sweep}`): `{fused}` against "
             + ", ".join(f"`{p}`" for p in parts) + " (each branch alone with the same recipe, budget and "
             "seeds). Learnt weight: the gated unit's mean gate per branch on the test split. Dropout: the "
             "fused checkpoint tested with that branch's output zeroed.", "",
             f"![ablation]({out_md.with_suffix('.png').name})"]
    text = report(sweep / "ablation" / fused, groups, ["data.name"], "Does fusion help on UCR/UEA? "
                  f"{labels[fused]} against each branch alone", notes)
    out_md.write_text(text)
    shutil.copy(sweep / "ablation" / fused / "ablation.png", out_md.with_suffix(".png"))
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS, help="run in this order (table: DATASETS order)")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help=f"experiments (conf/experiment/), e.g. {list(MODELS)}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs (default: the experiments')")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel jobs (joblib), one thread each")
    parser.add_argument("--sweep-dir", type=Path, default=Path("outputs/bench/ucr"), help="relative to the repo")
    parser.add_argument("--subdir", default="", help="launch into <sweep-dir>/<subdir> (the table reads all)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/ucr_benchmark.md"))
    parser.add_argument("--override", nargs="*", default=[], help="more overrides for every job")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table")
    parser.add_argument("--skip-minirocket", action="store_true")
    parser.add_argument("--ablation-out", type=Path, default=None,
                        help="also write the fused-vs-branches tables and plots: ucr_inception_rnn's to this path "
                             "(e.g. docs/results/ablation_ucr.md), another fused preset's beside it with its "
                             "name appended (ablation_ucr_inception_resnet.md)")
    args = parser.parse_args(argv)
    shipped = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("ucr_*.yaml"))
    unknown = [m for m in args.models if not (ROOT / "conf" / "experiment" / f"{m}.yaml").is_file()]
    if unknown:
        parser.error(f"--models: no experiment {unknown} in conf/experiment; the UCR ones: {shipped}")
    os.chdir(ROOT)  # every path below (and in the recorded commands) is relative to the repository
    sweep = args.sweep_dir
    if not args.report_only:
        if not args.skip_minirocket:
            run_minirocket(args.datasets, args.seeds, sweep, ROOT / "data")
        # dataset outermost: a sweep cut short still holds every model on the sets it reached
        overrides = ["data=ucr", f"data.name={','.join(args.datasets)}", f"experiment={','.join(args.models)}",
                     f"seed={','.join(map(str, args.seeds))}"]
        if args.epochs is not None:
            overrides.append(f"trainer.max_epochs={args.epochs}")
        launch(overrides + args.override, sweep / args.subdir if args.subdir else sweep, args.n_jobs)
    text = table(sweep, [d for d in DATASETS if d in args.datasets] + [d for d in args.datasets if d not in DATASETS])
    if args.report_only:
        text += f"\nThis page was last rewritten from the finished runs with:\n\n```bash\n{script_command()}\n```\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    if args.ablation_out is not None:
        by_experiment = jobs_by(sweep, ["experiment"])  # read once for every fused preset's page
        for fused in roles(by_experiment)[1]:
            out = args.ablation_out if fused == "ucr_inception_rnn" else args.ablation_out.with_name(
                f"{args.ablation_out.stem}_{fused.removeprefix('ucr_')}.md")
            print(ablation_table(sweep, fused, out, by_experiment) or f"no {fused} runs for the ablation")


if __name__ == "__main__":
    main()
