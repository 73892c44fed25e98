"""Datamodules. Each exposes ``input_shape``, ``num_classes`` and ``modality``."""

from fusionlab.data.base import ArrayDataModule, TensorBatches
from fusionlab.data.mnist1d import MNIST1DDataModule

__all__ = ["ArrayDataModule", "MNIST1DDataModule", "TensorBatches"]
