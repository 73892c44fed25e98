"""Multi-level fusion: features tapped at several depths of every branch become separate fusion inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError
from fusionlab.models.time_pooling import make_pooler


class Taps(nn.Module):
    """Taps layers ``taps`` (1-based depths) of every branch; each tapped layer's sequence
    ``(B, T_l, D_l)`` is pooled on its own and fed to the fusion as an input named ``<branch>@<depth>``
    (for ``taps=[1, 3]`` and branches cnn, transformer: ``cnn@1, cnn@3, transformer@1, transformer@3``,
    the fusion's input order: by branch name, then depth).

    A branch taps its ``layer_outputs(x, mask)`` (CNN: each conv block; Transformer: each encoder
    layer; stacked: every stage's layers); a branch without it (RNN, MLP) has one layer, its output.
    Asking for a depth a branch lacks is a ConfigError on ``taps`` naming the branch. The deepest
    layer is pooled by the branch's own ``pool``; inner layers get a pooler of the same kind for their
    width. ``shapes`` gives each branch's input shape (after its view), for one dry run that finds the
    layers' widths.
    """

    def __init__(self, branches: Mapping[str, nn.Module], taps: Sequence[int],
                 shapes: Mapping[str, Sequence[int]]) -> None:
        super().__init__()
        taps = list(taps)
        if not taps or any(t < 1 for t in taps) or len(set(taps)) != len(taps):
            raise ConfigError("taps", f"needs distinct depths >= 1 (1 = first layer), got {taps}")
        self.taps = sorted(taps)
        self.depths: dict[str, int] = {}
        self.names: list[str] = []
        self.in_dims: dict[str, int] = {}
        self.poolers = nn.ModuleDict()
        for name, branch in sorted(branches.items()):  # the fusion's input order: by branch name, then depth
            widths = [seq.shape[-1] for seq in _dry_layers(branch, shapes[name])]
            self.depths[name] = len(widths)
            if self.taps[-1] > len(widths):
                what = "layer" if len(widths) == 1 else "layers"
                support = "" if hasattr(branch, "layer_outputs") else " (it has no per-layer outputs)"
                raise ConfigError("taps", f"branch '{name}' ({type(branch).__name__}) has {len(widths)} {what} "
                                  f"to tap{support}, but taps={self.taps} asks for depth {self.taps[-1]}")
            for depth in self.taps:
                self.names.append(f"{name}@{depth}")
                self.in_dims[f"{name}@{depth}"] = widths[depth - 1]
                if depth < len(widths):
                    self.poolers[f"{name}@{depth}"] = make_pooler(getattr(branch, "pool_name", "mean"),
                                                                  widths[depth - 1])

    def sequences(self, name: str, branch: nn.Module, x: Tensor,
                  mask: Tensor | None) -> tuple[list[Tensor], list[Tensor | None]]:
        """The tapped layers' sequences of one branch and their masks."""
        layers = branch.layer_outputs(x, mask) if hasattr(branch, "layer_outputs") else [branch(x, mask)]
        seqs = [layers[d - 1] for d in self.taps]
        return seqs, [branch.out_mask(mask, s.shape[1]) for s in seqs]

    def pool(self, name: str, branch: nn.Module, seqs: list[Tensor], masks: list[Tensor | None]) -> list[Tensor]:
        """One vector per tapped layer of branch ``name``."""
        out = []
        for depth, seq, mask in zip(self.taps, seqs, masks):
            if depth == self.depths[name]:
                out.append(branch.pool(seq, mask))
            else:
                out.append(self.poolers[f"{name}@{depth}"](seq, mask))
        return out


    def pool_all(self, branches: Mapping[str, nn.Module], seqs: Mapping[str, Tensor],
                 masks: Mapping[str, Tensor | None]) -> dict[str, Tensor]:
        """The vector of every tapped layer by input name ``<branch>@<depth>``."""
        out: dict[str, Tensor] = {}
        for name, branch in branches.items():
            keys = [f"{name}@{depth}" for depth in self.taps]
            vectors = self.pool(name, branch, [seqs[k] for k in keys], [masks[k] for k in keys])
            out.update(zip(keys, vectors))
        return out


@torch.no_grad()
def _dry_layers(branch: nn.Module, shape: Sequence[int]) -> list[Tensor]:
    """The branch's tappable layer outputs on one all-zero example (eval mode, restored after)."""
    was_training = branch.training
    device = next((p.device for p in branch.parameters()), torch.device("cpu"))
    branch.eval()
    try:
        x = torch.zeros(1, *shape, device=device)
        return branch.layer_outputs(x) if hasattr(branch, "layer_outputs") else [branch(x)]
    finally:
        branch.train(was_training)
