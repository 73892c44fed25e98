"""UCR/UEA time-series classification archives (Dau et al. 2019; Bagnall et al. 2018) via aeon.

``data=ucr data.name=<Dataset>``: the official train/test split of any of the 158 classification
problems aeon knows (``aeon.datasets.tsc_datasets``). Nine ship with aeon and load offline (see
:func:`offline_datasets`); the others are downloaded once from the tsml Zenodo community into
``<data_dir>/ucr/raw`` when the machine is online. Univariate and multivariate; unequal-length
problems (JapaneseVowels, PickupGestureWiimoteZ, ...) are zero-padded with a mask.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError
from fusionlab.data.base import ArrayDataModule
from fusionlab.data.cache import load_cached, save_cached
from fusionlab.data.padding import pad_to_longest

CACHE_VERSION = 1


def _aeon_data_dir() -> str:
    import aeon.datasets

    return os.path.join(os.path.dirname(aeon.datasets.__file__), "data")


def _local(root: str) -> set[str]:
    """Datasets with ``<root>/<name>/<name>_TRAIN.ts`` and ``_TEST.ts``."""
    if not os.path.isdir(root):
        return set()
    return {e.name for e in os.scandir(root) if e.is_dir()
            and os.path.isfile(os.path.join(e.path, f"{e.name}_TRAIN.ts"))
            and os.path.isfile(os.path.join(e.path, f"{e.name}_TEST.ts"))}


def known_datasets() -> set[str]:
    """Every classification problem aeon can load (by download when not shipped)."""
    from aeon.datasets.tsc_datasets import tsc_zenodo

    return set(tsc_zenodo)


def offline_datasets(raw_dir: str | os.PathLike | None = None) -> list[str]:
    """Classification problems loadable without a network: shipped with aeon, or already in ``raw_dir``."""
    found = _local(_aeon_data_dir()) & known_datasets()
    if raw_dir is not None:
        found |= _local(str(raw_dir))
    return sorted(found)


class UCRDataModule(ArrayDataModule):
    """One UCR/UEA problem with its official train/test split.

    The validation part is a stratified fraction of the official training split (``val_size``,
    default 0.2, fixed by ``split_seed``); ``val_size: 0`` trains on all of it without
    validation, as the LSTM-FCN protocol does (the last epoch's model is tested). Parsed arrays
    are cached as ``<data_dir>/ucr/<name>-<hash>.npz`` so a sweep parses each ``.ts`` file once.
    """

    defaults = {"batch_size": 16, "val_size": 0.2}

    def __init__(self, name: str, data_dir: str = "data", **options: Any) -> None:
        super().__init__(**options)
        self.name = str(name)
        self.data_dir = Path(data_dir)

    @property
    def source(self) -> str:
        return f"UCR/UEA dataset '{self.name}'"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "ucr" / "raw"

    def cache_path(self) -> Path:
        import aeon

        args = {"name": self.name, "aeon": aeon.__version__, "version": CACHE_VERSION}
        key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
        return self.data_dir / "ucr" / f"{self.name}-{key}.npz"

    def load_arrays(self) -> dict[str, Any]:
        path = self.cache_path()
        arrays = load_cached(path)
        if arrays is None:
            arrays = self._parse()
            save_cached(path, arrays)
        return arrays

    def _parse(self) -> dict[str, np.ndarray]:
        from aeon.datasets import load_classification

        shipped = self.name in _local(_aeon_data_dir())
        if not shipped and self.name not in known_datasets() and self.name not in _local(str(self.raw_dir)):
            close = difflib.get_close_matches(self.name, sorted(known_datasets()), n=3)
            hint = f"did you mean {close}? " if close else ""
            raise ConfigError("data.name", f"unknown UCR/UEA classification dataset '{self.name}'; {hint}"
                              f"offline (shipped with aeon): {offline_datasets(self.raw_dir)}; the others of "
                              "aeon.datasets.tsc_datasets are downloaded when online")
        extract = None if shipped else str(self.raw_dir)
        out: dict[str, np.ndarray] = {}
        for split in ("train", "test"):
            try:
                x, y = load_classification(self.name, split=split, extract_path=extract,
                                           load_equal_length=False, load_no_missing=False)
            except (ValueError, OSError) as e:
                raise ConfigError("data.name", f"'{self.name}' is not shipped with aeon and could not be "
                                  f"downloaded into {self.raw_dir} ({str(e).splitlines()[0][:160]}); offline: "
                                  f"{offline_datasets(self.raw_dir)}") from None
            if isinstance(x, np.ndarray) and x.dtype != object:
                out[f"x_{split}"] = x.astype(np.float32)
            else:  # unequal lengths: a list of (C, L_i)
                out[f"x_{split}"], out[f"mask_{split}"] = pad_to_longest([np.asarray(a) for a in x])
            out[f"y_{split}"] = np.asarray(y).astype(str)
        if ("mask_train" in out) != ("mask_test" in out):  # one split ragged, the other not
            for split in ("train", "test"):
                out.setdefault(f"mask_{split}", np.ones((len(out[f"x_{split}"]), out[f"x_{split}"].shape[-1]),
                                                        dtype=bool))
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **super().describe()}
