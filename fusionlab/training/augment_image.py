"""Old import path of the image augmentations: see :mod:`fusionlab.augmentations.image` (kept so that
existing ``_target_`` paths still build the same class)."""

from fusionlab.augmentations.image import Cutout, HorizontalFlip, ImageAugmentation, RandomShift

__all__ = ["Cutout", "HorizontalFlip", "ImageAugmentation", "RandomShift"]
