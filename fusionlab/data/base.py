"""In-memory datamodules: arrays held as tensors, batches sliced by index (no per-sample collate)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fusionlab.config.schema import ConfigError, NonNegativeFloat, PositiveInt, choice
from fusionlab.data.buckets import LengthBuckets
from fusionlab.data.preprocessing import Preprocessor, Standardize
from fusionlab.data.spec import InputSpec

log = logging.getLogger("fusionlab")


class TensorBatches(Dataset):
    """Tensors that a DataLoader indexes a whole batch at a time (``__getitems__``), so a batch is
    one fancy-indexing op instead of a per-sample collate. Works with any sampler Lightning puts
    in (shuffling, sequential for ``overfit_batches``, distributed).

    ``trim=True`` (padded data ``(x, y, mask)``): each batch is cut to its longest real example,
    so short texts or series do not pay for the longest one in the dataset. Padding sits at the
    end of each example and every branch ignores it, so the cut changes no prediction.
    """

    def __init__(self, *tensors: Tensor, trim: bool = False) -> None:
        self.tensors = tensors
        self.trim = trim and len(tensors) == 3

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices)
        batch = tuple(t[index] for t in self.tensors)
        if not self.trim:
            return batch
        x, y, mask = batch
        steps = mask.any(dim=0).nonzero()
        n = int(steps[-1]) + 1 if len(steps) else 1
        return x[..., :n], y, mask[:, :n]


def _as_batch(batch: Any) -> Any:
    """The batch as ``TensorBatches.__getitems__`` made it: already stacked."""
    return batch


class ArrayDataModule(pl.LightningDataModule):
    """Base for datasets that fit in memory, with labels of any kind.

    Subclasses implement :meth:`load_arrays` and set ``modality`` (``series``, ``image``, ``text``;
    text subclasses also set ``vocab_size`` and optionally ``tokens``). What :meth:`setup` does:

    - unequal-length examples (a list of ``(C, L_i)`` arrays, or arrays with ``mask_train`` /
      ``mask_test``) are zero-padded to the longest and batches become ``(x, y, mask)``;
    - labels (strings, any integers) become indices ``0..K-1`` in sorted order of the training
      labels (``classes`` in :meth:`describe`); a test label not seen in training is an error;
    - NaN values are an error naming the split and row, unless ``impute`` fills them;
    - the validation part is a stratified carve-out of the training split (``val_size``: a count,
      a fraction in (0, 1), or 0 for none), fixed by ``split_seed`` whatever the run seed;
    - ``preprocessing`` (default: global standardisation) is fitted on the training part alone
      (padding excluded) and applied to every split; text is left as token ids;
    - ``bucket_by_length`` (padded data): training batches hold examples of similar length
      (:class:`~fusionlab.data.buckets.LengthBuckets`), so little padding is left after trimming.
    """

    modality = "series"
    vocab_size: int | None = None  # text: number of token ids (0 = padding)
    tokens: tuple[str, ...] | None = None  # text: index -> token string
    trim_batches = True  # padded data: cut each batch to its longest real example (see TensorBatches)

    def __init__(
        self,
        batch_size: PositiveInt = 128,
        eval_batch_size: PositiveInt = 1000,
        val_size: NonNegativeFloat = 500,
        split_seed: int = 0,
        preprocessing: Preprocessor | None = None,
        impute: choice("none", "zero", "mean", "linear") = "none",
        seed: int = 0,
        bucket_by_length: bool = False,
    ) -> None:
        super().__init__()
        self.bucket_by_length = bucket_by_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.preprocessing = preprocessing if preprocessing is not None else Standardize("global")
        self.impute = impute
        self.splits: dict[str, tuple[Tensor, ...]] = {}
        self.indices: dict[str, np.ndarray] = {}  # rows of the original training split in train / val
        self.classes: list[Any] = []
        self.stats: dict[str, Any] = {}
        self._train_generator: torch.Generator | None = None
        self._generator_state: Tensor | None = None

    # -- to implement -------------------------------------------------------------------------
    def load_arrays(self) -> dict[str, Any]:
        """Return ``x_train, y_train, x_test, y_test`` and optionally ``mask_train, mask_test``.

        ``x``: ``(N, C, L)`` or ``(N, L)`` (series), ``(N, C, H, W)`` (image), ``(N, L)`` int ids
        (text), or a list of per-example ``(C, L_i)`` arrays of unequal length. ``y``: any labels.
        """
        raise NotImplementedError

    @property
    def source(self) -> str:
        """How errors name the data (a dataset or a file)."""
        return type(self).__name__

    # -- shape information used to build the model --------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        """What one example is, for the model (see :class:`~fusionlab.data.spec.InputSpec`)."""
        x = self.splits["train"][0]
        return InputSpec(self.modality, tuple(int(d) for d in x.shape[1:]), vocab_size=self.vocab_size,
                         masked=self.masked, tokens=self.tokens)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example (``(channels, length)`` for series); kept for compatibility."""
        return self.input_spec.shape

    @property
    def masked(self) -> bool:
        """Batches carry a padding mask: ``(x, y, mask)``."""
        return len(self.splits["train"]) > 2

    @property
    def has_val(self) -> bool:
        """False with ``val_size: 0``: no validation loader (monitor a training metric instead)."""
        return self.val_size != 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # -- Lightning hooks ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        arrays = self.load_arrays()
        x, masks, y = {}, {}, {}
        for split in ("train", "test"):
            for key in (f"x_{split}", f"y_{split}"):
                if key not in arrays:
                    raise ConfigError("data", f"{self.source}: no '{key}' array")
            x[split], masks[split] = self._stack(split, arrays[f"x_{split}"], arrays.get(f"mask_{split}"))
            dims = {"series": 3, "image": 4, "text": 2}[self.modality]
            if x[split].ndim != dims:
                raise ConfigError("data", f"{self.source}: {split} inputs have shape {x[split].shape}, expected "
                                  f"{dims} dimensions for {self.modality} data")
            y[split] = np.asarray(arrays[f"y_{split}"])
            if len(x[split]) != len(y[split]):
                raise ConfigError("data", f"{self.source}: {split} split has {len(x[split])} inputs but "
                                  f"{len(y[split])} labels")
            if len(y[split]) == 0:
                raise ConfigError("data", f"{self.source}: the {split} split is empty")
        x, masks = self._common_length(x, masks)
        self.classes = self._fit_labels(y["train"])
        labels = {split: self._label_indices(split, y[split]) for split in y}
        if self.modality != "text":
            for split in x:
                self._check_finite(split, x[split], masks[split])
        train_idx, val_idx = self._carve(labels["train"])
        self.indices = {"train": train_idx, "val": val_idx}
        parts = {"train": train_idx, "val": val_idx} if self.has_val else {"train": train_idx}
        data = {name: (x["train"][i], labels["train"][i], _take(masks["train"], i)) for name, i in parts.items()}
        data["test"] = (x["test"], labels["test"], masks["test"])
        if self.modality != "text":
            data = self._impute_and_scale(data)
        for name, (xs, ys, ms) in data.items():
            dtype = torch.long if self.modality == "text" else torch.float32
            tensors = (torch.as_tensor(xs, dtype=dtype), torch.as_tensor(ys, dtype=torch.long))
            if ms is not None:
                tensors += (torch.as_tensor(ms, dtype=torch.bool),)
            self.splits[name] = tensors

    # -- steps of setup -------------------------------------------------------------------------
    def _stack(self, split: str, x: Any, mask: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """An array ``(N, ...)`` and its mask (None when every example has the full length)."""
        text = self.modality == "text"
        dtype = np.int64 if text else np.float32
        if isinstance(x, np.ndarray) and x.dtype != object:
            x = np.asarray(x, dtype=dtype)
            if self.modality == "series" and x.ndim == 2:
                x = x[:, None, :]
            if mask is not None:
                mask = np.asarray(mask, dtype=bool)
                if mask.shape != (x.shape[0], x.shape[-1]):
                    raise ConfigError("data", f"{self.source}: mask_{split} has shape {mask.shape}, expected "
                                      f"{(x.shape[0], x.shape[-1])} (examples, steps)")
                x = _zero(x, mask)  # padding is 0 (even where the file had NaN there)
            return x, mask
        items = [np.asarray(a, dtype=dtype) for a in x]
        if not items:
            raise ConfigError("data", f"{self.source}: the {split} split is empty")
        if not text:
            items = [a[None, :] if a.ndim == 1 else a for a in items]
        lead = items[0].shape[:-1]
        for i, a in enumerate(items):
            if a.shape[:-1] != lead:
                raise ConfigError("data", f"{self.source}: {split} row {i} has shape {a.shape}, expected "
                                  f"{lead} before the time axis (as row 0)")
        out, full_mask = pad_to_longest(items, dtype)
        if mask is None and not full_mask.all():
            mask = full_mask
        return out, mask

    def _common_length(self, x: dict[str, np.ndarray], masks: dict[str, np.ndarray | None]
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
        """Pad train and test to the same length when either is padded."""
        shapes = {k: v.shape[1:] for k, v in x.items()}
        if all(m is None for m in masks.values()):
            if shapes["train"] != shapes["test"]:
                raise ConfigError("data", f"{self.source}: training examples have shape {shapes['train']} but "
                                  f"test examples {shapes['test']}")
            return x, masks
        if shapes["train"][:-1] != shapes["test"][:-1]:
            raise ConfigError("data", f"{self.source}: training examples have shape {shapes['train'][:-1]} "
                              f"before the time axis but test examples {shapes['test'][:-1]}")
        length = max(v.shape[-1] for v in x.values())
        for k in x:
            n, steps = len(x[k]), x[k].shape[-1]
            mask = masks[k] if masks[k] is not None else np.ones((n, steps), dtype=bool)
            pad = [(0, 0)] * (x[k].ndim - 1) + [(0, length - steps)]
            x[k], masks[k] = np.pad(x[k], pad), np.pad(mask, [(0, 0), (0, length - steps)])
        return x, masks

    def _fit_labels(self, y: np.ndarray) -> list[Any]:
        """The classes: the distinct training labels, numerically sorted when they are numbers."""
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            row = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ConfigError("data", f"{self.source}: train label in row {row} is {y[row]}, expected a class")
        values = np.unique(y)
        if y.dtype.kind in "USO":
            try:
                values = sorted(values, key=lambda v: float(v))
            except (TypeError, ValueError):
                values = sorted(values, key=str)
        classes = [v.item() if hasattr(v, "item") else v for v in values]
        if len(classes) < 2:
            raise ConfigError("data", f"{self.source}: every training label is {classes[0]!r}; "
                              "classification needs at least 2 classes")
        return classes

    def _label_indices(self, split: str, y: np.ndarray) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.classes)}
        out = np.empty(len(y), dtype=np.int64)
        for row, v in enumerate(y.tolist()):
            if v not in lookup:
                raise ConfigError("data", f"{self.source}: {split} label {v!r} (row {row}) does not occur in the "
                                  f"training split; training classes are {self.classes}")
            out[row] = lookup[v]
        return out

    def _check_finite(self, split: str, x: np.ndarray, mask: np.ndarray | None) -> None:
        """No inf anywhere; NaN only when ``impute`` will fill it."""
        flat = x.reshape(len(x), -1)
        bad = ~np.isfinite(flat) if self.impute == "none" else np.isinf(flat)
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size:
            hint = "" if self.impute != "none" else "; set data.impute=zero|mean|linear to fill NaN values"
            raise ConfigError("data", f"{self.source}: {split} split has non-finite values (NaN/inf) in row "
                              f"{int(rows[0])}{hint}")

    def _carve(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stratified validation rows (sorted) and the remaining training rows."""
        n, v = len(y), self.val_size
        if v == 0:
            return np.arange(n), np.arange(0)
        if v < 1:
            count = max(1, int(round(v * n)))
        elif v != int(v):
            raise ConfigError("data.val_size", f"a count (>= 1) must be whole and a fraction in (0, 1), got {v}")
        else:
            count = int(v)
        if count >= n:
            raise ConfigError("data.val_size", f"must be smaller than the training split ({n}), got {v}")
        counts = np.bincount(y, minlength=len(self.classes))
        k = len(self.classes)
        if counts.min() < 2:
            c = self.classes[int(counts.argmin())]
            raise ConfigError("data.val_size", f"{self.source}: class {c!r} has {int(counts.min())} training "
                              "example(s); a stratified validation split needs at least 2 per class "
                              "(set data.val_size=0 to train without validation)")
        if count < k or n - count < k:
            raise ConfigError("data.val_size", f"{self.source}: a stratified split of {n} training examples "
                              f"into {n - count} + {count} (validation) cannot hold all {k} classes on both sides")
        from sklearn.model_selection import train_test_split

        train_idx, val_idx = train_test_split(np.arange(n), test_size=count, stratify=y,
                                              random_state=self.split_seed)
        return np.sort(train_idx), np.sort(val_idx)

    def _impute_and_scale(self, data: dict[str, tuple]) -> dict[str, tuple]:
        """Fill NaNs (``impute``), then fit ``preprocessing`` on the training part and apply it."""
        x_train, _, m_train = data["train"]
        if self.impute != "none":
            fill = _channel_means(x_train, m_train) if self.impute in ("mean", "linear") else None
            data = {k: (_impute(x, m, self.impute, fill), y, m) for k, (x, y, m) in data.items()}
            x_train = data["train"][0]
        self.preprocessing.fit(x_train, m_train)
        self.stats = self.preprocessing.stats()
        return {k: (self.preprocessing.transform(x, m), y, m) for k, (x, y, m) in data.items()}

    # -- loaders --------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        size = self.batch_size if split == "train" else self.eval_batch_size
        generator = None
        if shuffle:
            generator = torch.Generator().manual_seed(self.seed)
            if self._generator_state is not None:  # resuming: continue the batch order where it stopped
                generator.set_state(self._generator_state)
                self._generator_state = None
            self._train_generator = generator
        data = TensorBatches(*self.splits[split], trim=self.trim_batches)
        if shuffle and self._bucketing():
            lengths = self.splits[split][2].sum(dim=1)
            return DataLoader(data, batch_sampler=LengthBuckets(lengths, size, generator), collate_fn=_as_batch)
        return DataLoader(data, batch_size=size, shuffle=shuffle, generator=generator, collate_fn=_as_batch)

    def _bucketing(self) -> bool:
        """``bucket_by_length`` applies: padded data, one process, no ``overfit_batches`` (Lightning
        replaces the sampler there and in DDP, which a batch sampler does not allow)."""
        if not (self.bucket_by_length and self.masked and self.trim_batches):
            return False
        trainer = self.trainer
        if trainer is not None and (trainer.world_size > 1 or trainer.overfit_batches > 0):
            log.info("data.bucket_by_length is off: it needs one process and no overfit_batches")
            return False
        return True

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        """The validation loader; an empty list (Lightning then skips validation) when ``val_size: 0``."""
        return self._loader("val", shuffle=False) if self.has_val else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # -- checkpoints carry the shuffling state, so a resumed run sees the same batches ---------
    def state_dict(self) -> dict[str, Any]:
        return {"train_generator": self._train_generator.get_state()} if self._train_generator else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._generator_state = state_dict.get("train_generator")

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes, classes and fitted statistics, saved with the run."""
        spec = self.input_spec
        out: dict[str, Any] = {
            "source": self.source,
            "modality": spec.modality,
            "input_shape": list(spec.shape),
            "masked": spec.masked,
            "num_classes": self.num_classes,
            "classes": self.classes,
            "sizes": {k: len(v[1]) for k, v in self.splits.items()},
            "preprocessing": type(self.preprocessing).__name__,
            "stats": self.stats,
            "impute": self.impute,
        }
        if spec.masked:
            lengths = self.splits["train"][2].sum(dim=1)
            out["train_lengths"] = [int(lengths.min()), int(lengths.max())]
        if spec.vocab_size:
            out["vocab_size"] = spec.vocab_size
        return out


def _take(mask: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if mask is None else mask[rows]


def _real(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Bool array like ``x``: True on real (unpadded) steps."""
    if mask is None:
        return np.ones(x.shape, dtype=bool)
    return np.broadcast_to(mask.reshape(mask.shape[0], *([1] * (x.ndim - 2)), -1), x.shape)


def _channel_means(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Per-channel mean of the real, non-NaN values, shaped to broadcast against ``x``."""
    ok = _real(x, mask) & ~np.isnan(x)
    axes = (0, *range(2, x.ndim))
    total = np.where(ok, x, 0.0).sum(axis=axes, keepdims=True, dtype=np.float64)
    count = ok.sum(axis=axes, keepdims=True)
    return (total / np.maximum(count, 1)).astype(np.float32)


def _impute(x: np.ndarray, mask: np.ndarray | None, how: str, fill: np.ndarray | None) -> np.ndarray:
    """Fill NaN on real steps: ``zero``; ``mean`` (the training part's channel mean); ``linear``
    (interpolation along the last axis between the nearest real values, held constant at the ends;
    a row/channel without any value gets the channel mean)."""
    nan = np.isnan(x)
    if not nan.any():
        return x
    x = x.copy()
    if how == "zero":
        x[nan] = 0.0
        return _zero(x, mask)
    assert fill is not None
    full = np.broadcast_to(fill, x.shape)
    if how == "mean":
        x[nan] = full[nan]
        return _zero(x, mask)
    flat, real = x.reshape(-1, x.shape[-1]), _real(x, mask).reshape(-1, x.shape[-1])
    fill_flat = full.reshape(-1, x.shape[-1])
    for r in np.flatnonzero(np.isnan(flat).any(axis=1)):
        steps = np.flatnonzero(real[r])
        known = steps[~np.isnan(flat[r, steps])]
        missing = steps[np.isnan(flat[r, steps])]
        flat[r, missing] = (np.interp(missing, known, flat[r, known]) if known.size else fill_flat[r, missing])
    return _zero(flat.reshape(x.shape), mask)


def _zero(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return np.where(_real(x, mask), x, 0.0).astype(x.dtype)


def pad_to_longest(items: Sequence[np.ndarray], dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad per-example arrays ``(..., L_i)`` to ``(N, ..., max L_i)``; also the mask ``(N, L)``
    (True on real steps)."""
    lengths = np.array([a.shape[-1] for a in items])
    out = np.zeros((len(items), *items[0].shape[:-1], int(lengths.max())), dtype=dtype)
    for i, a in enumerate(items):
        out[i, ..., : a.shape[-1]] = a
    return out, np.arange(out.shape[-1])[None, :] < lengths[:, None]
