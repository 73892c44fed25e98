"""``compile=true``: ``torch.compile`` of the network (the ``nn.Module``, not the LightningModule).

A network without recurrent layers is compiled whole: one graph per shape for the forward and,
through AOTAutograd, the backward. Recurrent layers (``nn.LSTM``/``nn.GRU``) compile to nothing
useful or slower (PyTorch's own advice: their fused kernels already do the work, and a graph
break around each costs more than it gains), so a network with one is compiled part by part: every
direct part without a recurrent layer (a CNN or Transformer branch, the fusion, the head, a
view with weights) is compiled on its own, the recurrent cells and the glue between the parts stay
eager. What was compiled and what stayed eager is returned and logged.

Two settings make the compiled step faster than the eager one where they can (measured in
``docs/results/compile.md``): on the CPU, Inductor draws dropout's random numbers with PyTorch's own
generator (``fallback_random``; its default per-element Philox code was the largest cost of a
compiled Transformer step there), which also makes a compiled network draw the same dropout masks
as the eager one; and an optimizer with a fused implementation (Adam, AdamW, SGD) takes its step in one
fused kernel (``fused=True``) unless the config chose ``fused`` or ``foreach`` itself.

Compilation is in place (``nn.Module.compile``): parameter names, ``state_dict`` keys and
checkpoints are those of the eager network. Inductor's FX-graph and AOTAutograd caches are on by
default in PyTorch (``TORCHINDUCTOR_FX_GRAPH_CACHE``, ``TORCHINDUCTOR_AUTOGRAD_CACHE``, kept in
``TORCHINDUCTOR_CACHE_DIR``, by default ``/tmp/torchinductor_<user>``): a second run of the same
model and shapes reuses the compiled kernels and starts much faster.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
from torch import nn

log = logging.getLogger("fusionlab")

RECURRENT = (nn.RNNBase,)  # nn.LSTM, nn.GRU, nn.RNN: left eager
OPTIONS: dict[str, Any] = {}  # keyword arguments of torch.compile (tests set {"backend": "aot_eager"})
# Inductor settings (torch._inductor.list_options()) passed as torch.compile(options=...) with the Inductor backend,
# per device type: on the CPU dropout draws from PyTorch's generator, as in eager mode (faster there than Inductor's
# per-element Philox C++); on a GPU Inductor's in-kernel random numbers are kept (fused into the consumer kernel)
INDUCTOR_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"fallback_random": True}}


@dataclass
class CompilePlan:
    """Names (dotted paths in the network) of the parts compiled and of those left eager."""

    compiled: list[str] = field(default_factory=list)
    eager: list[str] = field(default_factory=list)
    optimizer: str | None = None  # e.g. "AdamW (fused)", set when the optimizer is built

    def describe(self) -> str:
        done = ", ".join(self.compiled) or "nothing"
        left = f"; eager: {', '.join(self.eager)}" if self.eager else ""
        step = f"; optimizer: {self.optimizer}" if self.optimizer else ""
        return f"compiled: {done}{left}{step}"


def has_recurrent(module: nn.Module) -> bool:
    return any(isinstance(m, RECURRENT) for m in module.modules())


def _has_forward(module: nn.Module) -> bool:
    """Containers (ModuleDict, ModuleList) have no forward of their own: their items are the parts."""
    return type(module).forward is not nn.Module.forward


def _has_weights(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def compile_network(net: nn.Module, device_type: str = "cpu", **options: Any) -> CompilePlan:
    """Compile ``net`` in place with ``torch.compile(**options)``: whole when it has no recurrent
    layer, else each part without one (see the module docstring). Parts without weights (dropout,
    identity, a view such as ``diff``) cost a graph and a guard check per call for next to nothing:
    they stay eager and are not listed. ``device_type`` (where the network will train) picks the
    Inductor settings (:data:`INDUCTOR_OPTIONS`)."""
    options = with_inductor_options({**OPTIONS, **options}, device_type)
    plan = CompilePlan()
    if not has_recurrent(net):
        net.compile(**options)
        plan.compiled.append(type(net).__name__)
        return plan
    _compile_parts(net, "", plan, options)
    return plan


def with_inductor_options(options: dict[str, Any], device_type: str = "cpu") -> dict[str, Any]:
    """``options`` plus :data:`INDUCTOR_OPTIONS` for ``device_type`` under ``options`` when the
    backend is Inductor (the default) and no ``mode`` is given (torch.compile takes one of ``mode``
    and ``options``); settings given by the caller win."""
    defaults = INDUCTOR_OPTIONS.get(device_type, {})
    if options.get("backend", "inductor") != "inductor" or options.get("mode") is not None or not (
            defaults or options.get("options")):
        return options
    return {**options, "options": {**defaults, **(options.get("options") or {})}}


def with_fused_step(factory: Callable[..., Any]) -> Callable[..., Any]:
    """The optimizer factory (a ``functools.partial`` of an optimizer class, as Hydra builds it) with
    ``fused=True`` when the class has a fused implementation and the config set neither ``fused`` nor
    ``foreach`` (nor ``differentiable``); otherwise ``factory`` unchanged."""
    keywords = factory.keywords if isinstance(factory, functools.partial) else {}
    cls = factory.func if isinstance(factory, functools.partial) else factory
    if not isinstance(cls, type) or "fused" not in inspect.signature(cls).parameters:
        return factory
    if any(keywords.get(k) is not None for k in ("fused", "foreach")) or keywords.get("differentiable"):
        return factory
    return functools.partial(factory, fused=True)


def describe_optimizer(optimizer: Any) -> str:
    fused = any(group.get("fused") for group in optimizer.param_groups)
    return f"{type(optimizer).__name__}{' (fused)' if fused else ''}"


def _compile_parts(module: nn.Module, prefix: str, plan: CompilePlan, options: dict[str, Any]) -> None:
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, RECURRENT):
            plan.eager.append(f"{path} ({type(child).__name__})")
        elif has_recurrent(child) or not _has_forward(child):
            _compile_parts(child, f"{path}.", plan, options)
        elif _has_weights(child):
            child.compile(**options)
            plan.compiled.append(path)


class CompileReport(pl.Callback):
    """Times the first training step (where ``torch.compile`` traces and compiles) against the
    median of the next ``steps`` and logs the difference as the compile time; ``summary()`` puts it
    in ``metrics.json`` as ``compile``. The plan is the module's ``compile_plan``."""

    def __init__(self, steps: int = 5) -> None:
        self.plan, self.steps = CompilePlan(), steps
        self.times: list[float] = []
        self._start: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.plan = getattr(pl_module, "compile_plan", None) or CompilePlan()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if len(self.times) <= self.steps:
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._start is None or len(self.times) > self.steps:
            return
        self.times.append(time.perf_counter() - self._start)
        self._start = None
        if len(self.times) == min(self.steps + 1, trainer.num_training_batches or 1):
            log.info("torch.compile: %s; first step %.1f s (compile time about %.1f s)", self.plan.describe(),
                     self.times[0], self.compile_s())

    def compile_s(self) -> float | None:
        """First step minus the median later step (None before the first step)."""
        if not self.times:
            return None
        rest = sorted(self.times[1:])
        typical = rest[len(rest) // 2] if rest else 0.0
        return max(0.0, self.times[0] - typical)

    def summary(self) -> dict[str, Any]:
        return {"compile": {"compiled": self.plan.compiled, "eager": self.plan.eager, "optimizer": self.plan.optimizer,
                            "first_step_s": round(self.times[0], 3) if self.times else None,
                            "compile_s": None if self.compile_s() is None else round(self.compile_s(), 3)}}
