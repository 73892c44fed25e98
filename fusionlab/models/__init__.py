"""Models: the fused network, its parts and the factory that builds it from a config."""

from fusionlab.models.embedding import TokenEmbedding
from fusionlab.models.factory import build_fusion_net, make_fusion_net
from fusionlab.models.fusion_net import FusionNet, MLPHead
from fusionlab.models.norm import MaskedBatchNorm1d

__all__ = ["FusionNet", "MLPHead", "MaskedBatchNorm1d", "TokenEmbedding", "build_fusion_net", "make_fusion_net"]
