"""Building the fused network from its config, outside any ``nn.Module.__init__``.

``build_fusion_net(model_cfg, input_spec, num_classes)`` is what jobs, inference and export call.
A model preset's ``_target_`` is :func:`make_fusion_net`, whose signature is the model config's schema
(``branches``, ``fusion``, ``head_hidden``, ``dropout``, ``views``, ``embedding``, ``taps``), so
its keys are checked like every other node's. Saved configs whose ``_target_`` is the older
``fusionlab.models.FusionNet`` build the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig
from torch import nn

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, PositiveInts, Probability
from fusionlab.data.spec import InputSpec
from fusionlab.models.fusion_net import FusionNet, MLPHead
from fusionlab.models.subword_routing import (
    check_subword_match,
    reads_subwords,
    reads_word_ids,
    subword_arguments,
    word_id_arguments,
)
from fusionlab.models.taps import Taps
from fusionlab.models.views import make_view
from fusionlab.registry import register

_ModuleOrConfig = Any  # an nn.Module, or a config mapping with a ``_target_``
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")


def build_fusion_net(model_cfg: Mapping[str, Any], input_spec: InputSpec | Mapping[str, Any],
                     num_classes: int) -> FusionNet:
    """The fused network described by ``model_cfg`` (the ``model`` node of a composed or saved
    config) for inputs ``input_spec`` and ``num_classes`` classes. Errors are ConfigErrors whose
    key is relative to the model node (``branches.cnn.hidden``, ``fusion``, ...)."""
    keys = {k: v for k, v in model_cfg.items() if k not in _HYDRA_KEYS}
    return make_fusion_net(input_spec, num_classes, **keys)


@register("net")
def make_fusion_net(
    input_spec: InputSpec,
    num_classes: int,
    branches: dict[str, Any],
    fusion: Any,
    head_hidden: PositiveInts = (128,),
    dropout: Probability = 0.1,
    views: dict[str, str] | None = None,
    embedding: Any = None,
    taps: PositiveInts | None = None,
) -> FusionNet:
    """A model preset's target: builds the parts from their configs (shapes injected from
    ``input_spec``, never typed by hand), then ``FusionNet(parts)``.

    - ``branches``: name -> branch config (or built module); each must read the modality its view
      produces (a mismatch is a ConfigError naming the branch).
    - ``fusion``: the fusion config; it gets ``in_dims`` (input name -> width, names sorted) and, for
      a decision-level fusion, ``num_classes``. A fusion whose ``arity`` differs from the number of
      inputs is refused with one line.
    - ``head_hidden``, ``dropout``: the MLP head after the fusion (none for ``makes_logits`` fusions).
    - ``views``: name -> view name; ``embedding``: the token embedding for text; ``taps``: depths
      tapped in every branch for multi-level fusion.
    """
    input_spec = InputSpec.coerce(input_spec)
    if not branches:
        raise ConfigError("branches", "needs at least one branch")
    for h in head_hidden:
        if h <= 0:
            raise ConfigError("head_hidden", f"widths must be > 0, got {list(head_hidden)}")
    views = dict(views or {})
    for name in views:
        if name not in branches:
            raise ConfigError(f"views.{name}", f"no branch named '{name}'; branches: {sorted(branches)}")
    token_embedding = None
    data_spec = input_spec
    classes = {n: _target_class(branches[n], f"branches.{n}") for n in branches}
    subword_branches = {n for n, cls in classes.items() if reads_subwords(cls)}
    if subword_branches and taps:
        raise ConfigError("taps", f"multi-level fusion cannot tap a pretrained branch ({sorted(subword_branches)})")
    word_id_branches = {n for n, cls in classes.items() if reads_word_ids(cls)}
    if word_id_branches and taps:
        raise ConfigError("taps", f"multi-level fusion cannot tap a word-id branch ({sorted(word_id_branches)})")
    embedded = set(branches) - subword_branches - word_id_branches
    if input_spec.modality == "text" and embedded:  # a branch reads the embedded word ids
        if embedding is None:
            raise ConfigError("embedding", "text data needs a token embedding (embedding=learned)")
        token_embedding = _build(embedding, "embedding", vocab_size=input_spec.vocab_size, tokens=input_spec.tokens)
        input_spec = InputSpec("series", (token_embedding.out_dim, input_spec.shape[0]), masked=True)
    built, built_views, shapes = {}, {}, {}
    for name in sorted(branches):
        spec, key = branches[name], f"branches.{name}"
        if name in subword_branches:  # reads the data's sub-word inputs (its own tokenizer), not a view
            built[name] = _build(spec, key, **subword_arguments(data_spec, key, classes[name]))
            check_subword_match(built[name], data_spec, key)
            continue
        if name in word_id_branches:  # reads the word ids themselves (its own vectors), not a view
            if name in views:
                raise ConfigError(f"views.{name}", "a branch that reads word ids takes no view")
            built[name] = _build(spec, key, **word_id_arguments(data_spec, key, classes[name]))
            continue
        view, branch_spec = make_view(views.get(name, "raw"), input_spec, f"views.{name}")
        cls = classes[name]
        reads = getattr(cls, "modality", "series")
        if reads != branch_spec.modality:
            hint = f" (try views: {{{name}: rows}})" if branch_spec.modality == "image" else ""
            raise ConfigError(key, f"{cls.__name__} reads {reads} data, but its input is "
                              f"{branch_spec.describe()}{hint}")
        built_views[name] = view
        built[name] = _build(spec, key, **shape_arguments(branch_spec))
        shapes[name] = branch_spec.shape
    tapped = Taps(built, taps, shapes) if taps else None
    in_dims = dict(tapped.in_dims) if tapped is not None else {n: b.out_dim for n, b in built.items()}
    fusion_cls = _target_class(fusion, "fusion")
    arity = getattr(fusion_cls, "arity", None)
    if arity is not None and len(in_dims) != arity:
        what = "inputs" if tapped is not None else "branches"
        raise ConfigError("fusion", f"{_option_name(fusion_cls)} fuses exactly {arity} branches, got "
                          f"{len(in_dims)} {what} ({', '.join(in_dims)})")
    built_fusion = _build(fusion, "fusion", in_dims=in_dims, num_classes=num_classes)
    head = None
    if not getattr(built_fusion, "makes_logits", False):
        head = MLPHead(built_fusion.out_dim, list(head_hidden), num_classes, dropout)
    return FusionNet(built, built_fusion, head, views=built_views, embedding=token_embedding, taps=tapped)


make_fusion_net.injected = ("input_spec", "num_classes")  # type: ignore[attr-defined]


def shape_arguments(spec: InputSpec) -> dict[str, int]:
    """The shape arguments a branch reading ``spec`` is built with."""
    if spec.modality == "image":
        c, h, w = spec.shape
        return {"in_channels": c, "height": h, "width": w}
    c, length = spec.shape
    return {"in_channels": c, "seq_len": length}


def _option_name(cls: type) -> str:
    name = getattr(cls, "option_name", None)
    return name() if callable(name) else cls.__name__


def _target_class(spec: _ModuleOrConfig, key: str) -> type:
    if isinstance(spec, nn.Module):
        return type(spec)
    if not isinstance(spec, (Mapping, DictConfig)) or "_target_" not in spec:
        raise ConfigError(key, "expected a config with a _target_ or an nn.Module")
    return get_class(spec["_target_"])


def _build(spec: _ModuleOrConfig, key: str, **injected: Any) -> nn.Module:
    """An nn.Module as given, or built from its config with the ``injected`` arguments it declares."""
    cls = _target_class(spec, key)
    if isinstance(spec, nn.Module):
        return spec
    wanted = set(getattr(cls, "injected", ()))
    return build(spec, key, **{k: v for k, v in injected.items() if k in wanted}, _recursive_=False)
