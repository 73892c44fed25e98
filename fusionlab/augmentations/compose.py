"""Several augmentations in a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from fusionlab.augmentations.base import Augmentation, call_augmentation


class Compose(Augmentation):
    """Applies ``transforms`` in order: ``t_n(... t_2(t_1(x)))``, each with its own ``p``
    (as ``torchvision.transforms.Compose``). In YAML, ``transforms`` is a list of nodes, each with
    its own ``_target_``. The padding mask reaches every transform, and the composition mixes
    labels when one of them does (``mixup`` may sit anywhere in the list)."""

    def __init__(self, transforms: Sequence[Any] = ()) -> None:
        super().__init__()
        modules = list(transforms)
        for i, t in enumerate(modules):
            if not isinstance(t, nn.Module):
                raise TypeError(f"transforms[{i}] must be an nn.Module, got {type(t).__name__}")
        self.transforms = nn.ModuleList(modules)

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        """The modalities every transform applies to."""
        kinds = ("series", "image", "text")
        return tuple(k for k in kinds if all(k in getattr(t, "reads", kinds) for t in self.transforms))

    @property
    def mixes_labels(self) -> bool:  # type: ignore[override]
        return any(getattr(t, "mixes_labels", False) for t in self.transforms)

    def apply(self, x: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        for t in self.transforms:
            x, target, mask = call_augmentation(t, x, target, mask)
        return x, target, mask

    def forward(self, x: Tensor, *args: Tensor | None) -> Any:
        """``forward(x, mask=None) -> x``; when a transform mixes labels ``forward(x, y_soft,
        mask=None) -> (x, y_soft)`` (with a mask ``(x, y_soft, mask)``), as :class:`LabelMixing`."""
        if self.mixes_labels:
            y, mask = args[0], (args[1] if len(args) > 1 else None)
            x, y, mixed_mask = self.apply(x, y, mask)
            return (x, y) if mask is None else (x, y, mixed_mask)
        mask = args[0] if args else None
        return self.apply(x, None, mask)[0]  # type: ignore[arg-type]  (no targets without mixing)
