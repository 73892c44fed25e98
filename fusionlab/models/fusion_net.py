"""The fused network: [embedding] → per-branch view → branches → poolers → fusion → MLP head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig
from torch import Tensor, nn

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, PositiveInts, Probability
from fusionlab.data.spec import InputSpec
from fusionlab.models.taps import Taps
from fusionlab.models.views import make_view
from fusionlab.registry import register

_ModuleOrConfig = Any  # an nn.Module, or a config mapping with a ``_target_``


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


def shape_arguments(spec: InputSpec) -> dict[str, int]:
    """The shape arguments a branch reading ``spec`` is built with."""
    if spec.modality == "image":
        c, h, w = spec.shape
        return {"in_channels": c, "height": h, "width": w}
    c, length = spec.shape
    return {"in_channels": c, "seq_len": length}


class MLPHead(nn.Sequential):
    """``[Dropout → Linear → ReLU] * len(hidden) → Dropout → Linear(num_classes)``."""

    def __init__(self, in_dim: int, hidden: list[int], num_classes: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(in_dim, h), nn.ReLU()]
            in_dim = h
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, num_classes)]
        super().__init__(*layers)


@register("net")
class FusionNet(nn.Module):
    """Runs named branches side by side on the same input, pools each to a vector (or hands
    their sequences to a sequence fusion), fuses them and classifies with an MLP head.

    - ``views``: per-branch input transform by name (``raw``, ``diff``, ``fft``, ``rows``, ...;
      see :mod:`fusionlab.models.views`); unlisted branches read the raw input.
    - ``embedding``: for text data, the token embedding shared by all branches (ignored otherwise).
    - ``taps``: multi-level fusion; depths (1-based) tapped in every branch, each tapped layer pooled
      and fused as its own input ``<branch>@<depth>`` (see :class:`fusionlab.models.taps.Taps`).
    - Each branch must read the modality its view produces; a mismatch is a ConfigError naming
      the branch. Widths and shapes are injected from ``input_spec``, never typed by hand.
    """

    injected = ("input_spec", "num_classes")

    def __init__(
        self,
        input_spec: InputSpec,
        num_classes: int,
        branches: dict[str, Any],
        fusion: Any,
        head_hidden: list[int] = (128,),
        dropout: Probability = 0.1,
        views: dict[str, str] | None = None,
        embedding: Any = None,
        taps: PositiveInts | None = None,
    ) -> None:
        super().__init__()
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
        self.embedding: nn.Module | None = None
        if input_spec.modality == "text":
            if embedding is None:
                raise ConfigError("embedding", "text data needs a token embedding (embedding=learned)")
            self.embedding = _build(embedding, "embedding", vocab_size=input_spec.vocab_size,
                                    tokens=input_spec.tokens)
            input_spec = InputSpec("series", (self.embedding.out_dim, input_spec.shape[0]), masked=True)
        self.input_spec = input_spec
        self.views = nn.ModuleDict()
        built, shapes = {}, {}
        for name, spec in branches.items():
            key = f"branches.{name}"
            view, branch_spec = make_view(views.get(name, "raw"), input_spec, f"views.{name}")
            cls = _target_class(spec, key)
            reads = getattr(cls, "modality", "series")
            if reads != branch_spec.modality:
                hint = f" (try views: {{{name}: rows}})" if branch_spec.modality == "image" else ""
                raise ConfigError(key, f"{cls.__name__} reads {reads} data, but its input is "
                                  f"{branch_spec.describe()}{hint}")
            self.views[name] = view
            built[name] = _build(spec, key, **shape_arguments(branch_spec))
            shapes[name] = branch_spec.shape
        self.branches = nn.ModuleDict(built)
        # multi-level fusion: every tapped layer of every branch is a fusion input "<branch>@<depth>"
        self.taps = Taps(self.branches, taps, shapes) if taps else None
        self.input_names = self.taps.names if self.taps is not None else list(self.branches)
        in_dims = self.taps.in_dims if self.taps is not None else [b.out_dim for b in self.branches.values()]
        self.fusion = _build(fusion, "fusion", in_dims=in_dims, num_classes=num_classes)
        if getattr(self.fusion, "makes_logits", False):
            self.head: nn.Module = nn.Identity()  # decision-level fusion: the fusion gives the logits
        else:
            self.head = MLPHead(self.fusion.out_dim, list(head_hidden), num_classes, dropout)

    def sequences(self, x: Tensor, mask: Tensor | None = None) -> tuple[list[Tensor], list[Tensor | None]]:
        """Each branch's output sequence ``(B, T_i, D_i)`` and its mask ``(B, T_i)`` (or None)."""
        if self.embedding is not None:
            mask = x != 0
            x = self.embedding(x)
        seqs, masks = [], []
        for name, branch in self.branches.items():
            xv, mv = self.views[name](x, mask)
            if self.taps is not None:
                tapped, tapped_masks = self.taps.sequences(name, branch, xv, mv)
                seqs += tapped
                masks += tapped_masks
                continue
            seq = branch(xv, mv)
            seqs.append(seq)
            masks.append(branch.out_mask(mv, seq.shape[1]))
        return seqs, masks

    def features(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """One pooled vector per branch (per tapped layer with ``taps``)."""
        seqs, masks = self.sequences(x, mask)
        if self.taps is not None:
            return self.taps.pool_all(self.branches, seqs, masks)
        return [b.pool(s, m) for b, s, m in zip(self.branches.values(), seqs, masks)]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if getattr(self.fusion, "takes", "vectors") == "sequences":
            fused = self.fusion(*self.sequences(x, mask))
        else:
            fused = self.fusion(self.features(x, mask))
        return self.head(fused)

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per branch, for the embedding, fusion, head and in total."""
        counts = {f"branch/{n}": _count(b) for n, b in self.branches.items()}
        if self.embedding is not None:
            counts["embedding"] = _count(self.embedding)
        counts["fusion"] = _count(self.fusion)
        counts["head"] = _count(self.head)
        counts["total"] = _count(self)
        return counts


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
