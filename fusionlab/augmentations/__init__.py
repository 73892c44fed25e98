"""Batch augmentations, applied to training batches only (see :mod:`.base` for the protocol).

- :mod:`.series`: jitter, scaling, magnitude warp, time shift, time mask, window crop (``(B, C, L)``);
- :mod:`.image`: random shift, horizontal flip, cutout (``(B, C, H, W)``);
- :mod:`.text`: token dropout and token swap (token ids ``(B, L)``);
- :mod:`.mixing`: mixup and cutmix (soft targets);
- :mod:`.compose`: several in a row.

Each is one class here plus one YAML under ``conf/augmentation``.
"""

from fusionlab.augmentations.base import (
    Augmentation,
    Identity,
    LengthFraction,
    RandomAugmentation,
    apply_augmentation,
    call_augmentation,
    chosen_examples,
)
from fusionlab.augmentations.compose import Compose
from fusionlab.augmentations.image import Cutout, HorizontalFlip, ImageAugmentation, RandomShift
from fusionlab.augmentations.mixing import CutMix, LabelMixing, Mixup
from fusionlab.augmentations.series import Jitter, MagnitudeWarp, Scaling, TimeMask, TimeShift, WindowCrop
from fusionlab.augmentations.text import TokenAugmentation, TokenDropout, TokenSwap

__all__ = [
    "Augmentation",
    "Compose",
    "CutMix",
    "Cutout",
    "HorizontalFlip",
    "Identity",
    "ImageAugmentation",
    "Jitter",
    "LabelMixing",
    "LengthFraction",
    "MagnitudeWarp",
    "Mixup",
    "RandomAugmentation",
    "RandomShift",
    "Scaling",
    "TimeMask",
    "TimeShift",
    "TokenAugmentation",
    "TokenDropout",
    "TokenSwap",
    "WindowCrop",
    "apply_augmentation",
    "call_augmentation",
    "chosen_examples",
]
