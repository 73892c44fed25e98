"""Arrays larger than memory: a folder of ``.npy`` files read memory-mapped (``data=npy data.path=<folder>``).

``x.npy`` is opened with ``np.load(mmap_mode="r")`` and never read whole: the preprocessing
statistics are fitted in one streaming pass over row chunks (``chunk_rows``), and every batch
gathers its rows from the map and scales them on the fly. After each read the map's pages are
released from the process (``madvise(MADV_DONTNEED)``: they stay in the kernel's page cache), so
the resident set stays near one chunk or batch whatever the file size. Labels (``y.npy``) are
loaded: one number per example.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusionlab.config.schema import ConfigError, NonNegativeFloat, PositiveInt, choice
from fusionlab.data.labels import fit_classes, label_indices
from fusionlab.data.npz import NPZDataModule
from fusionlab.data.preprocessing import MinMax, NoScaling, Preprocessor, Standardize
from fusionlab.data.splits import carve_test, carve_validation

GATHER_ROWS = 32  # rows read from the map between two releases of its pages
EXPECTED = ("x.npy (N, L), (N, C, L) or (N, C, H, W) and y.npy (N,) (required); x_test.npy, y_test.npy "
            "(a fixed test split)")


def release(array: np.ndarray) -> None:
    """Drop the pages of the memory map behind ``array`` from this process's resident set."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)


class MemmapRows:
    """The rows ``rows`` of a memory-mapped array, read (and scaled by ``preprocessing``, when given)
    per batch as a ``dtype`` tensor: what :class:`~fusionlab.data.loaders.TensorBatches` indexes in
    place of an in-memory tensor. Token ids (``data=text_arrow``) are read unscaled as ``torch.long``."""

    def __init__(self, array: np.ndarray, rows: np.ndarray, preprocessing: Preprocessor | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.array, self.rows, self.preprocessing = array, np.asarray(rows, dtype=np.int64), preprocessing
        self.shape = (len(self.rows), *array.shape[1:])
        self.dtype = dtype
        self.numpy_dtype = torch.empty((), dtype=dtype).numpy().dtype

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> Tensor:
        wanted = self.rows[np.asarray(index, dtype=np.int64)]
        scalar = wanted.ndim == 0
        wanted = np.atleast_1d(wanted)
        order = np.argsort(wanted, kind="stable")  # read the file forwards
        chunk = np.empty((len(wanted), *self.array.shape[1:]), dtype=self.array.dtype)
        for start in range(0, len(order), GATHER_ROWS):  # a fault may map a whole large folio (~1 MB) of the
            part = order[start:start + GATHER_ROWS]       # file: release the map every GATHER_ROWS rows
            chunk[part] = self.array[wanted[part]]
            release(self.array)
        if self.preprocessing is not None:
            chunk = self.preprocessing.transform(chunk)
        out = torch.from_numpy(np.ascontiguousarray(chunk, dtype=self.numpy_dtype))
        return out[0] if scalar else out


class LengthMask:
    """The padding masks ``(n, length)`` of rows whose first ``lengths[i]`` steps are real, made per
    batch from one number per row (for padded rows read per batch by :class:`MemmapRows`).
    ``mask.sum(dim=1)`` is ``lengths`` (what length bucketing and ``describe`` read)."""

    def __init__(self, lengths: np.ndarray, length: int) -> None:
        self.lengths = torch.as_tensor(np.asarray(lengths, dtype=np.int64))
        self.shape = (len(self.lengths), int(length))
        self.dtype = torch.bool

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: Any) -> Tensor:
        return torch.arange(self.shape[1]) < self.lengths[torch.as_tensor(index)].unsqueeze(-1)

    def sum(self, dim: int) -> Tensor:
        if dim not in (1, -1):
            raise ValueError(f"a LengthMask sums over its steps (dim 1) only, got dim={dim}")
        return self.lengths.clone()


