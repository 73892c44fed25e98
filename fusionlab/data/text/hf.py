"""A labelled text dataset from the Hugging Face hub or local files via ``datasets`` (``data=text_hf``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError
from fusionlab.data.splits import SplitSize, carve_test
from fusionlab.data.text.base import TextDataModule
from fusionlab.data.text.checks import check_labels, check_texts
from fusionlab.data.text.tables import file_id


class HFTextDataModule(TextDataModule):
    """A dataset loaded with ``datasets.load_dataset(name, subset, data_files=..., split=...)``.

    ``split_test: null`` carves a stratified ``test_size`` part out of ``split_train`` (split
    slicing such as ``train[:80%]`` works too). A ClassLabel label column is turned into its class
    names. Downloads are cached under ``data_dir/hf``; set ``HF_DATASETS_OFFLINE=1`` to use only
    what is there. ``name: csv`` (or json, parquet) with ``data_files`` reads local files.
    """

    defaults = {"val_size": 0.1, "min_freq": 2, "max_vocab": 30000}

    def __init__(
        self,
        name: str,
        subset: str | None = None,
        data_files: Any = None,
        split_train: str = "train",
        split_test: str | None = "test",
        text_column: str = "text",
        label_column: str = "label",
        test_size: SplitSize = 0.2,
        revision: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.name, self.subset, self.revision = name, subset, revision
        self.data_files = _plain(data_files)
        self.split_train, self.split_test = split_train, split_test
        self.text_column, self.label_column, self.test_size = text_column, label_column, test_size

    @property
    def source(self) -> str:
        return f"Hugging Face dataset '{self.name}' (column '{self.label_column}')"

    def source_id(self) -> dict[str, Any]:
        files = [file_id(Path(f)) if Path(f).is_file() else f for f in _flat_files(self.data_files)]
        return {"name": self.name, "subset": self.subset, "files": files, "revision": self.revision,
                "splits": [self.split_train, self.split_test], "columns": [self.text_column, self.label_column],
                "test_size": None if self.split_test else self.test_size}

    def _split(self, split: str, key: str) -> Any:
        try:
            import datasets
        except ImportError:
            raise ConfigError("data", "data=text_hf needs the datasets package: "
                              "pip install 'fusionlab[data]'") from None
        for f in _flat_files(self.data_files):
            if "://" not in f and not any(c in f for c in "*?[") and not Path(f).is_file():
                raise ConfigError("data.data_files", f"no file at '{f}'")
        try:
            return datasets.load_dataset(self.name, self.subset, data_files=self.data_files, split=split,
                                         revision=self.revision, cache_dir=str(self.data_dir / "hf"))
        except ValueError as e:
            msg = str(e).splitlines()[0]
            if "split" in msg.lower():
                raise ConfigError(key, f"dataset '{self.name}' has no split '{split}' ({msg})") from None
            raise ConfigError("data.name", f"cannot load dataset '{self.name}': {msg}") from None
        except Exception as e:  # DatasetNotFoundError, FileNotFoundError, ConnectionError (offline)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError("data.name", f"cannot load dataset '{self.name}': {msg}") from None

    def _columns(self, ds: Any, split: str) -> tuple[list[str], np.ndarray]:
        where = f"split '{split}' of '{self.name}'"
        for key, col in ((self.text_key, self.text_column), (self.label_key, self.label_column)):
            if col not in ds.column_names:
                raise ConfigError(key, f"'{col}' is not a column of {where}; columns present: {ds.column_names}")
        texts = check_texts(list(ds[self.text_column]), where, self.text_key)
        labels = list(ds[self.label_column])
        names = getattr(ds.features[self.label_column], "names", None)
        if names:  # ClassLabel: its names, not its integer codes
            labels = [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in labels]
        return texts, check_labels(labels, where, self.label_key)

    def load_texts(self) -> dict[str, Any]:
        texts, labels = self._columns(self._split(self.split_train, "data.split_train"), self.split_train)
        if self.split_test is not None:
            t, lab = self._columns(self._split(self.split_test, "data.split_test"), self.split_test)
            return {"texts_train": texts, "labels_train": labels, "texts_test": t, "labels_test": lab}
        train, test = carve_test(labels.astype(str), self.test_size, self.split_seed, "data.test_size",
                                 f"split '{self.split_train}' of '{self.name}'")
        return {"texts_train": [texts[i] for i in train], "labels_train": labels[train],
                "texts_test": [texts[i] for i in test], "labels_test": labels[test]}


def _plain(value: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def _flat_files(data_files: Any) -> list[str]:
    if data_files is None:
        return []
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, dict):
        return [f for v in data_files.values() for f in _flat_files(v)]
    return [str(f) for f in data_files]
