"""Old import path of the series augmentations and the augmentation base: see :mod:`fusionlab.augmentations`.

Kept so that ``_target_: fusionlab.training.augment.<Name>`` in existing configs and checkpoints
still builds the same class; new configs use ``fusionlab.augmentations.<Name>``.
"""

from fusionlab.augmentations.base import Identity, LengthFraction, RandomAugmentation, chosen_examples
from fusionlab.augmentations.compose import Compose
from fusionlab.augmentations.series import Jitter, MagnitudeWarp, Scaling, TimeMask, TimeShift, WindowCrop

__all__ = ["Compose", "Identity", "Jitter", "LengthFraction", "MagnitudeWarp", "RandomAugmentation", "Scaling",
           "TimeMask", "TimeShift", "WindowCrop", "chosen_examples"]
