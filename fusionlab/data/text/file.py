"""A user's labelled texts in a CSV/TSV/JSONL/Parquet file (``data=text_file``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError, choice
from fusionlab.data.splits import SplitSize, carve_test
from fusionlab.data.text.base import TextDataModule
from fusionlab.data.text.checks import check_labels, check_texts
from fusionlab.data.text.tables import column, file_id, read_table


class TextFileDataModule(TextDataModule):
    """Texts and labels from a CSV/TSV/JSONL/Parquet file (``format: auto`` picks by extension).

    ``test_path`` gives a separate test file with the same columns; without it a stratified
    ``test_size`` part (a fraction below 1, or a count) is carved out of ``path``, fixed by
    ``split_seed``. Rows are counted from 0, header excluded, in error messages.
    """

    defaults = {"val_size": 0.1, "min_freq": 2, "max_length": 200}

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        label_column: str = "label",
        test_path: str | None = None,
        test_size: SplitSize = 0.2,
        format: choice("auto", "csv", "tsv", "jsonl", "parquet") = "auto",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.path, self.test_path = path, test_path
        self.text_column, self.label_column = text_column, label_column
        self.test_size, self.format = test_size, format

    @property
    def source(self) -> str:
        return f"'{self.path}' (column '{self.label_column}')"

    def source_id(self) -> dict[str, Any]:
        files = {}
        for key, p in (("data.path", self.path), ("data.test_path", self.test_path)):
            if p is not None:
                if not Path(p).is_file():
                    raise ConfigError(key, f"no file at '{p}'")
                files[key] = file_id(Path(p))
        return {"files": files, "columns": [self.text_column, self.label_column], "format": self.format,
                "test_size": None if self.test_path else self.test_size}

    def _read(self, path: str, key: str) -> tuple[list[str], np.ndarray]:
        frame = read_table(path, self.format, key)
        where = f"'{path}'"
        texts = column(frame, self.text_column, where, self.text_key)
        labels = column(frame, self.label_column, where, self.label_key)
        return check_texts(texts, where, self.text_key), check_labels(labels, where, self.label_key)

    def load_texts(self) -> dict[str, Any]:
        texts, labels = self._read(self.path, "data.path")
        if self.test_path is not None:
            test_texts, test_labels = self._read(self.test_path, "data.test_path")
            return {"texts_train": texts, "labels_train": labels, "texts_test": test_texts, "labels_test": test_labels}
        train, test = carve_test(labels.astype(str), self.test_size, self.split_seed, "data.test_size",
                                 f"'{self.path}'")
        return {"texts_train": [texts[i] for i in train], "labels_train": labels[train],
                "texts_test": [texts[i] for i in test], "labels_test": labels[test]}
