"""Datamodules and the data side of prediction.

Datasets (one class each, plus one YAML under ``conf/data``): :class:`MNIST1DDataModule`,
:class:`DigitsDataModule`, :class:`UCRDataModule`, :class:`NPZDataModule`, and the text datasets of
:mod:`fusionlab.data.text`. Each exposes ``input_spec``, ``num_classes``, ``class_names``,
``describe()`` and ``data_state()``.

New examples: :func:`read_inputs` reads a file, :func:`prepare_inputs` prepares raw examples with a
checkpoint's data state exactly as the test split was, :class:`InputsDataModule` serves them as
batches, :func:`encode_labels` maps a file's labels to the model's classes.
"""

from fusionlab.data.base import ArrayDataModule, TensorBatches
from fusionlab.data.digits import DigitsDataModule
from fusionlab.data.inputs import InputsDataModule
from fusionlab.data.memmap import NPYFolderDataModule
from fusionlab.data.mnist1d import MNIST1DDataModule
from fusionlab.data.npz import NPZDataModule
from fusionlab.data.prepare import prepare_inputs
from fusionlab.data.readers import encode_labels, read_inputs
from fusionlab.data.state import STATE_VERSION, data_state, state_input_spec
from fusionlab.data.ucr import UCRDataModule

__all__ = [
    "STATE_VERSION",
    "ArrayDataModule",
    "DigitsDataModule",
    "InputsDataModule",
    "MNIST1DDataModule",
    "NPYFolderDataModule",
    "NPZDataModule",
    "TensorBatches",
    "UCRDataModule",
    "data_state",
    "encode_labels",
    "prepare_inputs",
    "read_inputs",
    "state_input_spec",
]
