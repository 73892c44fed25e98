"""The fused network: [embedding] → per-branch view → branches → time pooling → fusion → head.

:class:`FusionNet` takes built parts (as torchmultimodal's fusion models and lightning-hydra-template's
``LitModule(net)`` do); :func:`fusionlab.models.build_fusion_net` builds them from a config.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from fusionlab.models.subword_routing import reads_subwords, reads_word_ids
from fusionlab.models.taps import Taps
from fusionlab.models.views import RawView
from fusionlab.registry import register


class MLPHead(nn.Sequential):
    """``[Dropout → Linear → ReLU] * len(hidden) → Dropout → Linear(num_classes)``."""

    def __init__(self, in_dim: int, hidden: list[int], num_classes: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(in_dim, h), nn.ReLU()]
            in_dim = h
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, num_classes)]
        super().__init__(*layers)


@register("net")
class FusionNet(nn.Module):
    """Runs named branches side by side on the same input, pools each to a vector (or hands their
    sequences to a sequence fusion), fuses them and classifies with a head.

    - ``branches``: name -> built branch. The fusion's inputs are in one fixed, documented order:
      branch names sorted (with ``taps``: ``<branch>@<depth>`` by branch name, then depth), which is
      ``self.input_names`` and the column order of ``fusion.branch_weights``.
    - ``fusion``: built for those inputs (``in_dims`` name -> width, in that order).
    - ``head``: maps the fused vector to logits (None: the fusion's output are the logits, for
      decision-level fusions with ``makes_logits``).
    - ``views``: name -> input transform (missing: the raw input; see :mod:`fusionlab.models.views`).
    - ``embedding``: for text, the token embedding shared by all branches (token id 0 is padding).
    - ``taps``: multi-level fusion (:class:`fusionlab.models.taps.Taps`).
    """

    def __init__(self, branches: Mapping[str, nn.Module], fusion: nn.Module, head: nn.Module | None = None,
                 views: Mapping[str, nn.Module] | None = None, embedding: nn.Module | None = None,
                 taps: Taps | None = None) -> None:
        super().__init__()
        names = sorted(branches)
        views = dict(views or {})
        self.embedding = embedding
        self.views = nn.ModuleDict({n: views.get(n) or RawView() for n in names})
        self.branches = nn.ModuleDict({n: branches[n] for n in names})
        self.taps = taps
        self.input_names: list[str] = list(taps.names) if taps is not None else names
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()
        self.takes_sequences = getattr(fusion, "takes", "vectors") == "sequences"

    def sequences(self, x: Tensor, mask: Tensor | None = None, subwords: Tensor | None = None,
                  subword_mask: Tensor | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor | None]]:
        """Each input's sequence ``(B, T, D)`` and its mask ``(B, T)`` (or None), by input name.
        ``subwords``/``subword_mask``: text with ``data.subwords``, read by pretrained branches."""
        ids, id_mask = x, mask
        if self.embedding is not None:
            mask = x != 0
            x = self.embedding(x)
        seqs: dict[str, Tensor] = {}
        masks: dict[str, Tensor | None] = {}
        for name, branch in self.branches.items():
            if reads_subwords(type(branch)):  # its own tokenizer's inputs
                seqs[name], masks[name] = branch(subwords, subword_mask), subword_mask
                continue
            if reads_word_ids(type(branch)):  # the word ids themselves, before the shared embedding
                id_mask = ids != 0 if id_mask is None else id_mask
                seqs[name] = branch(ids, id_mask)
                masks[name] = branch.out_mask(id_mask, seqs[name].shape[1])
                continue
            xv, mv = self.views[name](x, mask)
            if self.taps is not None:
                tapped, tapped_masks = self.taps.sequences(name, branch, xv, mv)
                for depth, seq, m in zip(self.taps.taps, tapped, tapped_masks):
                    seqs[f"{name}@{depth}"], masks[f"{name}@{depth}"] = seq, m
                continue
            seq = branch(xv, mv)
            seqs[name], masks[name] = seq, branch.out_mask(mv, seq.shape[1])
        return seqs, masks

    def features(self, x: Tensor, mask: Tensor | None = None, subwords: Tensor | None = None,
                 subword_mask: Tensor | None = None) -> dict[str, Tensor]:
        """One pooled vector per input, by input name."""
        seqs, masks = self.sequences(x, mask, subwords, subword_mask)
        if self.taps is not None:
            return self.taps.pool_all(self.branches, seqs, masks)
        return {name: branch.pool(seqs[name], masks[name]) for name, branch in self.branches.items()}

    def forward(self, x: Tensor, mask: Tensor | None = None, subwords: Tensor | None = None,
                subword_mask: Tensor | None = None) -> Tensor:
        if self.takes_sequences:
            return self.head(self.fusion(*self.sequences(x, mask, subwords, subword_mask)))
        return self.head(self.fusion(self.features(x, mask, subwords, subword_mask)))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per branch, for the embedding, fusion, head and in total."""
        counts = {f"branch/{n}": _count(b) for n, b in self.branches.items()}
        if self.embedding is not None:
            counts["embedding"] = _count(self.embedding)
        counts["fusion"] = _count(self.fusion)
        counts["head"] = _count(self.head)
        counts["total"] = _count(self)
        return counts


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
