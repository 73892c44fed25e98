"""Reproduce the MNIST-1D baselines of Greydanus (2020), "Scaling down deep learning", next to fused models.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/paper_mnist1d.py [--epochs 40] [--seeds 0 1 2 3 4]
    python scripts/paper_mnist1d.py --report-only      # rewrite the table from the finished runs

Launches one multirun over ``experiment=paper_mnist1d_*`` × seeds (conf/experiment/), then writes
docs/results/paper_mnist1d.md from the jobs' metrics.json: test accuracy mean ± std per model, n,
parameters, the paper's number beside it, and each fused model against the best single branch.
"""

from __future__ import annotations

from pathlib import Path

from paper_common import compare, jobs_by, load_runs, paper_parser, pct, provenance, run_paper, stats

# experiment name -> (row label, the paper's test accuracy in % or None)
ROWS = {
    "paper_mnist1d_logistic": ("logistic regression", 32.0),
    "paper_mnist1d_mlp": ("MLP", 68.0),
    "paper_mnist1d_cnn": ("CNN", 94.0),
    "paper_mnist1d_gru": ("GRU", 91.0),
    "paper_mnist1d_cnn_gru_concat": ("CNN + GRU, concat", None),
    "paper_mnist1d_cnn_gru_gated": ("CNN + GRU, gated", None),
    "paper_mnist1d_cnn_gru_attention": ("CNN + GRU, attention", None),
    "paper_mnist1d_cnn_gru_transformer": ("CNN + GRU + Transformer, gated", None),
}
SINGLE = ["paper_mnist1d_cnn", "paper_mnist1d_gru"]  # the single branches the fused models must match
FUSED = [e for e in ROWS if e.startswith("paper_mnist1d_cnn_gru")]


def table(sweep: Path) -> str:
    groups = jobs_by(sweep, ["experiment"])
    s = {e: stats(groups.get((e,), [])) for e in ROWS}
    epochs = sorted({ep for v in s.values() for ep in v["epochs"] if ep is not None})
    lines = [
        "# MNIST-1D: the paper's baselines, reproduced, and fused CNN/GRU models",
        "",
        "Greydanus (2020), *Scaling down deep learning* (arXiv:2011.14439), MNIST-1D "
        "baselines (its benchmark figure). Official 4000/1000 split (500 of the 4000 held out for choosing "
        "the checkpoint); "
        f"the paper's recipe: Adam, lr 1e-2, batch 100, constant learning rate; **{', '.join(map(str, epochs))} "
        "epochs** here (the paper: 6000 steps ≈ 150 epochs of 4000 examples) to fit the time budget; "
        "the best-validation checkpoint is tested. Test accuracy over seeds (mean ± sample std).",
        "",
        "| model | experiment | ours: test acc (%) | n | parameters | paper (%) | wall time / run (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for e, (label, paper) in ROWS.items():
        r = s[e]
        n = f"{r['n']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        params = f"{r['params']:,}" if r["params"] else "–"
        wall = "–" if not r["n"] else f"{r['wall']:.0f}"
        lines.append(f"| {label} | `{e}` | {pct(r)} | {n} | {params} | {'–' if paper is None else f'{paper:.0f}'} "
                     f"| {wall} |")
    done = [e for e in SINGLE if s[e]["n"]]
    if done:
        best = max(done, key=lambda e: s[e]["mean"])
        lines += ["", f"## Fused models against the best single branch ({ROWS[best][0]}, {pct(s[best])})", "",
                  "Difference of means ± its standard error, sqrt(s1²/n1 + s2²/n2); "
                  "'beyond seed noise' means more than 2 standard errors.", "",
                  "| fused model | test acc (%) | − best single (points) | verdict |", "|---|---|---|---|"]
        for e in FUSED:
            diff, se, verdict = compare(s[e], s[best])
            d = "–" if diff != diff else f"{diff:+.1f} ± {se:.1f}"
            lines.append(f"| {ROWS[e][0]} | {pct(s[e])} | {d} | {verdict} |")
    errors = {e: s[e]["errors"] for e in ROWS if s[e]["errors"]}
    if errors:
        lines += ["", "Failed jobs:", ""] + [f"- `{e}`: {'; '.join(map(str, v))}" for e, v in errors.items()]
    lines += ["", "Notes on sizes: the paper's CNN (ConvBase: 3 × Conv1d of 25 channels, stride 2, a linear layer "
              "on the flattened map, 5,210 parameters) is matched in widths and receptive field (dilations 1/2/4 "
              "instead of stride 2, then global average pooling); the paper's GRU (bidirectional, 6 units, all "
              "40 outputs flattened, 5,134 parameters) is matched in parameter count (26 units per direction, "
              "final states). The MLP (40-100-100-10) and logistic regression (40-10) have the paper's sizes.",
              ""]
    lines += provenance(load_runs(sweep))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = paper_parser(__doc__, "mnist1d", seeds=[0, 1, 2, 3, 4], epochs=40)
    parser.add_argument("--experiments", nargs="+", default=list(ROWS), help="a subset of the rows to run")
    args = parser.parse_args(argv)
    run_paper(args, [f"experiment={','.join(args.experiments)}"], table)


if __name__ == "__main__":
    main()
