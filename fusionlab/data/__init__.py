"""Datamodules. Each exposes ``input_spec``, ``num_classes`` and ``describe()``."""

from fusionlab.data.base import ArrayDataModule, TensorBatches
from fusionlab.data.digits import DigitsDataModule
from fusionlab.data.mnist1d import MNIST1DDataModule
from fusionlab.data.npz import NPZDataModule
from fusionlab.data.ucr import UCRDataModule

__all__ = [
    "ArrayDataModule",
    "DigitsDataModule",
    "MNIST1DDataModule",
    "NPZDataModule",
    "TensorBatches",
    "UCRDataModule",
]
