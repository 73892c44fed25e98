"""Fusions: join the branches' vectors (or sequences) into one."""

from fusionlab.fusions.attention import AttentionFusion
from fusionlab.fusions.base import Fusion
from fusionlab.fusions.bilinear import BilinearFusion
from fusionlab.fusions.concat import ConcatFusion
from fusionlab.fusions.cross_attention import CrossAttentionFusion
from fusionlab.fusions.elementwise import MaxFusion, MeanFusion
from fusionlab.fusions.film import FiLMFusion
from fusionlab.fusions.gated import GatedFusion
from fusionlab.fusions.late import LateFusion
from fusionlab.fusions.lowrank import LowRankFusion
from fusionlab.fusions.sum import SumFusion
from fusionlab.fusions.tensor import TensorFusion

__all__ = ["AttentionFusion", "BilinearFusion", "ConcatFusion", "CrossAttentionFusion", "FiLMFusion", "Fusion",
           "GatedFusion", "LateFusion", "LowRankFusion", "MaxFusion", "MeanFusion", "SumFusion", "TensorFusion"]
