"""Cached outputs of a pretrained encoder's frozen lower layers (checksummed ``.npz`` files).

A frozen layer computes the same states for the same text on every epoch and in every run, so
they are computed once and stored::

    states = frozen_states_cached(source, ids, mask, layers=4, cache_dir="data/encoders")
    # (N, T, H) float16 on real tokens (0 on padding): the input of layer 5 for every example
    states = frozen_states_cached(source, ids, mask, layers=[4, 5, 6], cache_dir="data/encoders")
    # (N, T, 3, H): the outputs of layers 4, 5 and 6, for a branch with layers: [4, 5, 6]

The file name is a hash of everything that changes the states: the encoder (its folder and the
sizes and times of its config, tokenizer and weight files), the number of layers, and the
sub-word ids and mask themselves (so the text and every tokenizer setting: vocabulary, max
length, special tokens). Only real tokens are stored (packed, float16), with each example's
length; :mod:`fusionlab.data.cache` adds the checksum, so a corrupted or truncated file is
detected and rebuilt, and writes are atomic.

float16 halves memory and disk (5000 reviews x 256 tokens x 384 = 0.9 GB padded in memory); its
relative rounding (~5e-4) is far below the encoder's own sensitivity to a token change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusionlab.branches.pretrained_transformer import PretrainedTransformerBranch, source_fingerprint
from fusionlab.data.cache import load_cached, save_cached

log = logging.getLogger("fusionlab")

CACHE_VERSION = 1


def ids_digest(ids: np.ndarray, mask: np.ndarray) -> str:
    """SHA-256 of the real sub-word ids of every example (padding width does not matter)."""
    h = hashlib.sha256()
    lengths = mask.sum(axis=1).astype(np.int64)
    h.update(lengths.tobytes())
    h.update(np.ascontiguousarray(ids[mask].astype(np.int64)).tobytes())
    return h.hexdigest()


def layer_list(layers: int | list[int] | tuple[int, ...]) -> int | list[int]:
    """``layers`` as an int (the first k layers' output) or a sorted list of layers (each one's output)."""
    return int(layers) if isinstance(layers, (int, np.integer)) else sorted({int(k) for k in layers})


def cache_path(cache_dir: str | Path, source: str, ids: np.ndarray, mask: np.ndarray,
               layers: int | list[int]) -> Path:
    layers = layer_list(layers)
    payload = {"version": CACHE_VERSION, "model": source_fingerprint(source), "layers": layers,
               "ids": ids_digest(ids, mask)}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    name = "_".join(map(str, layers)) if isinstance(layers, list) else str(layers)
    return Path(cache_dir) / f"frozen-{name}-{key}.npz"


def pack(states: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Real tokens only: ``states`` ``(sum of lengths, ...)`` and ``lengths`` ``(N,)``."""
    return {"states": np.ascontiguousarray(states[mask]), "lengths": mask.sum(axis=1).astype(np.int64)}


def unpack(arrays: dict[str, np.ndarray], width: int) -> np.ndarray:
    """``(N, width, ...)`` with zeros on padding, from :func:`pack`'s arrays."""
    lengths, packed = arrays["lengths"], arrays["states"]
    mask = np.arange(width)[None, :] < lengths[:, None]
    out = np.zeros((len(lengths), width, *packed.shape[1:]), dtype=packed.dtype)
    out[mask] = packed
    return out


@torch.no_grad()
def compute_frozen_states(branch: PretrainedTransformerBranch, ids: np.ndarray, mask: np.ndarray,
                          layers: int | list[int], batch_size: int = 64) -> np.ndarray:
    """The embeddings + first ``layers`` layers' outputs ``(N, T, H)`` float16 (a list of layers: each one's
    output, ``(N, T, m, H)``), in batches of similar length."""
    n, width = ids.shape
    hidden = int(branch.encoder.config.hidden_size)
    shape = (n, width, len(layers), hidden) if isinstance(layers, list) else (n, width, hidden)
    out = np.zeros(shape, dtype=np.float16)
    lengths = mask.sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        steps = max(1, int(lengths[rows].max()))
        x = torch.as_tensor(ids[rows, :steps])
        m = torch.as_tensor(mask[rows, :steps])
        h = branch.frozen_states(x, m, layers)
        h = h * m.view(*m.shape, *([1] * (h.dim() - 2)))
        out[rows, :steps] = h.to(torch.float16).numpy()
    return out


