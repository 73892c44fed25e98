"""Old import path of the token augmentations: see :mod:`fusionlab.augmentations.text` (kept so that
existing ``_target_`` paths still build the same class)."""

from fusionlab.augmentations.text import TokenAugmentation, TokenDropout, TokenSwap

__all__ = ["TokenAugmentation", "TokenDropout", "TokenSwap"]
