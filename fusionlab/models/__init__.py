"""Models: the fused network and its parts."""

from fusionlab.models.embedding import TokenEmbedding
from fusionlab.models.fusion_net import FusionNet, MLPHead

__all__ = ["FusionNet", "MLPHead", "TokenEmbedding"]
