"""Weight initialisation schemes, applied to the built model before training."""

from __future__ import annotations

from torch import nn

from fusionlab.config.schema import PositiveFloat, choice

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


class DefaultInit:
    """Keep PyTorch's own initialisation (Kaiming-uniform with a=sqrt(5) for Linear/Conv)."""

    def __call__(self, model: nn.Module) -> None:
        return None


class XavierInit:
    """Glorot & Bengio 2010: ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))`` (uniform) or
    ``N(0, gain^2 * 2 / (fan_in + fan_out))`` (normal) for Linear/Conv and RNN weights."""

    def __init__(self, distribution: choice("uniform", "normal") = "uniform", gain: PositiveFloat = 1.0,
                 zero_bias: bool = True) -> None:
        self.distribution, self.gain, self.zero_bias = distribution, gain, zero_bias

    def __call__(self, model: nn.Module) -> None:
        fn = nn.init.xavier_uniform_ if self.distribution == "uniform" else nn.init.xavier_normal_
        for name, p in _weights(model):
            if p.dim() >= 2:
                fn(p, gain=self.gain)
            elif self.zero_bias and "bias" in name:
                nn.init.zeros_(p)


class KaimingInit:
    """He et al. 2015: ``std = gain / sqrt(fan)``, ``gain = sqrt(2)`` for ReLU, on Linear/Conv weights."""

    def __init__(self, distribution: choice("uniform", "normal") = "normal",
                 mode: choice("fan_in", "fan_out") = "fan_in",
                 nonlinearity: choice("relu", "leaky_relu", "linear", "tanh") = "relu",
                 zero_bias: bool = True) -> None:
        self.distribution, self.mode, self.nonlinearity, self.zero_bias = distribution, mode, nonlinearity, zero_bias

    def __call__(self, model: nn.Module) -> None:
        fn = nn.init.kaiming_uniform_ if self.distribution == "uniform" else nn.init.kaiming_normal_
        for m in model.modules():
            if isinstance(m, _WEIGHTED):
                fn(m.weight, mode=self.mode, nonlinearity=self.nonlinearity)
                if self.zero_bias and m.bias is not None:
                    nn.init.zeros_(m.bias)


def _weights(model: nn.Module):
    for m in model.modules():
        if isinstance(m, (*_WEIGHTED, nn.RNNBase)):
            yield from m.named_parameters(recurse=False)
