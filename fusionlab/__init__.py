"""fusionlab: build, train and compare fused CNN / RNN / Transformer networks from Hydra configs."""

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(path, map_location=None, batch_size=None, extra_allowed=()):  # noqa: ANN001, ANN201
    """A trained model from a fusionlab checkpoint: ``m = fusionlab.load("best.ckpt")``, then
    ``m.predict(x)``, ``m.predict_proba(x)``, ``m.classes_``, ``m.input_spec``, ``m.config``
    (see :class:`fusionlab.inference.Predictor`). Imports torch only when called."""
    from fusionlab.inference.predictor import load as load_predictor

    return load_predictor(path, map_location=map_location, batch_size=batch_size, extra_allowed=extra_allowed)
