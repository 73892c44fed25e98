"""Models: the fused network and its parts."""

from fusionlab.models.fusion_net import FusionNet, MLPHead

__all__ = ["FusionNet", "MLPHead"]
