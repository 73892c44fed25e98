"""The base of labelled-text datasets: texts → padded token ids ``(N, L)`` with a mask, the vocabulary
fitted on the training part only, token ids cached.

Batches are ``(x, y, mask)``: ``x`` int64 ``(B, L)`` token ids (0 padding, 1 unknown), ``mask`` bool
``(B, L)`` True on real tokens. With ``subwords`` (a pretrained encoder's folder or package, for
``branch=pretrained_transformer``) batches are ``(x, y, mask, subwords, subword_mask)``: the same
texts through the encoder's own tokenizer, as ids ``(B, T)``, or with ``subwords_cache_layers = k``
as the cached outputs of its first ``k`` frozen layers ``(B, T, H)`` (a list of layers: each one's
output, stacked ``(B, T, m, H)``) (:mod:`fusionlab.models.encoder_cache`). Token ids are cached
(checksummed, :mod:`fusionlab.data.cache`) as ``data_dir/text/<class>-<hash of every argument that
changes them>.npz``; a user's file is part of the key by path, size and modification time, so an
edited file is tokenised again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError, NonNegativeInt, PositiveInt
from fusionlab.data.base import ArrayDataModule
from fusionlab.data.cache import load_cached, save_cached
from fusionlab.data.describe import describe_tokens
from fusionlab.data.labels import fit_classes, label_indices
from fusionlab.data.preprocessing import NoScaling
from fusionlab.data.splits import carve_validation
from fusionlab.data.tokenize import PAD_ID, Tokenizer

log = logging.getLogger("fusionlab")
TOKENIZER_OPTIONS = frozenset(inspect.signature(Tokenizer).parameters)

CACHE_VERSION = 1


class TextDataModule(ArrayDataModule):
    """Base for labelled-text datasets; subclasses implement :meth:`load_texts` and :meth:`source_id`.

    Tokenisation (``level``, ``lowercase``, ``strip_punctuation``, ``min_freq``, ``max_vocab``,
    ``max_length``; see :class:`~fusionlab.data.tokenize.Tokenizer`) is the text part of
    preprocessing; the ``preprocessing`` group (scaling of real values) does not apply to token ids
    and is ignored. The validation part (``val_size``) is the base's stratified carve-out; the
    vocabulary is fitted on the remaining training part only.
    """

    modality = "text"
    label_key = "data.label_column"
    text_key = "data.text_column"
    text_column = "text"
    label_column = "label"
    defaults = {"batch_size": 64, "eval_batch_size": 500, "bucket_by_length": True}

    options_from = (Tokenizer,)  # its arguments are options too: level, lowercase, ..., max_length

    def __init__(
        self,
        data_dir: str = "data",
        subwords: str | None = None,
        subwords_max_length: PositiveInt = 256,
        subwords_cache_layers: NonNegativeInt | list[NonNegativeInt] | None = None,  # None or 0: ids
        **options: Any,
    ) -> None:
        tokenizer = {k: options.pop(k) for k in list(options) if k in TOKENIZER_OPTIONS}
        options["preprocessing"] = NoScaling()  # token ids are not scaled
        super().__init__(**options)
        self.data_dir = Path(data_dir)
        self.tokenizer = Tokenizer(**tokenizer)
        self.subwords = None
        if subwords:  # a pretrained encoder's own tokenizer beside the word vocabulary
            from fusionlab.models.encoder_cache import SubwordInputs

            self.subwords = SubwordInputs(subwords, subwords_max_length, subwords_cache_layers or 0,
                                          self.data_dir / "encoders")
        self.load_seconds = 0.0
        self.from_cache = False

    # -- to implement -----------------------------------------------------------------------------
    def source_id(self) -> dict[str, Any]:
        """What identifies the raw data (for the cache key): names, paths with size and mtime."""
        raise NotImplementedError

    def load_texts(self) -> dict[str, Any]:
        """``texts_train``, ``texts_test`` (lists of str) and ``labels_train``, ``labels_test``
        (arrays), already checked with :func:`~fusionlab.data.text.checks.check_texts` /
        :func:`~fusionlab.data.text.checks.check_labels`."""
        raise NotImplementedError

    # -- sub-word inputs of a pretrained branch -------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        super().setup(stage)
        if self.subwords is not None:
            self.subwords.attach(self)

    @property
    def input_spec(self) -> Any:
        spec = super().input_spec
        return spec.with_(subwords=self.subwords.spec()) if self.subwords is not None else spec

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
        self.classes = fit_classes(y_train, self.source)
        train_idx, _ = carve_validation(label_indices(y_train, self.classes, self.source, "train"), self.val_size,
                                        self.classes, self.split_seed, self.source)  # the base's own carve-out
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
        out.update(describe_tokens(self))
        out["vocabulary"] = list(self.tokenizer.tokens)
        if self.subwords is not None:
            out["subwords"] = self.subwords.describe()
        return out
