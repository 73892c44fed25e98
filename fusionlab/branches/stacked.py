"""Sequential stacking: branches applied one after another (e.g. a conv stem feeding an LSTM)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch import Tensor, nn

from fusionlab.branches.base import Branch
from fusionlab.config.build import build
from fusionlab.config.schema import ConfigError, Probability


class StackedBranch(Branch):
    """Stages run in sequence: stage ``i + 1`` reads stage ``i``'s output ``(B, T_i, D_i)`` as a
    series ``(B, D_i, T_i)``, built with ``in_channels = D_i`` and ``seq_len = T_i`` (so widths are
    never typed by hand). Masks follow each stage's ``out_mask``; the last stage pools (its own
    ``pool`` key). ``dropout`` is applied to the last stage's output sequence (e.g. the 0.8 dropout
    after LSTM-FCN's LSTM). Every stage must read series data. DeepConvLSTM (Ordóñez & Roggen 2016)
    is a CNN stage followed by an LSTM stage.
    """

    def __init__(self, in_channels: int, seq_len: int, stages: list[Any], dropout: Probability = 0.0) -> None:
        super().__init__()
        if not stages:
            raise ConfigError("stages", "needs at least one stage")
        built: list[nn.Module] = []
        channels, length = in_channels, seq_len
        for i, spec in enumerate(stages):
            key = f"stages[{i}]"
            stage = spec if isinstance(spec, nn.Module) else _build_stage(spec, key, channels, length)
            if getattr(stage, "modality", "series") != "series":
                raise ConfigError(key, f"{type(stage).__name__} reads {stage.modality} data; stages read series")
            built.append(stage)
            length = _output_length(stage, channels, length)
            channels = stage.out_dim
        self.stages = nn.ModuleList(built)
        self.in_channels = in_channels
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_dim = channels
        self.pool_name = getattr(built[-1], "pool_name", "")
        self._lengths: dict[int, list[int]] = {}  # input length -> every stage's output length
        self._last_run: list[int] = []  # every stage's output length in the last forward

    def layer_outputs(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """Every stage's layers in order (a stage without ``layer_outputs`` counts as one layer)."""
        return self._run(x, mask, layers=True)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self._run(x, mask, layers=False)[-1]

    def _run(self, x: Tensor, mask: Tensor | None, layers: bool) -> list[Tensor]:
        outs, lengths, length = [], [], x.shape[-1]
        for stage in self.stages:
            seqs = stage.layer_outputs(x, mask) if layers and hasattr(stage, "layer_outputs") else [stage(x, mask)]
            mask = stage.out_mask(mask, seqs[-1].shape[1])
            lengths.append(seqs[-1].shape[1])
            outs += seqs
            x = seqs[-1].transpose(1, 2)
        if isinstance(length, int):  # while exporting, lengths are symbolic (unhashable): not cached
            self._lengths[length] = lengths
        self._last_run = lengths
        outs[-1] = self.drop(outs[-1])
        return outs

    def out_mask(self, mask: Tensor | None, steps: int) -> Tensor | None:
        """The mask after the first stage whose output has ``steps`` steps (stages that keep the length
        keep the mask), so it also serves an inner layer's output (multi-level taps)."""
        if mask is None:
            return None
        for stage, n in zip(self.stages, self.lengths(mask.shape[1])):
            mask = stage.out_mask(mask, n)
            if n == steps:
                return mask
        return mask

    def lengths(self, length: int) -> list[int]:
        """Every stage's output length for ``length`` input steps (recorded by forward, else a dry run)."""
        if not isinstance(length, int):  # symbolic (export): the lengths of the forward just run
            return self._last_run
        if length not in self._lengths:
            lengths, channels, steps = [], self.in_channels, length
            for stage in self.stages:
                steps = _output_length(stage, channels, steps)
                lengths.append(steps)
                channels = stage.out_dim
            self._lengths[length] = lengths
        return self._lengths[length]

    def pool(self, seq: Tensor, mask: Tensor | None = None) -> Tensor:
        """The last stage's pooling (e.g. an LSTM's last step)."""
        return self.stages[-1].pool(seq, mask)


def _build_stage(spec: Any, key: str, channels: int, length: int) -> nn.Module:
    if not isinstance(spec, (Mapping, DictConfig)) or "_target_" not in spec:
        raise ConfigError(key, "expected a branch config with a _target_ or an nn.Module")
    cls = get_class(spec["_target_"])
    wanted = set(getattr(cls, "injected", ()))
    shape = {k: v for k, v in {"in_channels": channels, "seq_len": length}.items() if k in wanted}
    return build(spec, key, **shape, _recursive_=False)


@torch.no_grad()
def _output_length(stage: nn.Module, channels: int, length: int) -> int:
    """The number of steps ``stage`` outputs for ``length`` input steps (one dry run in eval mode)."""
    was_training = stage.training
    device = next((p.device for p in stage.parameters()), torch.device("cpu"))
    stage.eval()
    try:
        return stage(torch.zeros(1, channels, length, device=device)).shape[1]
    finally:
        stage.train(was_training)
