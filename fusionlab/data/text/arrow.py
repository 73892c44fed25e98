"""Labelled texts larger than memory, read from Arrow files (``data=text_arrow data.path=<dataset>``).

``path`` is a folder written by ``datasets``' ``save_to_disk`` (a ``Dataset``, or a ``DatasetDict``
whose splits are ``split_train`` / ``split_test``), an ``.arrow`` file (Arrow IPC, as ``datasets``
writes them) or a ``.parquet`` file. No text list is ever held whole:

1. the label column is read (one value per row, kept in memory) and the test / validation rows are
   carved exactly as ``data=text_file`` carves them;
2. the vocabulary is fitted in one streaming pass over the training rows only, ``chunk_rows`` texts
   at a time (the same :class:`~fusionlab.data.tokenize.Tokenizer`, so the same vocabulary);
3. every row's token ids are written chunk by chunk into an int32 ``.npy`` file under
   ``data_dir/text/<class>-<hash of every argument that changes them>/`` (checksummed; a second run
   with the same data and settings reuses it);
4. each batch gathers its rows from that file memory-mapped (:class:`~fusionlab.data.memmap.MemmapRows`);
   masks come from one length per row (:class:`~fusionlab.data.memmap.LengthMask`, equal to ``ids != 0``).

Arrow IPC files are memory-mapped here with :mod:`mmap` (not through ``datasets``' own map), so the
pages read are dropped from the process after each chunk (:func:`~fusionlab.data.memmap.release`):
the resident set stays near one chunk whatever the file size. Parquet is read in batches.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusionlab.config.schema import ConfigError, PositiveInt
from fusionlab.data.cache import load_cached, save_cached
from fusionlab.data.describe import describe_arrays
from fusionlab.data.labels import fit_classes, label_indices
from fusionlab.data.memmap import LengthMask, MemmapRows, release
from fusionlab.data.npz import _absolute
from fusionlab.data.splits import SplitSize, carve_test, carve_validation
from fusionlab.data.text.base import TextDataModule
from fusionlab.data.text.checks import check_labels, is_missing
from fusionlab.data.text.tables import file_id
from fusionlab.data.tokenize import PAD_ID, UNK_ID, Tokenizer
from fusionlab.io import atomic_write

log = logging.getLogger("fusionlab")

EXPECTED = ("a folder written by datasets' save_to_disk (a Dataset, or a DatasetDict with its splits), "
            "an .arrow file or a .parquet file")
CUT_CHARS = 8  # encoding reads about this many characters per token slot of a long text (see encode_prefixes)
CHUNK_BYTES = 1 << 23  # at most about this many bytes of text are read into memory at a time
HASH_BYTES = 1 << 24  # bytes read at a time when checksumming the token-id files
_WHITESPACE = re.compile(r"\s")


class ArrowSplit:
    """One split's rows on disk: Arrow IPC files (memory-mapped, pages released after each chunk) or
    a Parquet file (read in batches); ``where`` names it in errors."""

    def __init__(self, files: list[Path], kind: str, where: str) -> None:
        import pyarrow.parquet as pq

        self.files, self.kind, self.where = files, kind, where
        if kind == "parquet":
            meta = pq.ParquetFile(files[0])
            self.schema, self.num_rows = meta.schema_arrow, meta.metadata.num_rows
        else:
            self.schema = _ipc_reader(files[0])[0].schema
            self.num_rows = sum(b.num_rows for f in files for b in _ipc_batches(f))  # message headers only
        self.features = _features(self.schema)

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def id(self) -> list[dict[str, Any]]:
        return [file_id(f) for f in self.files]

    def chunks(self, column: str, size: int) -> Iterator[tuple[int, list[Any]]]:
        """``(first row, values)`` of ``column`` in row order, ``size`` rows at a time, fewer when
        that many rows would hold more than ``CHUNK_BYTES`` (long documents)."""
        start = 0
        for batch, mapped in self._batches(column, size):
            step = max(1, min(size, CHUNK_BYTES * batch.num_rows // max(batch.nbytes, 1)))
            for offset in range(0, batch.num_rows, step):
                values = batch.column(0).slice(offset, step).to_pylist()
                if mapped is not None:
                    release(mapped)
                yield start, values
                start += len(values)

    def _batches(self, column: str, size: int) -> Iterator[tuple[Any, mmap.mmap | None]]:
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            for f in self.files:
                file = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
                meta = file.metadata
                row_bytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
                rows = max(1, min(size, CHUNK_BYTES * meta.num_rows // max(row_bytes, 1)))
                for batch in file.iter_batches(batch_size=rows, columns=[column]):
                    yield batch, None
            return
        for f in self.files:
            index = self.schema.get_field_index(column)
            reader, mapped = _ipc_reader(f)
            for batch in _record_batches(reader):
                yield batch.select([index]), mapped
            release(mapped)


def _ipc_reader(file: Path) -> tuple[Any, mmap.mmap]:
    """An Arrow IPC reader (stream format, as ``datasets`` writes; or file format) over ``file``
    memory-mapped by :mod:`mmap`, whose pages :func:`release` can drop."""
    import pyarrow as pa

    with open(file, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    buffer = pa.py_buffer(mapped)
    try:
        return pa.ipc.open_stream(buffer), mapped
    except pa.ArrowInvalid:
        return pa.ipc.open_file(buffer), mapped


def _record_batches(reader: Any) -> Iterator[Any]:
    if hasattr(reader, "num_record_batches"):  # IPC file format
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        yield from reader


def _ipc_batches(file: Path) -> Iterator[Any]:
    reader, mapped = _ipc_reader(file)
    yield from _record_batches(reader)
    release(mapped)


def _features(schema: Any) -> Any:
    """The ``datasets`` features stored in the schema (ClassLabel names), or None."""
    try:
        from datasets import Features

        return Features.from_arrow_schema(schema)
    except Exception:  # no or unreadable Hugging Face metadata: plain Arrow types
        return None


def encode_prefixes(tokenizer: Tokenizer, texts: list[str], length: int) -> np.ndarray:
    """``tokenizer.encode(texts, length)``, exactly, reading only the start of long texts.

    A text longer than ``CUT_CHARS * length`` characters is cut at the first whitespace from there:
    normalisation is per character (lower-casing looks ahead only up to a whitespace) and no token
    spans a whitespace, so the tokens of the cut text are the first tokens of the whole text. Rows
    whose cut text gave fewer than ``length`` tokens are encoded again from the whole text."""
    limit = CUT_CHARS * length
    cut = []
    for text in texts:
        found = _WHITESPACE.search(text, limit) if len(text) > limit else None
        cut.append(text[:found.start()] if found else text)
    ids = tokenizer.encode(cut, length)
    redo = [i for i, (text, short) in enumerate(zip(texts, cut)) if short is not text
            and (ids[i, -1] == PAD_ID or (length == 1 and ids[i, 0] == UNK_ID))]
    if redo:
        ids[redo] = tokenizer.encode([texts[i] for i in redo], length)
    return ids


class ArrowTextDataModule(TextDataModule):
    """Labelled texts from Arrow on disk, larger than memory (see the module docstring).

    Splits, classes, vocabulary and token ids are those of ``data=text_file`` on the same rows and
    settings (tested). The test split: ``split_test`` of a ``DatasetDict`` folder, or ``test_path``
    (another dataset folder, ``.arrow`` or ``.parquet``), or else a stratified ``test_size`` part of
    the training rows fixed by ``split_seed``. Every text must be a non-empty string (an error names
    the row); ``subwords`` is not available here (it would hold every text's sub-words in memory).
    """

    defaults = {"val_size": 0.1, "min_freq": 2, "max_length": 200}

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        label_column: str = "label",
        split_train: str = "train",
        split_test: str | None = "test",
        test_path: str | None = None,
        test_size: SplitSize = 0.2,
        chunk_rows: PositiveInt = 1000,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if self.subwords is not None:
            raise ConfigError("data.subwords", "data=text_arrow reads texts in chunks and keeps no sub-word inputs; "
                              "use data=text_file or data=text_hf with a pretrained encoder")
        self.path = _absolute(path)
        self.test_path = _absolute(test_path) if test_path is not None else None
        self.text_column, self.label_column = text_column, label_column
        self.split_train, self.split_test = split_train, split_test
        self.test_size, self.chunk_rows = test_size, chunk_rows
        self._sources: tuple[ArrowSplit, ArrowSplit | None] | None = None
        self.unknown: dict[str, int] = {}

    @property
    def source(self) -> str:
        return f"'{self.path}' (column '{self.label_column}')"

    # -- where the rows are ----------------------------------------------------------------------
    def sources(self) -> tuple[ArrowSplit, ArrowSplit | None]:
        """The training rows and, when the data has them, the test rows (else None: carved)."""
        if self._sources is None:
            train, test = _open(self.path, "data.path", self.split_train, self.split_test)
            if self.test_path is not None:
                if test is not None:
                    raise ConfigError("data.test_path", f"'{self.path}' already has a test split "
                                      f"'{self.split_test}'; give test_path or split_test, not both")
                test, _ = _open(self.test_path, "data.test_path", self.split_train, None)
            for split in (s for s in (train, test) if s is not None):
                self._check_columns(split)
            self._sources = (train, test)
        return self._sources

    def _check_columns(self, split: ArrowSplit) -> None:
        import pyarrow as pa

        for key, col in ((self.text_key, self.text_column), (self.label_key, self.label_column)):
            if col not in split.column_names:
                raise ConfigError(key, f"'{col}' is not a column of {split.where}; columns present: "
                                  f"{split.column_names}")
        kind = split.schema.field(self.text_column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or getattr(pa.types, "is_string_view", lambda _: False)(kind)):
            first = next(split.chunks(self.text_column, 1), (0, [None]))[1][0]
            raise ConfigError(self.text_key, f"row 0 of {split.where} holds {first!r} ({kind}), not a string: "
                              f"column '{self.text_column}' must hold the texts")

    def source_id(self) -> dict[str, Any]:
        train, test = self.sources()
        return {"format": "arrow-ids-1", "train": train.id(), "test": None if test is None else test.id(),
                "columns": [self.text_column, self.label_column], "splits": [self.split_train, self.split_test],
                "test_size": None if test is not None else self.test_size}

    # -- reading ----------------------------------------------------------------------------------
    def _labels(self, split: ArrowSplit) -> np.ndarray:
        values: list[Any] = []
        for _, chunk in split.chunks(self.label_column, self.chunk_rows):
            values.extend(chunk)
        names = getattr(split.features[self.label_column], "names", None) if split.features else None
        if names:  # ClassLabel: its names, not its integer codes
            values = [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in values]
        return check_labels(values, split.where, self.label_key)

    def _texts(self, split: ArrowSplit, rows: np.ndarray | None = None) -> Iterator[tuple[int, list[str]]]:
        """``(first row, texts)`` chunks of every row (``rows``: sorted, only those), each text checked."""
        for start, chunk in split.chunks(self.text_column, self.chunk_rows):
            for i, t in enumerate(chunk):
                if is_missing(t) or not isinstance(t, str) or not t.strip():
                    raise ConfigError(self.text_key, f"row {start + i} of {split.where} has an empty text "
                                      "(rows counted from 0); every example needs a non-empty text")
            if rows is None:
                yield start, chunk
                continue
            lo, hi = np.searchsorted(rows, [start, start + len(chunk)])
            yield start, [chunk[r - start] for r in rows[lo:hi].tolist()]

    # -- the token-id cache ------------------------------------------------------------------------
    def cache_folder(self) -> Path:
        return self.cache_path().with_suffix("")

    def _build(self, folder: Path) -> dict[str, np.ndarray]:
        """Labels, carve-outs, the vocabulary (training rows only) and the token-id files, written to ``folder``."""
        train, test = self.sources()
        labels = {"train": self._labels(train)}
        if test is None:
            rows_train, rows_test = carve_test(labels["train"].astype(str), self.test_size, self.split_seed,
                                               "data.test_size", train.where)
        else:
            labels["test"] = self._labels(test)
            rows_train, rows_test = np.arange(train.num_rows), np.arange(test.num_rows)
        y_train = labels["train"][rows_train]
        y_test = labels["test" if test is not None else "train"][rows_test]
        classes = sorted(set(y_train.tolist()), key=str)
        if len(classes) < 2:
            raise ConfigError(self.label_key, f"{self.source} has a single class ({classes[0]!r}) in the training "
                              "split; a classifier needs at least 2")
        known = set(classes)
        for row, v in enumerate(y_test.tolist()):
            if v not in known:
                where = test.where if test is not None else self.source
                raise ConfigError(self.label_key, f"test row {int(rows_test[row]) if test is None else row} of "
                                  f"{where} has class {v!r}, which does not occur in the training split "
                                  f"(classes: {classes})")
        self.classes = fit_classes(y_train, self.source)
        train_idx, _ = carve_validation(label_indices(y_train, self.classes, self.source, "train"), self.val_size,
                                        self.classes, self.split_seed, self.source)
        fit_rows = np.sort(rows_train[train_idx])
        self.tokenizer.fit(t for _, chunk in self._texts(train, fit_rows) for t in chunk)  # training part only
        meta: dict[str, np.ndarray] = {"tokens": np.array(self.tokenizer.tokens, dtype=str),
                                       "rows_train": rows_train, "rows_test": rows_test}
        for name, split in (("train", train), ("test", test)):
            if split is None:
                continue
            lengths, unknown, digest = self._write_ids(split, folder / f"ids_{name}.npy")
            meta.update({f"labels_{name}": labels[name], f"lengths_{name}": lengths, f"unknown_{name}": unknown,
                         f"sha256_{name}": np.array(digest)})
        save_cached(folder / "meta.npz", meta)
        return meta

    def _write_ids(self, split: ArrowSplit, path: Path) -> tuple[np.ndarray, np.ndarray, str]:
        """Every row's token ids as an int32 ``(rows, max_length)`` ``.npy`` written chunk by chunk;
        returns the real-token count and the unknown-token count per row, and the file's SHA-256."""
        length = self.tokenizer.max_length
        lengths = np.zeros(split.num_rows, dtype=np.int32)
        unknown = np.zeros(split.num_rows, dtype=np.int32)
        digest = hashlib.sha256()
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int32)), "fortran_order": False,
                  "shape": (split.num_rows, length)}
        with atomic_write(path) as f:
            np.lib.format.write_array_header_1_0(f, header)
            for start, texts in self._texts(split):
                ids = encode_prefixes(self.tokenizer, texts, length).astype(np.int32)
                lengths[start:start + len(ids)] = (ids != PAD_ID).sum(axis=1)
                unknown[start:start + len(ids)] = (ids == UNK_ID).sum(axis=1)
                data = ids.tobytes()
                digest.update(data)
                f.write(data)
        return lengths, unknown, digest.hexdigest()

    def _load(self, folder: Path) -> dict[str, np.ndarray] | None:
        """The cache in ``folder`` when its metadata and every token-id file match their checksums."""
        meta = load_cached(folder / "meta.npz")
        if meta is None:
            return None
        for name in ("train", "test"):
            if f"sha256_{name}" not in meta:
                continue
            path = folder / f"ids_{name}.npy"
            if not path.is_file() or _sha256_of_data(path) != str(meta[f"sha256_{name}"]):
                log.warning("token-id cache %s is missing or does not match its checksum; rebuilding it", path)
                return None
        return meta

    # -- Lightning hook ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        start = time.perf_counter()
        folder = self.cache_folder()
        meta = self._load(folder)
        self.from_cache = meta is not None
        if meta is None:
            meta = self._build(folder)
        self.tokenizer.set_vocabulary(meta["tokens"].tolist())
        self.tokens, self.vocab_size = self.tokenizer.tokens, self.tokenizer.vocab_size
        self.length = length = self.tokenizer.max_length
        ids = {"train": np.load(folder / "ids_train.npy", mmap_mode="r")}
        test = "test" if "sha256_test" in meta else "train"  # the test rows: their own file, or carved
        ids["test"] = np.load(folder / f"ids_{test}.npy", mmap_mode="r") if test == "test" else ids["train"]
        rows_train, rows_test = meta["rows_train"], meta["rows_test"]
        y_train = meta["labels_train"][rows_train]
        self.classes = fit_classes(y_train, self.source)
        labels = label_indices(y_train, self.classes, self.source, "train")
        labels_test = label_indices(meta[f"labels_{test}"][rows_test], self.classes, self.source, "test")
        train_idx, val_idx = carve_validation(labels, self.val_size, self.classes, self.split_seed, self.source)
        self.indices = {"train": train_idx, "val": val_idx}
        parts = {"train": train_idx, "val": val_idx} if self.has_val else {"train": train_idx}
        lengths, unknown = meta["lengths_train"], meta["unknown_train"]
        for name, idx in parts.items():
            rows = rows_train[idx]
            self.splits[name] = (MemmapRows(ids["train"], rows, dtype=torch.long), torch.as_tensor(labels[idx]),
                                 LengthMask(lengths[rows], length))
            self.unknown[name] = int(unknown[rows].sum())
        self.splits["test"] = (MemmapRows(ids["test"], rows_test, dtype=torch.long), torch.as_tensor(labels_test),
                               LengthMask(meta[f"lengths_{test}"][rows_test], length))
        self.unknown["test"] = int(meta[f"unknown_{test}"][rows_test].sum())
        self.load_seconds = time.perf_counter() - start
        log.info("text data %s: %d tokens in the vocabulary, %s in %.2f s", self.source, self.vocab_size,
                 "token ids from the cache" if self.from_cache else "tokenised and cached", self.load_seconds)

    def describe(self) -> dict[str, Any]:
        """As the other text datasets describe themselves; token statistics from the per-row counts."""
        out = describe_arrays(self)
        out.pop("stats", None)
        out.pop("impute", None)
        out["path"] = str(self.path)
        out["preprocessing"] = "tokenizer"
        out["tokenizer"] = self.tokenizer.config()
        lengths = {k: v[2].sum(dim=1) for k, v in self.splits.items()}
        out["mean_tokens"] = {k: round(float(v.float().mean()), 2) for k, v in lengths.items()}
        out["at_max_length"] = {k: round(float((v == self.length).float().mean()), 4) for k, v in lengths.items()}
        out["unknown_fraction"] = {k: round(self.unknown[k] / max(int(v.sum()), 1), 4) for k, v in lengths.items()}
        out["vocabulary"] = list(self.tokenizer.tokens)
        out["token_cache"] = {"path": str(self.cache_folder()), "reused": self.from_cache}
        return out


