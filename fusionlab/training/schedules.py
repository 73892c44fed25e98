"""Learning-rate schedules that torch does not ship, and the step count some schedules need."""

from __future__ import annotations

import functools
import inspect
import math
from typing import Annotated, Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from fusionlab.config.schema import NonNegativeInt, PositiveInt, Range
from fusionlab.registry import register


@register("scheduler")
class WarmupCosine(LambdaLR):
    """Linear warm-up, then cosine decay (Goyal et al. 2017; Loshchilov & Hutter 2017).

    At step ``t`` (epochs or optimizer steps, by the scheduler's ``interval``) the learning rate is
    ``lr * (t + 1) / warmup`` while ``t < warmup``, then
    ``lr * (m + (1 - m) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2)`` with
    ``m = min_ratio``. ``total_steps`` is filled in with the run's steps when left null; a run shorter
than ``warmup`` (e.g. ``debug=fast``) only warms up.
    """

    def __init__(self, optimizer: Optimizer, warmup: NonNegativeInt = 5, total_steps: PositiveInt | None = None,
                 min_ratio: Annotated[float, Range(ge=0.0, le=1.0)] = 0.0) -> None:
        if total_steps is None:
            raise ValueError("total_steps is required (it is filled in from the trainer when left null)")
        self.warmup, self.total_steps, self.min_ratio = warmup, total_steps, min_ratio
        super().__init__(optimizer, self.factor)

    def factor(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        progress = min(1.0, (t - self.warmup) / max(1, self.total_steps - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * (1 + math.cos(math.pi * progress)) / 2


def with_total_steps(factory: Any, total_steps: int) -> Any:
    """Fill ``total_steps`` of a ``_partial_`` scheduler (OneCycleLR, WarmupCosine) when it is unset."""
    if not isinstance(factory, functools.partial):
        return factory
    try:
        params = inspect.signature(factory.func).parameters
    except (TypeError, ValueError):
        return factory
    if "total_steps" in params and factory.keywords.get("total_steps") is None:
        return functools.partial(factory, total_steps=total_steps)
    return factory
