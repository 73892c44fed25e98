"""Old import path of mixup and cutmix: see :mod:`fusionlab.augmentations.mixing` (kept so that
existing ``_target_`` paths still build the same class)."""

from fusionlab.augmentations.mixing import CutMix, LabelMixing, Mixup

__all__ = ["CutMix", "LabelMixing", "Mixup"]
