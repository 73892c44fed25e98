"""The contract every branch follows."""

from typing import ClassVar

from torch import Tensor, nn

from fusionlab.models.time_pooling import make_pooler
from fusionlab.registry import Registrable


class Branch(nn.Module, Registrable):
    """A feature extractor that returns a sequence ``(B, T, D)``.

    ``modality`` says what it reads: ``series`` ``(B, C, L)`` (``in_channels`` and ``seq_len``
    injected) or ``image`` ``(B, C, H, W)`` (``in_channels``, ``height``, ``width`` injected), so
    shapes never appear in a config. Subclasses set ``self.out_dim`` (= D) and call
    :meth:`set_pool`.

    Masks: ``forward(x, mask)`` gets ``mask`` ``(B, L)`` (True on real steps) for padded inputs
    and must not let padding change the real steps' outputs; :meth:`out_mask` maps it to the
    output steps (the same mask when ``T == L``).
    """

    registry_kind: ClassVar[str] = "branch"  # every subclass is registered (fusionlab.registry)
    modality: ClassVar[str] = "series"
    injected: ClassVar[tuple[str, ...]] = ("in_channels", "seq_len")
    out_dim: int

    def set_pool(self, pool: str) -> None:
        self.pool_name = pool
        self.pooler = make_pooler(pool, self.out_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def out_mask(self, mask: Tensor | None, steps: int) -> Tensor | None:
        """The mask of the ``steps`` output steps, given the input mask."""
        if mask is None or mask.shape[1] == steps:
            return mask
        raise NotImplementedError(f"{type(self).__name__} changes the length and cannot map a mask")

    def pool(self, seq: Tensor, mask: Tensor | None = None) -> Tensor:
        """Reduce the branch's sequence to a vector ``(B, D)``, ignoring masked steps."""
        return self.pooler(seq, mask)
