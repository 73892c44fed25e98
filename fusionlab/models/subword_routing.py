"""Routing a text's sub-word inputs (``data.subwords``), and its word ids, to the branches that read them.

A branch whose class has ``modality = "subwords"`` (:class:`~fusionlab.branches.pretrained_transformer.
PretrainedTransformerBranch`) reads the encoder's own sub-word ids (or their cached frozen states) from
the batch, not fusionlab's word ids; the model factory builds it with :func:`subword_arguments` and
checks it with :func:`check_subword_match`. A branch with ``modality = "text"`` (:class:`~fusionlab.branches.
bag_of_ngrams.BagOfNgramsBranch`) reads the word ids before the shared token embedding
(:func:`reads_word_ids`, :func:`word_id_arguments`). :func:`own_param_groups` gives such a branch's trained
parameters their own optimizer group (its ``lr``). No import of the branches here: the factory imports
this module while the branches package is still loading.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from fusionlab.config.schema import ConfigError


def reads_subwords(cls: type) -> bool:
    """Whether a branch class reads the sub-word inputs of ``data.subwords`` (not the word ids)."""
    return getattr(cls, "modality", "series") == "subwords"


def reads_word_ids(cls: type) -> bool:
    """Whether a branch class reads fusionlab's word ids themselves (``modality = "text"``, e.g. the bag of
    n-grams) rather than the shared token embedding's vectors."""
    return getattr(cls, "modality", "series") == "text"


def word_id_arguments(spec: Any, key: str, cls: type) -> dict[str, Any]:
    """What a word-id branch is built with (``vocab_size``); a ConfigError naming the branch when the data
    is not text."""
    if getattr(spec, "modality", None) != "text":
        raise ConfigError(key, f"{cls.__name__} reads text (word ids), but the data is {spec.describe()}")
    return {"vocab_size": int(spec.vocab_size)}


def net_reads_subwords(net: nn.Module) -> bool:
    """Whether a network has a branch that reads the sub-word inputs (its export takes them too)."""
    return any(reads_subwords(type(b)) for b in getattr(net, "branches", {}).values())


def subword_arguments(spec: Any, key: str, cls: type) -> dict[str, Any]:
    """What a sub-word branch is built with from the data's input spec (``input_layer``); a ConfigError
    naming the branch when the data has no sub-word inputs."""
    subwords = getattr(spec, "subwords", None)
    if subwords is None:
        raise ConfigError(key, f"{cls.__name__} reads the text through the encoder's own tokenizer, but the data "
                          "has no sub-word inputs; set data.subwords to the branch's source (text data only)")
    cached = subwords[2]  # k: the output of the first k layers; a list: each listed layer's output, stacked
    return {"input_layer": [int(k) for k in cached] if isinstance(cached, (list, tuple)) else int(cached)}


def check_subword_match(branch: nn.Module, spec: Any, key: str) -> None:
    """The data's sub-words must come from the branch's encoder and length."""
    source, max_length, _ = spec.subwords
    if (branch.source, branch.max_length) != (source, max_length):
        raise ConfigError(key, f"reads sub-words of {branch.source!r} cut to {branch.max_length} tokens, but the "
                          f"data gives {source!r} cut to {max_length} (data.subwords, data.subwords_max_length)")


def own_param_groups(net: nn.Module) -> list[dict[str, Any]]:
    """One optimizer parameter group per submodule with ``param_group_options`` (its trained parameters
    and those options, e.g. a fine-tuned encoder's ``lr``)."""
    groups = []
    for module in net.modules():
        options = getattr(module, "param_group_options", None)
        params = [p for p in module.parameters() if p.requires_grad] if options else []
        if params:
            groups.append({"params": params, **options})
    return groups