def _open(path: Path, key: str, split_train: str, split_test: str | None) -> tuple[ArrowSplit, ArrowSplit | None]:
    """The training rows at ``path`` and its own test rows (a DatasetDict's ``split_test``) or None."""
    suffix = path.suffix.lower()
    if path.is_file() and suffix in (".arrow", ".parquet", ".pq"):
        kind = "parquet" if suffix != ".arrow" else "ipc"
        try:
            return ArrowSplit([path], kind, f"'{path}'"), None
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(key, f"cannot read '{path}' as Arrow ({reason}); expected {EXPECTED}") from None
    if not path.is_dir():
        raise ConfigError(key, f"no Arrow dataset at '{path}'; expected {EXPECTED}")
    try:
        import datasets
    except ImportError:
        raise ConfigError("data", "data=text_arrow needs the datasets package: pip install 'fusionlab[data]'") from None
    try:
        loaded = datasets.load_from_disk(str(path))  # reads the folder's json files; the rows stay on disk
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(key, f"'{path}' is not a dataset folder ({reason}); expected {EXPECTED}") from None
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        if split_train not in loaded:
            raise ConfigError("data.split_train", f"'{path}' has no split '{split_train}' (splits: {names})")
        if split_test is not None and split_test not in loaded:
            raise ConfigError("data.split_test", f"'{path}' has no split '{split_test}' (splits: {names}); "
                              "set data.split_test=null to carve test_size out of the training split")
        train = _split_of(loaded[split_train], f"split '{split_train}' of '{path}'")
        test = _split_of(loaded[split_test], f"split '{split_test}' of '{path}'") if split_test is not None else None
        return train, test
    return _split_of(loaded, f"'{path}'"), None


def _split_of(ds: Any, where: str) -> ArrowSplit:
    files = [Path(f["filename"]) for f in ds.cache_files]
    if not files:
        raise ConfigError("data.path", f"{where} is held in memory, not in Arrow files; save it with save_to_disk")
    try:
        split = ArrowSplit(files, "ipc", where)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError("data.path", f"cannot read the Arrow files of {where} ({reason})") from None
    if split.num_rows != ds.num_rows:
        raise ConfigError("data.path", f"{where}: its Arrow files hold {split.num_rows} rows but the dataset "
                          f"{ds.num_rows} (an indices mapping); save it again with save_to_disk")
    return split


def _sha256_of_data(path: Path) -> str:
    """SHA-256 of an ``.npy`` file's array bytes (after its header), read in pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        while block := f.read(HASH_BYTES):
            digest.update(block)
    return digest.hexdigest()
