"""The fused network: parallel branches → poolers → fusion → MLP head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig
from torch import Tensor, nn

from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, Probability

_ModuleOrConfig = Any  # an nn.Module, or a config mapping with a ``_target_``


def _build(spec: _ModuleOrConfig, key: str, **injected: Any) -> nn.Module:
    """An nn.Module as given, or built from its config with the ``injected`` shape arguments."""
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, (Mapping, DictConfig)) or "_target_" not in spec:
        raise ConfigError(key, "expected a config with a _target_ or an nn.Module")
    return build(spec, key, **injected, _recursive_=False)


class MLPHead(nn.Sequential):
    """``[Dropout → Linear → ReLU] * len(hidden) → Dropout → Linear(num_classes)``."""

    def __init__(self, in_dim: int, hidden: list[int], num_classes: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(in_dim, h), nn.ReLU()]
            in_dim = h
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, num_classes)]
        super().__init__(*layers)


class FusionNet(nn.Module):
    """Runs named branches side by side on the same input, pools each to a vector, fuses the
    vectors and classifies them with an MLP head.

    ``branches`` and ``fusion`` are modules or configs; from configs the input shape and the
    branches' widths are filled in, so no width is ever typed by hand.
    """

    injected = ("in_channels", "seq_len", "num_classes")

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        num_classes: int,
        branches: dict[str, Any],
        fusion: Any,
        head_hidden: list[int] = (128,),
        dropout: Probability = 0.1,
    ) -> None:
        super().__init__()
        if not branches:
            raise ConfigError("branches", "needs at least one branch")
        for h in head_hidden:
            if h <= 0:
                raise ConfigError("head_hidden", f"widths must be > 0, got {list(head_hidden)}")
        self.branches = nn.ModuleDict(
            {name: _build(spec, f"branches.{name}", in_channels=in_channels, seq_len=seq_len)
             for name, spec in branches.items()}
        )
        in_dims = [b.out_dim for b in self.branches.values()]
        self.fusion = _build(fusion, "fusion", in_dims=in_dims)
        self.head = MLPHead(self.fusion.out_dim, list(head_hidden), num_classes, dropout)

    def features(self, x: Tensor) -> list[Tensor]:
        """One pooled vector per branch."""
        return [branch.pool(branch(x)) for branch in self.branches.values()]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fusion(self.features(x)))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per branch, for the fusion, the head and in total."""
        counts = {f"branch/{n}": _count(b) for n, b in self.branches.items()}
        counts["fusion"] = _count(self.fusion)
        counts["head"] = _count(self.head)
        counts["total"] = _count(self)
        return counts


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)



