"""Diagnostic for scripts/bench_ucr.py runs: each run's selected checkpoint tested with its BatchNorm
running statistics as trained, and with them recomputed exactly (cumulative average over one pass of
the training split, final weights unchanged). Uses only training data; the test split is only evaluated.

    python scripts/bench_ucr_bn.py outputs/bench/ucr [--experiments ucr_inception ucr_inception_rnn]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from fusionlab.config.build import build


def check(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    ckpt = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    cfg = OmegaConf.create(ckpt["fusionlab_config"])
    dm = build(cfg.data, "data")
    dm.prepare_data()
    dm.setup("fit")
    net = build(cfg.model, "model", input_spec=dm.input_spec, num_classes=dm.num_classes)
    net.load_state_dict({k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})

    def test_accuracy() -> float:
        x, y, *mask = dm.splits["test"]
        net.eval()
        with torch.no_grad():
            return float((net(x, mask[0] if mask else None).argmax(-1) == y).float().mean())

    before = test_accuracy()
    for bn in net.modules():
        if isinstance(bn, torch.nn.BatchNorm1d):
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: the exact statistics of the pass below
    x, _, *mask = dm.splits["train"]
    net.train()
    with torch.no_grad():
        for i in range(0, len(x), dm.batch_size):
            net(x[i : i + dm.batch_size], mask[0][i : i + dm.batch_size] if mask else None)
    return {"experiment": metrics["choices"].get("experiment"), "dataset": metrics["data"]["name"],
            "seed": metrics["seed"], "trained": before, "recomputed": test_accuracy()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--experiments", nargs="+", default=["ucr_inception", "ucr_inception_rnn"])
    args = parser.parse_args()
    rows = []
    for m in sorted(args.sweep.glob("*/metrics.json"), key=lambda p: int(p.parent.name)):
        d = json.loads(m.read_text())
        if d.get("status") == "ok" and d["choices"].get("experiment") in args.experiments:
            rows.append(check(m.parent))
    print("| experiment | dataset | seed | test acc, trained statistics (%) | test acc, recomputed (%) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['experiment']} | {r['dataset']} | {r['seed']} | {100 * r['trained']:.1f} | "
              f"{100 * r['recomputed']:.1f} |")


if __name__ == "__main__":
    main()
