"""The base of every in-memory dataset: arrays held as tensors, batches sliced by index.

A dataset is one class: a subclass of :class:`ArrayDataModule` that implements
:meth:`~ArrayDataModule.load_arrays` and takes its own arguments plus ``**options`` (the base
arguments, see :mod:`fusionlab.data.options`), and one YAML file under ``conf/data``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from fusionlab.config.schema import ConfigError, NonNegativeFloat, PositiveInt, choice
from fusionlab.data.checks import check_finite
from fusionlab.data.describe import describe_arrays
from fusionlab.data.impute import channel_means, impute
from fusionlab.data.impute import impute as _impute  # noqa: F401  (old import path)
from fusionlab.data.labels import fit_classes, label_indices
from fusionlab.data.lengths import fit_length, longest_real
from fusionlab.data.loaders import TensorBatches, TrainOrder, make_loader
from fusionlab.data.options import merge_signature
from fusionlab.data.padding import pad_to, pad_to_longest  # noqa: F401  (pad_to_longest: old import path)
from fusionlab.data.padding import real_steps as _real  # noqa: F401  (old import path)
from fusionlab.data.preprocessing import Preprocessor, Standardize
from fusionlab.data.spec import InputSpec
from fusionlab.data.splits import carve_validation
from fusionlab.data.stacking import stack_examples
from fusionlab.data.state import data_state
from fusionlab.registry import Registrable

log = logging.getLogger("fusionlab")

__all__ = ["ArrayDataModule", "TensorBatches", "pad_to_longest"]


class ArrayDataModule(Registrable, pl.LightningDataModule):
    """Base for datasets that fit in memory, with labels of any kind.

    Subclasses implement :meth:`load_arrays` and set ``modality`` (``series``, ``image``, ``text``;
    text subclasses also set ``vocab_size`` and optionally ``tokens``). What :meth:`setup` does:

    - unequal-length examples (a list of ``(C, L_i)`` arrays, or arrays with ``mask_train`` /
      ``mask_test``) are zero-padded and batches become ``(x, y, mask)``;
    - labels (strings, any integers) become indices ``0..K-1`` in sorted order of the training
      labels (``classes``); a test label not seen in training is an error;
    - NaN values are an error naming the split and row, unless ``impute`` fills them;
    - the validation part is a stratified carve-out of the training split (``val_size``: a count,
      a fraction in (0, 1), or 0 for none), fixed by ``split_seed`` whatever the run seed;
    - ``preprocessing`` (default: global standardisation) is fitted on the training part alone
      (padding excluded) and applied to every split; text is left as token ids;
    - ``bucket_by_length`` (padded data): training batches hold examples of similar length
      (:class:`~fusionlab.data.buckets.LengthBuckets`), so little padding is left after trimming.

    A subclass sets ``defaults`` (a dict) to change the default of any base argument.
    """

    registry_kind = "datamodule"  # every subclass may be built from a config (fusionlab.registry)
    modality = "series"
    vocab_size: int | None = None  # text: number of token ids (0 = padding)
    tokens: tuple[str, ...] | None = None  # text: index -> token string
    trim_batches = True  # padded data: cut each batch to its longest real example (see TensorBatches)
    defaults: ClassVar[dict[str, Any]] = {}  # a subclass's own defaults for the arguments below

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merge_signature(cls)

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
        too_long: choice("cut", "refuse") = "cut",
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
        self.order = TrainOrder(seed)
        self.too_long = too_long
        self.length = 0  # the training length (steps), set by setup
        self.impute_fill: np.ndarray | None = None  # impute=mean|linear: the training part's channel means

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

    @property
    def class_names(self) -> list[str]:
        """The class names in label order (label ``i`` is ``class_names[i]``)."""
        return [str(c) for c in self.classes]

    # -- Lightning hooks ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        arrays = self.load_arrays()
        x, masks, y, rows = {}, {}, {}, {}
        names = arrays.get("names") or {}
        for split in ("train", "test"):
            for key in (f"x_{split}", f"y_{split}"):
                if key not in arrays:
                    raise ConfigError("data", f"{self.source}: no '{key}' array")
            x[split], masks[split] = stack_examples(arrays[f"x_{split}"], arrays.get(f"mask_{split}"),
                                                    self.modality, self.source, split)
            y[split] = np.asarray(arrays[f"y_{split}"])
            rows[split] = arrays.get(f"rows_{split}")
            if len(x[split]) != len(y[split]):
                raise ConfigError("data", f"{self.source}: {split} split has {len(x[split])} inputs but "
                                  f"{len(y[split])} labels")
            if len(y[split]) == 0:
                raise ConfigError("data", f"{self.source}: the {split} split is empty")
        if self.modality != "text":
            for split in x:  # before any padding or cutting: rows as the user's data has them
                check_finite(x[split], self.impute, self.source, split, rows[split], names.get(split))
        x, masks = self._training_length(x, masks, rows)
        self.classes = fit_classes(y["train"], self.source)
        labels = {split: label_indices(y[split], self.classes, self.source, split) for split in y}
        train_idx, val_idx = carve_validation(labels["train"], self.val_size, self.classes, self.split_seed,
                                              self.source)
        self.indices = {"train": train_idx, "val": val_idx}
        parts = {"train": train_idx, "val": val_idx} if self.has_val else {"train": train_idx}
        data = {name: (x["train"][i], labels["train"][i], None if masks["train"] is None else masks["train"][i])
                for name, i in parts.items()}
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
    def _training_length(self, x: dict[str, np.ndarray], masks: dict[str, np.ndarray | None],
                         rows: dict[str, np.ndarray | None]
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
        """Size everything by the training split: training examples padded to the longest of them
        (text: to ``max_length``), the test split padded to that length and longer test series cut
        or refused (``too_long``, see :mod:`fusionlab.data.lengths`). The test split never sizes the model."""
        shapes = {k: v.shape[1:] for k, v in x.items()}
        image = self.modality == "image"
        if shapes["train"][:-1] != shapes["test"][:-1] or (image and shapes["train"] != shapes["test"]):
            before = " before the time axis" if self.modality != "image" else ""
            cut = slice(None) if self.modality == "image" else slice(None, -1)
            raise ConfigError("data", f"{self.source}: training examples have shape {shapes['train'][cut]}{before} "
                              f"but test examples {shapes['test'][cut]}")
        where = f"{self.source} test split"
        if masks["train"] is None and masks["test"] is None:
            if shapes["test"][-1] < shapes["train"][-1]:
                raise ConfigError("data", f"{self.source}: training examples have shape {shapes['train']} but "
                                  f"test examples {shapes['test']}")
            if shapes["test"][-1] > shapes["train"][-1]:
                x["test"], _ = fit_length(x["test"], None, shapes["train"][-1], self.too_long, where, rows=rows["test"])
            self.length = int(x["train"].shape[-1])
            return x, masks
        if self.modality != "text":  # the training length is the longest real training example
            keep = longest_real(x["train"], masks["train"])
            x["train"] = x["train"][..., :keep]
            masks["train"] = None if masks["train"] is None else masks["train"][:, :keep]
        self.length = int(x["train"].shape[-1])
        x["train"], masks["train"] = pad_to(x["train"], masks["train"], self.length)
        x["test"], masks["test"] = fit_length(x["test"], masks["test"], self.length, self.too_long, where,
                                              rows=rows["test"])
        return x, masks

    def _impute_and_scale(self, data: dict[str, tuple]) -> dict[str, tuple]:
        """Fill NaNs (``impute``), then fit ``preprocessing`` on the training part and apply it."""
        x_train, _, m_train = data["train"]
        if self.impute != "none":
            fill = channel_means(x_train, m_train) if self.impute in ("mean", "linear") else None
            self.impute_fill = fill
            data = {k: (impute(x, m, self.impute, fill), y, m) for k, (x, y, m) in data.items()}
            x_train = data["train"][0]
        self.preprocessing.fit(x_train, m_train)
        self.stats = self.preprocessing.stats()
        return {k: (self.preprocessing.transform(x, m), y, m) for k, (x, y, m) in data.items()}

    # -- loaders --------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        size = self.batch_size if split == "train" else self.eval_batch_size
        generator = self.order.generator() if shuffle else None
        return make_loader(self.splits[split], size, self.trim_batches, generator,
                           buckets=shuffle and self._bucketing())

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
        return self.order.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.order.load_state_dict(state_dict)

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes, classes and fitted statistics, saved with the run."""
        return describe_arrays(self)

    def data_state(self) -> dict[str, Any]:
        """What prediction needs from this data, for the checkpoint (see :mod:`fusionlab.data.state`):
        plain types and tensors only."""
        return data_state(self)
