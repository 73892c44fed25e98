"""Token-level augmentations for text batches (token ids ``(B, L)``, 0 = padding, 1 = unknown).

Like :mod:`fusionlab.augmentations.series`: training batches only, each example augmented with
probability ``p``, vectorised over the batch, random numbers from torch's global generator on the
batch's device. They read the padding mask (``forward(x, mask=None)``; the LightningModule passes
it because ``uses_mask = True``; without it the mask is ``x != 0``) and never touch padding: only
real tokens are replaced, dropped or swapped, and padding stays at the end.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusionlab.augmentations.base import RandomAugmentation, chosen_examples
from fusionlab.config.schema import ConfigError, Probability, UnitProbability, choice
from fusionlab.data.tokenize import PAD_ID, UNK_ID


class TokenAugmentation(RandomAugmentation):
    """Base: :meth:`augment` gets the ids and the mask of real tokens."""

    uses_mask = True
    reads = ("text",)

    def augment(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        raise NotImplementedError

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if x.dim() != 2 or x.dtype.is_floating_point:
            raise ConfigError("augmentation", f"{type(self).__name__} works on text (token ids (batch, length)), "
                              f"got {x.dtype} {tuple(x.shape)}; use it with text data (e.g. data=text)")
        if self.p <= 0.0 or x.numel() == 0:
            return x
        real = (x != PAD_ID) if mask is None else (mask & (x != PAD_ID))
        out = self.augment(x, real)
        chosen = chosen_examples(x, self.p)
        return out if chosen is None else torch.where(chosen, out, x)


class TokenDropout(TokenAugmentation):
    """Word dropout: each real token is hit with probability ``rate``; ``mode: unk`` replaces it by
    ``<unk>`` (id 1; Iyyer et al. 2015 drop words, Bowman et al. 2016 replace them by UNK), ``mode:
    drop`` deletes it and closes the gap (later tokens move left, padding grows at the end). At
    least one token of each text is kept."""

    def __init__(self, rate: Probability = 0.1, mode: choice("unk", "drop") = "unk",
                 p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        if mode not in ("unk", "drop"):
            raise ValueError(f"mode must be 'unk' or 'drop', got {mode!r}")
        self.rate, self.mode = rate, mode

    def augment(self, x: Tensor, mask: Tensor) -> Tensor:
        hit = (torch.rand(x.shape, device=x.device) < self.rate) & mask
        if self.mode == "unk":
            return x.masked_fill(hit, UNK_ID)
        keep = mask & ~hit
        first = mask & (mask.cumsum(dim=1) == 1)  # each text's first real token
        keep = keep | (first & ~keep.any(dim=1, keepdim=True))  # never delete a whole text
        slot = keep.cumsum(dim=1) - 1  # where each kept token goes
        out = torch.full_like(x, PAD_ID)
        # dropped tokens are routed to a scratch column past the end, then cut off
        scratch = torch.cat([out, out[:, :1]], dim=1)
        target = torch.where(keep, slot, torch.full_like(slot, x.shape[1]))
        return scratch.scatter(1, target, x)[:, : x.shape[1]]


class TokenSwap(TokenAugmentation):
    """Swaps random neighbouring real tokens (the random swap of Wei & Zou 2019, "EDA", restricted to
    neighbours): a swap of positions ``(i, i+1)`` is drawn with probability ``rate`` where both are
    real tokens, and kept unless one was also drawn at ``i-1`` (so swaps never overlap and each token
    moves at most one step)."""

    def __init__(self, rate: Probability = 0.1, p: UnitProbability = 1.0) -> None:
        super().__init__(p)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate

    def augment(self, x: Tensor, mask: Tensor) -> Tensor:
        if x.shape[1] < 2:
            return x
        pair = mask[:, :-1] & mask[:, 1:]  # (B, L-1): i and i+1 are both real
        drawn = (torch.rand(pair.shape, device=x.device) < self.rate) & pair
        before = torch.nn.functional.pad(drawn[:, :-1], (1, 0))  # drawn at i-1
        start = drawn & ~before  # non-overlapping swap starts
        zero = torch.zeros_like(start[:, :1])
        left = torch.cat([start, zero], dim=1).long()  # position i takes i+1
        right = torch.cat([zero, start], dim=1).long()  # position i+1 takes i
        index = torch.arange(x.shape[1], device=x.device) + left - right
        return x.gather(1, index)
