"""MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.data.base import ArrayDataModule
from fusionlab.data.cache import load_cached, save_cached


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D: 10 classes, series of length 40, the official 4000/1000 train/test split.

    Generated with ``mnist1d.data.make_dataset(get_dataset_args())`` (identical to the official
    pickle, no download) and cached as ``<data_dir>/mnist1d/<hash of the arguments>.npz``.
    ``generation`` overrides any of ``get_dataset_args()`` (e.g. ``{shuffle_seq: true}``).
    """

    source = "MNIST-1D"

    def __init__(self, data_dir: str = "data", generation: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.data_dir = Path(data_dir)
        self.generation = dict(generation or {})

    def generation_args(self) -> dict[str, Any]:
        from mnist1d.data import get_dataset_args

        args = get_dataset_args(as_dict=True)
        unknown = set(self.generation) - set(args)
        if unknown:
            from fusionlab.config.schema import ConfigError

            raise ConfigError(f"data.generation.{sorted(unknown)[0]}",
                              f"not an mnist1d argument; expected one of {sorted(args)}")
        args.update(self.generation)
        args.pop("url", None)
        return args

    def cache_path(self) -> Path:
        args = self.generation_args()
        key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
        return self.data_dir / "mnist1d" / f"{key}.npz"

    def load_arrays(self) -> dict[str, np.ndarray]:
        path = self.cache_path()
        arrays = load_cached(path)  # None when missing or corrupted (checksummed; a warning says which)
        if arrays is None:
            arrays = self._generate()
            save_cached(path, arrays)  # atomic: a concurrent job never reads a half-written cache
        return arrays

    def _generate(self) -> dict[str, np.ndarray]:
        from mnist1d.data import make_dataset
        from mnist1d.utils import ObjectView

        state = np.random.get_state()  # make_dataset reseeds numpy's global generator
        try:
            d = make_dataset(ObjectView(self.generation_args()))
        finally:
            np.random.set_state(state)
        return {"x_train": d["x"].astype(np.float32), "y_train": d["y"].astype(np.int64),
                "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64)}
