"""Load time of every offline series/image dataset: cold (parse/generate + write the cache) and warm
(read the cache), side by side, with the dataset table of the README.

Each dataset is set up (``dm.setup()``: load, pad, map labels, carve validation, standardise) with a
fresh cache folder (cold), then ``--repeats`` times with a new datamodule on the same folder (warm,
the median is shown). Libraries are imported before timing, so imports are not counted. Digits is
not cached (``load_digits`` is already fast), so its cold and warm runs do the same work.

Usage: ``OMP_NUM_THREADS=1 python scripts/bench_data_load.py [--repeats 5] > docs/results/data_load.md``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from fusionlab.data import DigitsDataModule, MNIST1DDataModule, UCRDataModule
from fusionlab.data.ucr import offline_datasets


def timed(make: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    dm = make()
    dm.setup()
    return time.perf_counter() - start, dm


def ucr(name: str, data_dir: str) -> UCRDataModule:
    return UCRDataModule(name, data_dir=data_dir, val_size=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import aeon.datasets  # noqa: F401  (imports are not timed)
    import mnist1d.data  # noqa: F401
    import sklearn.datasets  # noqa: F401

    makers: dict[str, Callable[[str], Any]] = {
        "MNIST-1D": lambda d: MNIST1DDataModule(data_dir=d, val_size=0),
        "digits": lambda d: DigitsDataModule(val_size=0),
        **{f"UCR {n}": functools.partial(ucr, n) for n in offline_datasets()},
    }
    print("| dataset | modality | train / test | input shape | lengths (train) | classes | load cold (ms) "
          "| load warm (ms) | cold / warm |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, make in makers.items():
        with tempfile.TemporaryDirectory() as folder:
            cold, dm = timed(functools.partial(make, folder))
            warm = statistics.median(timed(functools.partial(make, folder))[0] for _ in range(args.repeats))
        d = dm.describe()
        shape = "×".join(str(s) for s in d["input_shape"])
        lengths = "–".join(str(v) for v in d["train_lengths"]) + " (padded)" if d["masked"] else "equal"
        print(f"| {name} | {d['modality']} | {d['sizes']['train']} / {d['sizes']['test']} | {shape} | {lengths} "
              f"| {d['num_classes']} | {cold * 1e3:.1f} | {warm * 1e3:.1f} | {cold / warm:.1f} |")


if __name__ == "__main__":
    main()