class StreamingStats:
    """One pass over chunks: count, mean and sum of squared deviations (Chan et al.'s pairwise update),
    min and max, over all values (``per: global``) or per channel (axis 1)."""

    def __init__(self, per: str) -> None:
        self.per = per
        self.n: np.ndarray | float = 0.0
        self.mean: np.ndarray | float = 0.0
        self.m2: np.ndarray | float = 0.0
        self.min: np.ndarray | float = np.inf
        self.max: np.ndarray | float = -np.inf

    def update(self, chunk: np.ndarray) -> None:
        axes = tuple(range(chunk.ndim)) if self.per == "global" else (0, *range(2, chunk.ndim))
        x = chunk.astype(np.float64)
        n = np.prod([x.shape[a] for a in axes]) * np.ones_like(x.sum(axis=axes, keepdims=True))
        mean = x.sum(axis=axes, keepdims=True) / n
        m2 = ((x - mean) ** 2).sum(axis=axes, keepdims=True)
        total = self.n + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.n * n / total
        self.n = total
        self.min = np.minimum(self.min, x.min(axis=axes, keepdims=True))
        self.max = np.maximum(self.max, x.max(axis=axes, keepdims=True))

    def fit(self, pre: Preprocessor) -> None:
        """Give ``pre`` (Standardize, MinMax or NoScaling) the statistics its ``fit`` would compute."""
        if isinstance(pre, Standardize):
            std = np.sqrt(self.m2 / self.n)
            pre.mean, pre.std = np.asarray(self.mean), np.where(std > 0, std, 1.0)
        elif isinstance(pre, MinMax):
            pre.min, pre.max = np.asarray(self.min), np.asarray(self.max)


