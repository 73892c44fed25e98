"""Fusions: join the branches' vectors into one."""

from fusionlab.fusions.attention import AttentionFusion
from fusionlab.fusions.base import Fusion
from fusionlab.fusions.concat import ConcatFusion
from fusionlab.fusions.gated import GatedFusion
from fusionlab.fusions.sum import SumFusion

__all__ = ["AttentionFusion", "ConcatFusion", "Fusion", "GatedFusion", "SumFusion"]
