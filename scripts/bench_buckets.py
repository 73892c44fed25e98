"""Training time per epoch on the review corpus with and without length-bucketed batches, side by side.

``data.bucket_by_length=true`` (the default of ``data=text``) draws training batches of reviews of
similar length, so the batch trimming removes most of the padding; ``false`` shuffles plainly, and most
batches of 64 then hold one review cut at ``max_length`` (about 5% of them are). For each experiment
(``text_cnn``: three convolution branches; ``text_cnn_rnn``: plus a packed BiGRU) the config is composed
with Hydra's compose API and trained by the Lightning ``Trainer`` that ``build_trainer`` makes from it
(no logger, callbacks, progress bar, validation or checkpoint files), ``--epochs`` epochs of which the
first is warm-up and not timed. The two settings alternate in pairs, order flipped every pair; the table
gives the median seconds per timed epoch of each and the median of the per-pair ratios plain / bucketed.
It also gives the token slots per epoch (batch size × longest review, summed over batches) of each
setting, relative to the real tokens. ``torch.set_num_threads(--threads)`` (default 1) for both.

Usage: ``python scripts/bench_buckets.py [--pairs 3] [--epochs 2] [--threads 1]``
"""

from __future__ import annotations

import argparse
import gc
import logging
import platform
import statistics
import tempfile
import time
import warnings

import pytorch_lightning as pl
import torch
from bench_common import QUIET_RUN, compose_train_config
from omegaconf import DictConfig, OmegaConf

import fusionlab.cli
from fusionlab.training import run


def compose_config(experiment: str, bucket: bool, epochs: int, out_dir: str) -> DictConfig:
    return compose_train_config([f"experiment={experiment}", *QUIET_RUN, f"trainer.max_epochs={epochs}",
                                 f"data.bucket_by_length={str(bucket).lower()}"], out_dir)


class EpochClock(pl.Callback):
    """Wall time from the start of epoch ``first`` to the end of training."""

    def __init__(self, first: int) -> None:
        self.first, self.start, self.end = first, 0.0, 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.first:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = time.perf_counter()


def seconds_per_epoch(cfg: DictConfig) -> tuple[float, float]:
    """Seconds per timed epoch of ``trainer.fit``, and token slots per real token of one epoch."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = run.build_datamodule(cfg.data)
    slots = sum(x.numel() for x, _, _ in dm.train_dataloader()) / int(dm.splits["train"][2].sum())
    module = run.build_module(cfg, dm, OmegaConf.to_container(cfg, resolve=True))
    trainer = run.build_trainer(cfg)
    clock = EpochClock(1)
    trainer.callbacks.append(clock)
    gc.collect()
    trainer.fit(module, datamodule=dm)
    return (clock.end - clock.start) / (cfg.trainer.max_epochs - 1), slots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit; the first is not timed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--experiments", nargs="+", default=["text_cnn", "text_cnn_rnn"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fusionlab.cli.setup()
    run.quiet_lightning()
    logging.getLogger("fusionlab").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    print(f"review corpus, one training epoch ({platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {args.threads} thread(s), {args.pairs} pairs, median)")
    print("| experiment | bucketed s/epoch | plain s/epoch | plain / bucketed | token slots per real token "
          "(bucketed, plain) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments:
            times: dict[bool, list[float]] = {True: [], False: []}
            slots: dict[bool, float] = {}
            for pair in range(args.pairs):
                for bucket in ((True, False) if pair % 2 == 0 else (False, True)):
                    cfg = compose_config(experiment, bucket, args.epochs, tmp)
                    seconds, slots[bucket] = seconds_per_epoch(cfg)
                    times[bucket].append(seconds)
            ratio = statistics.median(p / b for b, p in zip(times[True], times[False]))
            print(f"| `{experiment}` | {statistics.median(times[True]):.2f} | {statistics.median(times[False]):.2f} "
                  f"| {ratio:.2f} | {slots[True]:.2f}, {slots[False]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
