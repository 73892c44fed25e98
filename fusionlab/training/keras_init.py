"""Keras' defaults as an initialisation scheme (``init=keras``), for comparing with Keras papers."""

from __future__ import annotations

from torch import Tensor, nn

from fusionlab.config.schema import PositiveFloat
from fusionlab.training.weight_init import Init


class KerasInit(Init):
    """What a Keras model of LSTM-FCN / FCN (Karim et al. 2017; Wang et al. 2017) starts from:

    - convolutions ``he_uniform``: ``U(-sqrt(6 / fan_in), sqrt(6 / fan_in))``, i.e.
      ``kaiming_uniform_(nonlinearity='relu')`` (PyTorch's default is ``a=sqrt(5)``: 1/sqrt(3) as wide);
    - dense and recurrent input weights ``glorot_uniform``, recurrent state weights ``orthogonal``;
    - every BatchNorm layer ``momentum=0.99, epsilon=1e-3`` in Keras' terms, i.e. PyTorch
      ``momentum=1 - 0.99 = 0.01`` (``bn_momentum``) and ``eps=1e-3`` (``bn_eps``);
    - zero biases (``zero_bias``), LSTM forget-gate bias 1 (Keras' ``unit_forget_bias``).

    Adam's ``epsilon=1e-7`` is the optimizer's: ``optimizer.eps=1e-7``.
    """

    def __init__(self, bn_momentum: PositiveFloat = 0.01, bn_eps: PositiveFloat = 1e-3, zero_bias: bool = True,
                 forget_bias: float | None = 1.0) -> None:
        super().__init__(zero_bias=zero_bias, forget_bias=forget_bias)
        self.bn_momentum, self.bn_eps = bn_momentum, bn_eps

    def weight(self, layer: nn.Module, name: str, w: Tensor) -> None:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_uniform_(w, nonlinearity="relu")
        elif isinstance(layer, nn.RNNBase) and name.startswith("weight_hh"):
            for gate in w.chunk(w.shape[0] // layer.hidden_size, dim=0):
                nn.init.orthogonal_(gate)
        else:
            nn.init.xavier_uniform_(w)

    def __call__(self, model: nn.Module) -> None:
        super().__call__(model)
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.momentum, m.eps = self.bn_momentum, self.bn_eps
