"""The contract every fusion follows."""

from collections.abc import Mapping, Sequence
from typing import ClassVar

from torch import Tensor, nn

from fusionlab.config.schema import ConfigError
from fusionlab.registry import Registrable

InDims = Mapping[str, int]  # input name -> width, in the model's input order


class Fusion(nn.Module, Registrable):
    """Joins k named inputs into one ``(B, out_dim)``.

    Inputs come by name, in one documented, fixed order: the model's branches sorted by name (with
    ``taps``: by branch name, then depth, ``<branch>@<depth>``), never the order in which Hydra
    composed them. ``in_dims`` (name -> width, in that order) is injected when the model is built.

    - ``takes = "vectors"`` (default): ``forward(inputs)`` with ``inputs`` a mapping name ->
      ``(B, D_name)``, the branches' pooled vectors.
    - ``takes = "sequences"``: ``forward(inputs, masks)`` with name -> ``(B, T, D)`` sequences and
      name -> ``(B, T)`` bool masks or None (e.g. cross-attention).

    ``arity`` is the number of inputs a fusion takes (None: any number >= ``min_inputs``); a model
    with another number is refused with one line. A fusion with ``makes_logits = True`` also gets
    ``num_classes`` and its output are the logits (no head). Fusions that expose per-input weights
    (gates, attention) store the last batch's weights ``(B, k)`` in ``self.branch_weights``, columns
    in input order. A fusion may add a term to the training loss through :meth:`auxiliary_loss`
    (late fusion's ``branch_loss``: each branch classifier's own cross-entropy), and weigh the fused
    output's own cross-entropy in training by ``fused_loss`` (1 unless a fusion sets it).
    """

    registry_kind: ClassVar[str] = "fusion"  # every subclass is registered (fusionlab.registry)
    injected: ClassVar[tuple[str, ...]] = ("in_dims",)
    takes: ClassVar[str] = "vectors"
    makes_logits: ClassVar[bool] = False
    arity: ClassVar[int | None] = None
    min_inputs: ClassVar[int] = 1
    option: ClassVar[str] = ""  # the name in messages (see option_name)
    out_dim: int
    branch_weights: Tensor | None = None
    fused_loss: float = 1.0  # weight of CE(fused output, y) in the training loss
    input_names: list[str]

    def set_inputs(self, in_dims: InDims | Sequence[int]) -> list[int]:
        """Record the input names (``self.input_names``), check their number against ``arity`` and
        ``min_inputs`` and return the widths in input order. A plain list of widths names its inputs
        ``"0"``, ``"1"``, ..."""
        dims = dict(in_dims) if isinstance(in_dims, Mapping) else {str(i): d for i, d in enumerate(in_dims)}
        self.input_names = list(dims)
        k, names = len(dims), ", ".join(dims)
        if self.arity is not None and k != self.arity:
            raise ConfigError("", f"{self.option_name()} fuses exactly {self.arity} branches, got {k} ({names})")
        if k < self.min_inputs:
            raise ConfigError("", f"{self.option_name()} needs at least {self.min_inputs} branches, got {k} ({names})")
        return list(dims.values())

    @classmethod
    def option_name(cls) -> str:
        """The name used in messages: ``option``, else the class name lower-cased without "Fusion"."""
        return cls.option or cls.__name__.removesuffix("Fusion").lower()

    def ordered(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        """The inputs as a list in input order (a missing name is a KeyError naming it)."""
        return [inputs[name] for name in self.input_names]

    def auxiliary_loss(self, target: Tensor, label_smoothing: float = 0.0) -> Tensor | None:
        """A term the training loop adds to the loss of the last training forward, given its
        targets (class ids or soft targets); None (the default): nothing to add."""
        return None

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