def frozen_states_cached(source: str, ids: np.ndarray, mask: np.ndarray, layers: int | list[int],
                         cache_dir: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The frozen states of :func:`compute_frozen_states` for ``ids``/``mask`` (all splits at once),
    from the cache or computed and cached; also what happened (``from_cache``, ``seconds``, ``path``)."""
    start = time.perf_counter()
    layers = layer_list(layers)
    path = cache_path(cache_dir, source, ids, mask, layers)
    arrays = load_cached(path)
    hit = arrays is not None and arrays["lengths"].tolist() == mask.sum(axis=1).tolist()
    if hit:
        states = unpack(arrays, ids.shape[1])
    else:
        encoder = PretrainedTransformerBranch(source, max_length=ids.shape[1], freeze=True)
        states = compute_frozen_states(encoder, ids, mask, layers)
        save_cached(path, pack(states, mask))
    info = {"from_cache": hit, "seconds": round(time.perf_counter() - start, 2), "path": str(path),
            "layers": layers}
    log.info("frozen encoder states (layers %s) for %d texts: %s in %.1f s (%s)", layers, len(ids),
             "read from the cache" if hit else "computed and cached", info["seconds"], path)
    return states, info


class SubwordInputs:
    """The pretrained branch's inputs beside a text datamodule's word ids (``data.subwords``).

    ``source`` and ``max_length`` name the encoder and its tokenizer (as the branch does);
    ``cache_layers = k > 0`` replaces the sub-word ids by the cached outputs of the encoder's first
    ``k`` (frozen) layers, float16 ``(N, T, H)``, and a list ``[k_1, ..., k_m]`` by the outputs of those
    layers, stacked ``(N, T, m, H)``; computed once (:func:`frozen_states_cached`, stored under
    ``cache_dir``). :meth:`arrays` returns, per split, the inputs and their mask;
    :meth:`state` is the plain data a checkpoint keeps to tokenise new text (ids, never states).
    """

    def __init__(self, source: str, max_length: int = 256, cache_layers: int | list[int] = 0,
                 cache_dir: str | Path = "data/encoders") -> None:
        from fusionlab.branches.pretrained_transformer import SubwordTokenizer

        self.tokenizer = SubwordTokenizer(source, max_length, key="data.subwords")
        self.source, self.max_length, self.cache_layers = source, max_length, layer_list(cache_layers)
        self.cache_dir = Path(cache_dir)
        self.info: dict[str, Any] = {}
        self.lengths: dict[str, dict[str, float]] = {}

    def arrays(self, texts: dict[str, list[str]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{split: (inputs, mask)}`` for the texts of each split (one shared width ``T``)."""
        names = list(texts)
        ids, mask = self.tokenizer.encode([t for n in names for t in texts[n]])
        inputs: np.ndarray = ids
        if self.cache_layers:
            inputs, self.info = frozen_states_cached(self.source, ids, mask, self.cache_layers, self.cache_dir)
        bounds = np.cumsum([0] + [len(texts[n]) for n in names])
        return {n: (inputs[bounds[i]:bounds[i + 1]], mask[bounds[i]:bounds[i + 1]]) for i, n in enumerate(names)}

    def spec(self) -> tuple[str, int, int | tuple[int, ...]]:
        """What the model is told: ``(source, max_length, cached layers)`` (an int, or a tuple of layers)."""
        cached = tuple(self.cache_layers) if isinstance(self.cache_layers, list) else self.cache_layers
        return (self.source, self.max_length, cached)

    def state(self) -> dict[str, Any]:
        return {**self.tokenizer.state(), "cache_layers": self.cache_layers}

    def attach(self, dm: Any) -> None:
        """Append the sub-word inputs and their mask to each of ``dm.splits`` (after its setup), in the
        rows of its train / validation carve-out and its test split."""
        raw = dm.load_texts()
        texts = {name: [raw["texts_train"][i] for i in dm.indices[name]] for name in dm.splits if name != "test"}
        texts["test"] = list(raw["texts_test"])
        for name, (inputs, mask) in self.arrays(texts).items():
            dm.splits[name] = (*dm.splits[name], torch.as_tensor(inputs), torch.as_tensor(mask))
            lengths = mask.sum(axis=1)
            self.lengths[name] = {"mean": round(float(lengths.mean()), 2),
                                  "at_max_length": round(float((lengths >= self.max_length).mean()), 4)}

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "max_length": self.max_length, "cache_layers": self.cache_layers,
                "tokenizer": self.tokenizer.settings(), "lengths": self.lengths,
                **({"cache": self.info} if self.info else {})}
