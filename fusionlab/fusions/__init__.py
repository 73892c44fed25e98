"""Fusions: join the branches' vectors into one."""

from fusionlab.fusions.attention import AttentionFusion
from fusionlab.fusions.base import Fusion
from fusionlab.fusions.concat import ConcatFusion
from fusionlab.fusions.gated import GatedFusion
from fusionlab.fusions.lowrank import LowRankFusion
from fusionlab.fusions.pooling import MaxFusion, MeanFusion
from fusionlab.fusions.sum import SumFusion
from fusionlab.fusions.tensor import TensorFusion

__all__ = ["AttentionFusion", "ConcatFusion", "Fusion", "GatedFusion", "LowRankFusion", "MaxFusion", "MeanFusion",
           "SumFusion", "TensorFusion"]
