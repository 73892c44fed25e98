"""Deprecated import path: the initialisation schemes live in :mod:`fusionlab.training.weight_init`
(a name that cannot be confused with ``__init__.py``). Configs and checkpoints that name
``fusionlab.training.init.<Scheme>`` keep working: these are the same classes."""

from fusionlab.training.weight_init import (  # noqa: F401
    DefaultInit,
    Init,
    KaimingInit,
    KaimingUniformInit,
    NormalInit,
    OrthogonalInit,
    XavierInit,
    XavierNormalInit,
    kaiming_std,
    set_forget_bias,
    weight_matrices,
)
