"""Cost of the divergence guard and atomic checkpoints: the same training with and without them.

``model=cnn_rnn fusion=gated`` on MNIST-1D (``<repo>/data``) is built by ``fusionlab.training.run.prepare``
and fitted for ``--epochs`` epochs two ways, alternating in pairs (order flipped every pair):

* guarded: the trainer as a run makes it: ``DivergenceGuard`` and ``AtomicCheckpointIO`` writing
  ``last.ckpt``/``best.ckpt`` every epoch;
* bare: the same trainer without the ``DivergenceGuard`` callback and with Lightning's own checkpoint writer.

Prints the median wall time of each, the median per-pair ratio guarded/bare, and whether the final
weights are equal (the guard must not change the arithmetic).

Usage: ``OMP_NUM_THREADS=1 python scripts/bench_guard.py [--pairs 5] [--epochs 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusionlab.training.divergence import DivergenceGuard  # noqa: E402
from fusionlab.training.run import prepare  # noqa: E402
from tests.conftest import compose_cfg  # noqa: E402


def fit(guarded: bool, epochs: int, out: Path) -> tuple[float, list[torch.Tensor]]:
    cfg = compose_cfg(["model=cnn_rnn", "fusion=gated", "logger=none", f"trainer.max_epochs={epochs}",
                       "trainer.enable_progress_bar=false"], out, ROOT / "data")
    dm, module, trainer = prepare(cfg)
    if not guarded:
        trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, DivergenceGuard)]
        trainer.strategy.checkpoint_io = TorchCheckpointIO()
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return time.perf_counter() - start, [p.detach().clone() for p in module.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    times: dict[bool, list[float]] = {True: [], False: []}
    ratios, same = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            result = {g: fit(g, args.epochs, Path(tmp) / f"{i}-{g}") for g in order}
            for g in order:
                times[g].append(result[g][0])
            ratios.append(result[True][0] / result[False][0])
            same &= all(torch.equal(a, b) for a, b in zip(result[True][1], result[False][1]))
    print(f"epochs={args.epochs} pairs={args.pairs}")
    print(f"guarded median {statistics.median(times[True]):.3f} s, bare median {statistics.median(times[False]):.3f} s")
    print(f"ratio guarded/bare: median of pairs {statistics.median(ratios):.3f}")
    print(f"final weights equal: {same}")


if __name__ == "__main__":
    main()
