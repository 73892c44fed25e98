"""What a set-up datamodule saves with a run (``metrics.json`` under ``data``): sizes, shapes,
classes and fitted statistics."""

from __future__ import annotations

from typing import Any


def describe_arrays(dm: Any) -> dict[str, Any]:
    """Sizes, shapes, classes and fitted statistics of a set-up :class:`~fusionlab.data.ArrayDataModule`."""
    spec = dm.input_spec
    out: dict[str, Any] = {
        "source": dm.source,
        "modality": spec.modality,
        "input_shape": list(spec.shape),
        "masked": spec.masked,
        "num_classes": dm.num_classes,
        "classes": dm.classes,
        "sizes": {k: len(v[1]) for k, v in dm.splits.items()},
        "preprocessing": type(dm.preprocessing).__name__,
        "stats": dm.stats,
        "impute": dm.impute,
    }
    if spec.masked:
        lengths = dm.splits["train"][2].sum(dim=1)
        out["train_lengths"] = [int(lengths.min()), int(lengths.max())]
        out["too_long"] = dm.too_long
    if spec.vocab_size:
        out["vocab_size"] = spec.vocab_size
    return out


def describe_tokens(dm: Any) -> dict[str, Any]:
    """Token statistics of a set-up text datamodule: mean tokens per text, the share of texts cut at
    ``max_length``, the share of unknown tokens, per split."""
    from fusionlab.data.tokenize import UNK_ID

    return {
        "mean_tokens": {k: round(float(v[2].sum(1).float().mean()), 2) for k, v in dm.splits.items()},
        "at_max_length": {k: round(float(v[2][:, -1].float().mean()), 4) for k, v in dm.splits.items()},
        "unknown_fraction": {k: round(float((v[0] == UNK_ID).sum() / v[2].sum()), 4) for k, v in dm.splits.items()},
    }
