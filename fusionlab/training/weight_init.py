"""Weight initialisation schemes (``init=...``), applied to the built model before training.

Every scheme sets the weight matrices (``dim >= 2``) of Linear, Conv, recurrent and attention
layers; normalisation layers and embeddings keep their own initialisation. ``zero_bias`` zeroes
those layers' biases; ``forget_bias`` sets the LSTM forget-gate bias (Jozefowicz et al. 2015
recommend 1.0: ``b_ih[f] = forget_bias``, ``b_hh[f] = 0``, so the gate's total bias is exactly it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from torch import Tensor, nn

from fusionlab.config.schema import PositiveFloat, choice
from fusionlab.registry import Registrable

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase, nn.MultiheadAttention)


def weight_matrices(model: nn.Module) -> Iterator[tuple[nn.Module, str, Tensor]]:
    """``(layer, name, parameter)`` for every weight matrix the schemes initialise."""
    for layer in model.modules():
        if isinstance(layer, _LAYERS):
            for name, p in layer.named_parameters(recurse=False):
                if p.dim() >= 2:
                    yield layer, name, p


class Init(Registrable):
    """Base: subclasses implement :meth:`weight`; biases and the LSTM forget gate are handled here."""

    registry_kind = "init"  # every subclass is registered (fusionlab.registry)

    def __init__(self, zero_bias: bool = True, forget_bias: float | None = None) -> None:
        self.zero_bias = zero_bias
        self.forget_bias = forget_bias

    def weight(self, layer: nn.Module, name: str, w: Tensor) -> None:
        """Initialise one weight matrix in place."""

    def __call__(self, model: nn.Module) -> None:
        for layer, name, w in weight_matrices(model):
            self.weight(layer, name, w)
        for layer in model.modules():
            if not isinstance(layer, _LAYERS):
                continue
            if self.zero_bias:
                for name, p in layer.named_parameters(recurse=False):
                    if "bias" in name:
                        nn.init.zeros_(p)
            if self.forget_bias is not None and isinstance(layer, nn.LSTM):
                set_forget_bias(layer, self.forget_bias)


def set_forget_bias(lstm: nn.LSTM, value: float) -> None:
    """Gate order in PyTorch's LSTM biases is (input, forget, cell, output)."""
    h = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            p.data[h : 2 * h] = value
        elif name.startswith("bias_hh"):
            p.data[h : 2 * h] = 0.0


class DefaultInit(Init):
    """Keep PyTorch's own initialisation (e.g. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for Linear)."""

    def __init__(self, forget_bias: float | None = None) -> None:
        super().__init__(zero_bias=False, forget_bias=forget_bias)


class XavierInit(Init):
    """Glorot & Bengio 2010: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (uniform)
    or ``N(0, gain^2 * 2 / (fan_in + fan_out))`` (normal)."""

    def __init__(self, distribution: choice("uniform", "normal") = "uniform", gain: PositiveFloat = 1.0,
                 zero_bias: bool = True, forget_bias: float | None = None) -> None:
        super().__init__(zero_bias, forget_bias)
        self.distribution, self.gain = distribution, gain

    def weight(self, layer: nn.Module, name: str, w: Tensor) -> None:
        fn = nn.init.xavier_uniform_ if self.distribution == "uniform" else nn.init.xavier_normal_
        fn(w, gain=self.gain)


class XavierNormalInit(XavierInit):
    """:class:`XavierInit` with the normal distribution as its default (``init=xavier_normal``)."""

    def __init__(self, distribution: choice("uniform", "normal") = "normal", gain: PositiveFloat = 1.0,
                 zero_bias: bool = True, forget_bias: float | None = None) -> None:
        super().__init__(distribution, gain, zero_bias, forget_bias)


class KaimingInit(Init):
    """He et al. 2015: ``std = gain / sqrt(fan)`` with ``gain = sqrt(2)`` for ReLU; ``N(0, std^2)``
    (normal) or ``U(-sqrt(3) std, sqrt(3) std)`` (uniform); ``fan`` is fan_in or fan_out."""

    def __init__(self, distribution: choice("uniform", "normal") = "normal",
                 mode: choice("fan_in", "fan_out") = "fan_in",
                 nonlinearity: choice("relu", "leaky_relu", "linear", "tanh", "sigmoid") = "relu",
                 zero_bias: bool = True, forget_bias: float | None = None) -> None:
        super().__init__(zero_bias, forget_bias)
        self.distribution, self.mode, self.nonlinearity = distribution, mode, nonlinearity

    def weight(self, layer: nn.Module, name: str, w: Tensor) -> None:
        fn = nn.init.kaiming_uniform_ if self.distribution == "uniform" else nn.init.kaiming_normal_
        fn(w, mode=self.mode, nonlinearity=self.nonlinearity)


class KaimingUniformInit(KaimingInit):
    """:class:`KaimingInit` with the uniform distribution as its default (``init=kaiming_uniform``)."""

    def __init__(self, distribution: choice("uniform", "normal") = "uniform",
                 mode: choice("fan_in", "fan_out") = "fan_in",
                 nonlinearity: choice("relu", "leaky_relu", "linear", "tanh", "sigmoid") = "relu",
                 zero_bias: bool = True, forget_bias: float | None = None) -> None:
        super().__init__(distribution, mode, nonlinearity, zero_bias, forget_bias)


class OrthogonalInit(Init):
    """The usual recurrent recipe (Saxe et al. 2014; Le et al. 2015): each gate's block of the
    recurrent weights ``W_hh`` is an orthogonal matrix (times ``gain``); every other weight matrix,
    including the RNN's input weights ``W_ih``, is Xavier-uniform; the LSTM forget-gate bias is 1.0
    (Jozefowicz et al. 2015) unless ``forget_bias`` says otherwise (None leaves it at zero)."""

    def __init__(self, gain: PositiveFloat = 1.0, zero_bias: bool = True, forget_bias: float | None = 1.0) -> None:
        super().__init__(zero_bias, forget_bias)
        self.gain = gain

    def weight(self, layer: nn.Module, name: str, w: Tensor) -> None:
        if isinstance(layer, nn.RNNBase) and name.startswith("weight_hh"):
            h = layer.hidden_size
            for block in w.data.split(h, dim=0):  # one (h, h) block per gate
                nn.init.orthogonal_(block, gain=self.gain)
        else:
            nn.init.xavier_uniform_(w)


class NormalInit(Init):
    """Every weight matrix ``~ N(0, std^2)``."""

    def __init__(self, std: PositiveFloat = 0.02, zero_bias: bool = True, forget_bias: float | None = None) -> None:
        super().__init__(zero_bias, forget_bias)
        self.std = std

    def weight(self, layer: nn.Module, name: str, w: Tensor) -> None:
        nn.init.normal_(w, 0.0, self.std)


def kaiming_std(fan: int, nonlinearity: str = "relu") -> float:
    """The standard deviation Kaiming initialisation targets (used by the tests)."""
    return nn.init.calculate_gain(nonlinearity) / math.sqrt(fan)
