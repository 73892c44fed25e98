"""Decision-level (late) fusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError, NonNegativeFloat, PositiveInts, Probability, choice
from fusionlab.fusions.base import Fusion, InDims
from fusionlab.models.fusion_net import MLPHead


class LateFusion(Fusion):
    """Late (decision-level) fusion: a classifier per branch, logits averaged (mean) or softmax-weighted
    (weights).

    Late (decision-level) fusion: every branch gets its own classifier ``f_i`` and the logits
    are combined,

        mean:     z = (1/k) sum_i f_i(x_i)
        weights:  z = sum_i w_i f_i(x_i),  w = softmax(a)   (a: k learned logits, start equal)

    ``f_i`` is ``[Dropout → Linear → ReLU] * len(hidden) → Dropout → Linear(num_classes)`` (a linear
    classifier for ``hidden: []``). The output are the logits (``makes_logits``: the model adds no
    head, so ``dropout`` here replaces the head's). Parameters, with ``h = [D_i, hidden..., C]``:
    ``sum_i sum_l (h_l + 1) h_{l+1}``, plus ``k`` for ``weights``. ``branch_weights`` holds ``w``
    for ``weights`` (``None`` for ``mean``).

    ``branch_loss = λ > 0`` adds each branch classifier's own cross-entropy to the training loss,

        L = CE(z, y) + λ (1/k) sum_i CE(f_i(x_i), y),

    so every branch also learns to classify alone instead of leaning on the others (unimodal losses
    against the greedy learning of multimodal networks: Wang, Tran & Feiszli, "What Makes Training
    Multi-Modal Classification Networks Hard?", CVPR 2020, Gradient-Blending; Wu et al., ICML 2022).
    Only training adds it; no parameters. ``fused_loss = μ`` weighs the first term,

        L = μ CE(z, y) + λ (1/k) sum_i CE(f_i(x_i), y);

    ``μ = 0`` trains every branch and its classifier on its own loss only and averages their logits at
    prediction: the uni-modal ensemble of Du et al., "On Uni-Modal Feature Learning in Supervised
    Multi-Modal Learning", ICML 2023 (one run, one best-validation checkpoint). It needs ``λ > 0``.

    Args:
        mode: mean | weights: combine the branches' logits equally or with learned softmax weights
        hidden: hidden widths of each branch's classifier ([]: linear)
        dropout: dropout before each classifier layer (replaces the model's head dropout)
        branch_loss: weight of the branches' own mean cross-entropy added to the training loss (0: off)
        fused_loss: weight of the fused logits' cross-entropy in the training loss (0: branches train alone)
    """

    injected = ("in_dims", "num_classes")
    makes_logits = True

    def __init__(self, in_dims: InDims, num_classes: int, mode: choice("mean", "weights") = "mean",
                 hidden: PositiveInts = (), dropout: Probability = 0.1, branch_loss: NonNegativeFloat = 0.0,
                 fused_loss: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        if fused_loss == 0 and branch_loss == 0:
            raise ConfigError("fused_loss", "is 0 and so is branch_loss: the training loss would be 0 (set one > 0)")
        in_dims = self.set_inputs(in_dims)
        self.mode = mode
        self.heads = nn.ModuleList(MLPHead(d, list(hidden), num_classes, dropout) for d in in_dims)
        self.weight_logits = nn.Parameter(torch.zeros(len(in_dims))) if mode == "weights" else None
        self.out_dim = num_classes
        self.branch_loss = branch_loss
        self.fused_loss = fused_loss
        self._train_branch_logits: Tensor | None = None  # the last training forward's, for auxiliary_loss

    def branch_logits(self, inputs: dict[str, Tensor]) -> Tensor:
        """Every branch's logits, ``(B, k, num_classes)``, in input order."""
        return torch.stack([head(x) for head, x in zip(self.heads, self.ordered(inputs))], dim=1)

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        logits = self.branch_logits(inputs)
        self._train_branch_logits = logits if self.training and self.branch_loss > 0 else None
        if self.weight_logits is None:
            return logits.mean(dim=1)
        w = torch.softmax(self.weight_logits, dim=0)
        self.branch_weights = w.detach().expand(logits.shape[0], -1)
        return (w[None, :, None] * logits).sum(dim=1)

    def auxiliary_loss(self, target: Tensor, label_smoothing: float = 0.0) -> Tensor | None:
        """``branch_loss`` times the branches' mean cross-entropy on the last training forward."""
        logits, self._train_branch_logits = self._train_branch_logits, None
        if logits is None:
            return None
        k = logits.shape[1]
        # (B, k, C) -> (B*k, C), targets repeated per branch (class ids or soft targets)
        per_branch = target.repeat_interleave(k, dim=0)
        ce = F.cross_entropy(logits.flatten(0, 1), per_branch, label_smoothing=label_smoothing)
        return self.branch_loss * ce
