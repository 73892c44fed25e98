"""In-memory datamodules: arrays held as tensors, batches sliced by index (no per-sample collate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fusionlab.config.schema import ConfigError, NonNegativeInt, PositiveInt, choice


class TensorBatches(Dataset):
    """Tensors that a DataLoader indexes a whole batch at a time (``__getitems__``), so a batch is
    one fancy-indexing op instead of a per-sample collate. Works with any sampler Lightning puts
    in (shuffling, sequential for ``overfit_batches``, distributed)."""

    def __init__(self, *tensors: Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(t[index] for t in self.tensors)


def _as_batch(batch: Any) -> Any:
    """The batch as ``TensorBatches.__getitems__`` made it: already stacked."""
    return batch


class ArrayDataModule(pl.LightningDataModule):
    """Base for datasets that fit in memory as ``(N, C, L)`` arrays with integer labels.

    Subclasses implement :meth:`load_arrays`. The validation part is carved from the training
    split with ``split_seed`` (the same for every run seed); standardisation statistics come
    from the training part alone.
    """

    modality = "series"

    def __init__(
        self,
        batch_size: PositiveInt = 128,
        eval_batch_size: PositiveInt = 1000,
        val_size: NonNegativeInt = 500,
        split_seed: int = 0,
        standardize: choice("none", "global", "channel") = "global",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.standardize, self.seed = val_size, split_seed, standardize, seed
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.stats: dict[str, list[float]] = {}

    # -- to implement -------------------------------------------------------------------------
    def load_arrays(self) -> dict[str, np.ndarray]:
        """Return ``x_train, y_train, x_test, y_test``; x as ``(N, C, L)`` or ``(N, L)``."""
        raise NotImplementedError

    # -- shape information used to build the model --------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int]:
        """``(channels, length)`` of one example."""
        x = self.splits["train"][0]
        return int(x.shape[1]), int(x.shape[2])

    @property
    def num_classes(self) -> int:
        return self._num_classes

    # -- Lightning hooks ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        arrays = self.load_arrays()
        x_train, y_train = _as_3d(arrays["x_train"]), np.asarray(arrays["y_train"])
        x_test, y_test = _as_3d(arrays["x_test"]), np.asarray(arrays["y_test"])
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            _check_split(split, x, y)
        if self.val_size >= len(x_train):
            raise ConfigError("data.val_size", f"must be smaller than the training split ({len(x_train)}), "
                              f"got {self.val_size}")
        order = np.random.default_rng(self.split_seed).permutation(len(x_train))
        val_idx, train_idx = order[: self.val_size], order[self.val_size :]
        parts = {
            "train": (x_train[train_idx], y_train[train_idx]),
            "val": (x_train[val_idx], y_train[val_idx]),
            "test": (x_test, y_test),
        }
        mean, std = self._fit_stats(parts["train"][0])
        self._num_classes = int(max(y_train.max(), y_test.max())) + 1
        for name, (x, y) in parts.items():
            x = (x - mean) / std
            self.splits[name] = (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))

    def _fit_stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std from the training part only."""
        if self.standardize == "none":
            mean, std = np.zeros((1, 1, 1)), np.ones((1, 1, 1))
        elif self.standardize == "channel":
            mean, std = x.mean(axis=(0, 2), keepdims=True), x.std(axis=(0, 2), keepdims=True)
        else:
            mean, std = x.mean().reshape(1, 1, 1), x.std().reshape(1, 1, 1)
        std = np.where(std > 0, std, 1.0)
        self.stats = {"mean": mean.ravel().tolist(), "std": std.ravel().tolist()}
        return mean, std

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        x, y = self.splits[split]
        size = self.batch_size if split == "train" else self.eval_batch_size
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(TensorBatches(x, y), batch_size=size, shuffle=shuffle, generator=generator,
                          collate_fn=_as_batch)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def describe(self) -> dict[str, Any]:
        """Sizes and shapes, saved with the run."""
        return {
            "modality": self.modality,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "sizes": {k: len(v[1]) for k, v in self.splits.items()},
            "standardize": self.standardize,
            "stats": self.stats,
        }


def _check_split(split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Labels are integer class indices >= 0, one per example; inputs are finite."""
    if len(x) != len(y):
        raise ConfigError("data", f"{split} split has {len(x)} inputs but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ConfigError("data", f"{split} labels must be integer class indices >= 0")
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if bad.size:
        raise ConfigError("data", f"{split} split has non-finite values (NaN/inf) in row {int(bad[0])}")


def _as_3d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:, None, :] if x.ndim == 2 else x
