"""``scheduler=cosine_warmup`` is torch's ``SequentialLR(LinearLR, CosineAnnealingLR, ConstantLR)`` and
gives the learning rates of the hand-written schedule it replaced."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, SequentialLR

from fusionlab.training.schedules import WarmupCosine


class HandWrittenWarmupCosine(LambdaLR):
    """The schedule as it was written by hand before (fusionlab 1480a1e), kept as the reference."""

    def __init__(self, optimizer, warmup: int, total_steps: int, min_ratio: float) -> None:
        self.warmup, self.total_steps, self.min_ratio = warmup, total_steps, min_ratio
        super().__init__(optimizer, self.factor)

    def factor(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        progress = min(1.0, (t - self.warmup) / max(1, self.total_steps - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * (1 + math.cos(math.pi * progress)) / 2


def lr_curve(make, steps: int, lr: float = 0.01) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(("warmup", "total", "min_ratio", "steps"),
                         [(100, 1000, 0.0, 1000), (5, 40, 0.1, 40), (2, 6, 0.1, 6), (1, 10, 0.0, 10),
                          (0, 10, 0.2, 10), (8, 5, 0.0, 5), (3, 10, 0.05, 25)])
def test_learning_rates_match_the_hand_written_schedule(warmup, total, min_ratio, steps) -> None:
    """Including no warm-up, a run shorter than the warm-up and steps past ``total_steps`` (held at the minimum)."""
    new = lr_curve(lambda o: WarmupCosine(o, warmup=warmup, total_steps=total, min_ratio=min_ratio), steps)
    old = lr_curve(lambda o: HandWrittenWarmupCosine(o, warmup, total, min_ratio), steps)
    assert new == pytest.approx(old, rel=1e-9, abs=1e-12)


def test_it_is_torchs_sequential_schedule_and_resumes_from_its_state() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = WarmupCosine(opt, warmup=3, total_steps=12, min_ratio=0.0)
    assert isinstance(sched, SequentialLR)
    for _ in range(5):
        opt.step()
        sched.step()
    state, opt_state = sched.state_dict(), opt.state_dict()
    rest = []
    for _ in range(5):
        opt.step()
        sched.step()
        rest.append(opt.param_groups[0]["lr"])
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = WarmupCosine(opt2, warmup=3, total_steps=12, min_ratio=0.0)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    resumed = []
    for _ in range(5):
        opt2.step()
        sched2.step()
        resumed.append(opt2.param_groups[0]["lr"])
    assert resumed == pytest.approx(rest)
