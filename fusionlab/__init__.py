"""fusionlab: build, train and compare fused CNN / RNN / Transformer networks from Hydra configs."""

__version__ = "0.1.0"