class NPYFolderDataModule(NPZDataModule):
    """A folder of ``.npy`` arrays read memory-mapped, for data larger than memory:

    - ``x.npy``: ``(N, L)``, ``(N, C, L)`` series or ``(N, C, H, W)`` images of equal size, numbers;
    - ``y.npy``: ``(N,)`` labels (numbers or strings);
    - ``x_test.npy``, ``y_test.npy``: a fixed test split; without them a stratified ``test_size`` part
      of ``x`` is held out (seeded by ``split_seed``), exactly as ``data=npz`` does.

    Splits, classes and preprocessing are those of ``data=npz`` on the same arrays (the same rows in
    the same batches); the statistics come from one streaming pass of ``chunk_rows`` rows at a time,
    which also checks every value is finite (an error names the file and row). ``preprocessing``
    may be ``standardize``, ``minmax`` or ``none``; ``impute`` must be ``none``.
    """

    defaults = {"batch_size": 64, "val_size": 0.2}

    def __init__(self, path: str, modality: choice("auto", "series", "image") = "auto",
                 test_size: NonNegativeFloat = 0.2, chunk_rows: PositiveInt = 4096, **options: Any) -> None:
        super().__init__(path, modality=modality, test_size=test_size, **options)
        self.chunk_rows = chunk_rows

    def _open(self, name: str, mmap_mode: str | None) -> np.ndarray:
        file = Path(self.path) / name
        try:
            return np.load(file, mmap_mode=mmap_mode, allow_pickle=False)
        except ValueError as e:
            raise ConfigError("data.path", f"'{file}' holds object (pickled) arrays ({e}); "
                              f"expected {EXPECTED}") from None
        except OSError as e:
            raise ConfigError("data.path", f"'{file}' is not a readable .npy file ({type(e).__name__}); "
                              f"expected {EXPECTED}") from None

    def load_arrays(self) -> dict[str, Any]:
        folder = Path(self.path)
        if not (folder / "x.npy").is_file() or not (folder / "y.npy").is_file():
            raise ConfigError("data.path", f"no x.npy and y.npy in '{folder}'; expected a folder with {EXPECTED}")
        if (folder / "x_test.npy").is_file() != (folder / "y_test.npy").is_file():
            raise ConfigError("data.path", f"'{folder}' has only one of x_test.npy and y_test.npy; "
                              "expected both or neither")
        arrays = {"x": self._open("x.npy", "r"), "y": self._open("y.npy", None)}
        if (folder / "x_test.npy").is_file():
            arrays.update(x_test=self._open("x_test.npy", "r"), y_test=self._open("y_test.npy", None))
        self.modality = self._modality(arrays["x"])
        for key in ("x", "x_test"):
            if key in arrays and arrays[key].ndim == {"series": 2, "image": 3}[self.modality]:
                arrays[key] = arrays[key][:, None]  # one channel; still a view of the map
        for x, y, what in (("x", "y", "x.npy"), ("x_test", "y_test", "x_test.npy")):
            if x in arrays and len(arrays[x]) != len(arrays[y]):
                raise ConfigError("data.path", f"'{folder}': {what} has {len(arrays[x])} rows but its labels "
                                  f"{len(arrays[y])}")
        return arrays

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.impute != "none":
            raise ConfigError("data.impute", f"data=npy reads the arrays in chunks and takes impute=none, "
                              f"got {self.impute}")
        pre = self.preprocessing
        if not isinstance(pre, (Standardize, MinMax, NoScaling)):
            raise ConfigError("data.preprocessing", f"data=npy fits standardize, minmax or none in one streaming pass, "
                              f"got {type(pre).__name__}")
        arrays = self.load_arrays()
        x, y = arrays["x"], np.asarray(arrays["y"])
        if "x_test" in arrays:
            x_test, y_test = arrays["x_test"], np.asarray(arrays["y_test"])
            rows_train, rows_test = np.arange(len(y)), np.arange(len(y_test))
            if x_test.shape[1:] != x.shape[1:]:
                raise ConfigError("data", f"{self.source}: training examples have shape {x.shape[1:]} but test "
                                  f"examples {x_test.shape[1:]}")
        else:
            x_test, y_test = x, y
            rows_train, rows_test = carve_test(y, self.test_size, self.split_seed, "data.test_size", self.source,
                                               label_key="data.path")
        self.classes = fit_classes(y[rows_train], self.source)
        labels_train = label_indices(y[rows_train], self.classes, self.source, "train")
        labels_test = label_indices(y_test[rows_test], self.classes, self.source, "test")
        train_idx, val_idx = carve_validation(labels_train, self.val_size, self.classes, self.split_seed, self.source)
        self.indices = {"train": train_idx, "val": val_idx}
        self._fit_streaming(x, np.sort(rows_train[train_idx]), "x.npy")
        if "x_test" in arrays:
            self._fit_streaming(x_test, None, "x_test.npy")  # finiteness only
        self.stats = pre.stats()
        self.length = int(x.shape[-1])
        parts = {"train": train_idx, "val": val_idx} if self.has_val else {"train": train_idx}
        for name, idx in parts.items():
            self.splits[name] = (MemmapRows(x, rows_train[idx], pre), torch.as_tensor(labels_train[idx]))
        self.splits["test"] = (MemmapRows(x_test, rows_test, pre), torch.as_tensor(labels_test))

    def _fit_streaming(self, x: np.ndarray, fit_rows: np.ndarray | None, name: str) -> None:
        """One pass over ``x`` in chunks: every value finite (error names the row), and the
        preprocessing statistics of the rows ``fit_rows`` (sorted; None: check only)."""
        stats = StreamingStats(getattr(self.preprocessing, "per", "global"))
        for start in range(0, len(x), self.chunk_rows):
            chunk = np.asarray(x[start:start + self.chunk_rows])
            release(x)
            finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if not finite.all():
                row = start + int(np.argmin(finite))
                raise ConfigError("data.path", f"'{Path(self.path) / name}' row {row} holds NaN or infinite values; "
                                  "expected finite numbers (data=npy takes impute=none)")
            if fit_rows is not None:
                lo, hi = np.searchsorted(fit_rows, [start, start + len(chunk)])
                if hi > lo:
                    stats.update(chunk[fit_rows[lo:hi] - start])
        if fit_rows is not None:
            stats.fit(self.preprocessing)
