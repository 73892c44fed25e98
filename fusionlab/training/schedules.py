"""Learning-rate schedules composed from torch's, and the step count some schedules need."""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from fusionlab.config.schema import NonNegativeInt, PositiveInt, Range
from fusionlab.registry import register


@register("scheduler")
class WarmupCosine(SequentialLR):
    """Linear warm-up, then cosine decay (Goyal et al. 2017; Loshchilov & Hutter 2017), built from
    torch's own schedulers: ``SequentialLR(LinearLR, CosineAnnealingLR, ConstantLR)``.

    At step ``t`` (epochs or optimizer steps, by the scheduler's ``interval``) the learning rate is
    ``lr * (t + 1) / warmup`` while ``t < warmup`` (``LinearLR`` from ``1 / warmup`` to 1 over
    ``warmup - 1`` steps), then ``lr * (m + (1 - m) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2)``
    with ``m = min_ratio`` (``CosineAnnealingLR`` down to ``eta_min = m * lr``), and ``m * lr`` from
    ``total`` on (``ConstantLR``). ``total_steps`` is filled in with the run's steps when left null; a
    run shorter than ``warmup`` (e.g. ``debug=fast``) only warms up. Parameter groups share one
    learning rate in fusionlab; ``eta_min`` is taken from the first group's.
    """

    def __init__(self, optimizer: Optimizer, warmup: NonNegativeInt, total_steps: PositiveInt | None,
                 min_ratio: Annotated[float, Range(ge=0.0, le=1.0)]) -> None:
        if total_steps is None:
            raise ValueError("total_steps is required (it is filled in from the trainer when left null)")
        self.warmup, self.total_steps, self.min_ratio = warmup, total_steps, min_ratio
        group = optimizer.param_groups[0]
        peak = group.get("initial_lr", group["lr"])
        stages: list[LRScheduler] = []
        if warmup > 0:
            stages.append(LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1))
        cosine_steps = max(1, total_steps - warmup)
        stages.append(CosineAnnealingLR(optimizer, T_max=cosine_steps, eta_min=min_ratio * peak))
        stages.append(ConstantLR(optimizer, factor=min_ratio, total_iters=_FOREVER))  # past total_steps
        milestones = ([warmup] if warmup > 0 else []) + [warmup + cosine_steps]
        super().__init__(optimizer, stages, milestones)


_FOREVER = 2**62  # ConstantLR holds its factor for this many steps


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
