"""scikit-learn's 8×8 handwritten digits (the UCI optdigits test set, Alpaydin & Kaynak 1998) as images."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionlab.data.base import ArrayDataModule

TEST_FRACTION = 1 / 3  # the fixed test part (stratified, seed TEST_SEED)
TEST_SEED = 0


class DigitsDataModule(ArrayDataModule):
    """1797 grey-level images ``(1, 8, 8)`` (values 0..16) of the digits 0-9, shipped with
    scikit-learn (``load_digits``, offline). A fixed stratified train/test split (1198/599, one
    third for test, seed 0) that no run option changes; validation is carved from the training
    part as for every dataset. Loading takes milliseconds, so nothing is cached.
    """

    modality = "image"
    source = "sklearn digits"
    defaults = {"batch_size": 64, "val_size": 0.2}

    def load_arrays(self) -> dict[str, Any]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = d.images.astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
        y = d.target.astype(np.int64)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_FRACTION, stratify=y,
                                                            random_state=TEST_SEED)
        return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
