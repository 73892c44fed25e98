"""A scikit-learn / aeon style classifier around the same configs and training loop as ``train.py``.

    from fusionlab.estimators import FusionClassifier
    clf = FusionClassifier(model="cnn_rnn", fusion="gated", max_epochs=60).fit(X, y)
    clf.predict(X_new), clf.predict_proba(X_new), clf.score(X_test, y_test), clf.classes_

``fit`` composes ``train.yaml`` with Hydra's compose API (the package's own configs) and the
overrides ``model=``, ``fusion=``, ``trainer.max_epochs=`` and ``overrides``, then trains through
the same Lightning path as ``train.py`` (same validation of the config, seeding, model, optimizer,
schedule, regularisation and trainer), with the arrays held in memory by :class:`ArraysDataModule`.
``X``: numpy ``(n, c, L)``, ``(n, L)`` (one channel), images ``(n, c, h, w)``, or a list of
unequal-length ``(c, L_i)`` series (padded with a mask, as for UCR problems of unequal length).
By default the whole of ``X`` trains (``data.val_size=0``: no carve-out, as scikit-learn
estimators do) and the final weights are kept; pass ``overrides=["data.val_size=0.2",
"callbacks=default"]`` for a validation part and the best checkpoint.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from fusionlab.data.base import ArrayDataModule


class ArraysDataModule(ArrayDataModule):
    """Training arrays held in memory (what :class:`FusionClassifier` trains on). ``x``/``y`` as
    :meth:`ArrayDataModule.load_arrays` documents; there is no test split (a one-row stand-in)."""

    def __init__(self, x: Any, y: Any, modality: str = "series", **options: Any) -> None:
        super().__init__(**options)
        self.x, self.y, self.modality = x, np.asarray(y), modality

    @property
    def source(self) -> str:
        return "the arrays given to fit"

    def load_arrays(self) -> dict[str, Any]:
        return {"x_train": self.x, "y_train": self.y, "x_test": self.x[:1], "y_test": self.y[:1]}


def _modality(X: Any) -> str:
    """``image`` for 4-D arrays, else ``series``."""
    return "image" if isinstance(X, np.ndarray) and X.dtype != object and X.ndim == 4 else "series"


def _check_X(X: Any, fitted_features: int | None = None, name: str = "FusionClassifier", min_samples: int = 1) -> Any:
    """A float array (2-D → one channel, 3-D series, 4-D images) or a list of unequal-length series."""
    from sklearn.utils.validation import check_array

    if isinstance(X, np.ndarray | list | tuple) and len(X) and not _equal_shapes(X):
        items = [np.asarray(a, dtype=np.float32) for a in X]
        for i, a in enumerate(items):
            if not np.isfinite(a).all():
                raise ValueError(f"row {i} of X has NaN or infinity; fusionlab needs finite values")
        return items
    X = check_array(X, allow_nd=True, dtype=np.float32, ensure_min_features=1, ensure_min_samples=min_samples)
    if X.ndim == 2 and fitted_features is not None and X.shape[1] != fitted_features:
        raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting {fitted_features} features as input")
    return X


def _equal_shapes(X: Any) -> bool:
    if isinstance(X, np.ndarray) and X.dtype != object:
        return True
    shapes = {np.shape(a) for a in X}
    return len(shapes) == 1


class FusionClassifier(ClassifierMixin, BaseEstimator):
    """A fused CNN / RNN / Transformer network as a scikit-learn classifier (see the module docstring).

    Parameters are config choices: ``model`` and ``fusion`` (options of those groups),
    ``max_epochs`` (``trainer.max_epochs``), ``batch_size`` (``data.batch_size``, None: the config's),
    ``lr`` (``optimizer.lr``, None: the config's), ``random_state`` (``seed``), ``threads``, and
    ``overrides``: any further Hydra overrides (``["optimizer=adam", "model.dropout=0.2"]``).
    """

    def __init__(self, model: str = "cnn_rnn", fusion: str = "concat", max_epochs: int = 60,
                 batch_size: int | None = None, lr: float | None = None, overrides: Sequence[str] = (),
                 random_state: int = 0, threads: int | None = None, verbose: bool = False) -> None:
        self.model = model
        self.fusion = fusion
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.overrides = overrides
        self.random_state = random_state
        self.threads = threads
        self.verbose = verbose

    # -- config ------------------------------------------------------------------------------------------
    def config_overrides(self) -> list[str]:
        """The Hydra overrides this estimator's parameters stand for."""
        out = [f"model={self.model}", f"fusion={self.fusion}", f"trainer.max_epochs={int(self.max_epochs)}",
               f"seed={int(self.random_state)}", "data=npz", "data.path=unused", "data.val_size=0", "test=false",
               "logger=none", "callbacks=none", f"trainer.enable_progress_bar={bool(self.verbose)}"]
        if self.batch_size is not None:
            out.append(f"data.batch_size={int(self.batch_size)}")
        if self.lr is not None:
            out.append(f"optimizer.lr={float(self.lr)}")
        if self.threads is not None:
            out.append(f"threads={int(self.threads)}")
        return out + list(self.overrides)

    def compose(self, output_dir: str) -> Any:
        """``train.yaml`` composed with :meth:`config_overrides` (the package's configs, Hydra compose API)."""
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from omegaconf import open_dict

        from fusionlab.cli import setup
        from fusionlab.registry import conf_dir

        setup()
        hydra = GlobalHydra.instance()
        was = hydra.is_initialized()
        if was:  # inside a Hydra app (a sweep job): compose in our own context, then restore nothing of it
            hydra.clear()
        with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="fusionlab_estimator"):
            cfg = compose("train", overrides=self.config_overrides())
        with open_dict(cfg):
            cfg.paths.output_dir = cfg.paths.log_dir = output_dir
        return cfg

    # -- fit -----------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> FusionClassifier:
        """Train on ``X`` (see the module docstring) and labels ``y`` of any kind."""
        from omegaconf import OmegaConf

        from fusionlab.config.build import build
        from fusionlab.inference.predictor import Predictor
        from fusionlab.jobs.builders import prepare

        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X = _check_X(X, min_samples=2)
        y = column_or_1d(y, warn=True)  # one label per example; a column vector is accepted with a warning
        check_classification_targets(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} examples but y has {len(y)} labels")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y has a single class ({self.classes_[0]!r}); a classifier needs at least 2")
        codes = np.searchsorted(self.classes_, y)  # labels 0..K-1 in the order of classes_
        with tempfile.TemporaryDirectory(prefix="fusionlab-fit-") as out:
            cfg = self.compose(out)

            def arrays(cfg: Any) -> ArraysDataModule:
                """The same data options as the config's, over the arrays given to ``fit``."""
                options = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items()
                           if k not in ("_target_", "path", "modality", "test_size", "preprocessing")}
                pre = build(cfg.data.preprocessing, "data.preprocessing") if cfg.data.get("preprocessing") else None
                dm = ArraysDataModule(X, codes, modality=_modality(X), preprocessing=pre, **options)
                dm.prepare_data()
                dm.setup("fit")
                return dm

            dm, module, trainer = prepare(cfg, make_datamodule=arrays, enable_model_summary=False)
            config_dict = module.config
            trainer.fit(module, datamodule=dm)
        module.eval()
        state = dm.data_state()
        self.predictor_ = Predictor(module, state, config_dict, batch_size=dm.eval_batch_size)
        self.n_features_in_ = int(X.shape[1]) if isinstance(X, np.ndarray) and X.ndim == 2 else None
        if self.n_features_in_ is None:
            del self.n_features_in_
        self.input_spec_ = self.predictor_.input_spec
        self.n_epochs_ = int(trainer.current_epoch)
        return self

    # -- predict -----------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "predictor_")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        self._check_fitted()
        X = _check_X(X, getattr(self, "n_features_in_", None), type(self).__name__)
        return self.predictor_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted label of each example (values of ``y``)."""
        self._check_fitted()
        X = _check_X(X, getattr(self, "n_features_in_", None), type(self).__name__)
        return self.classes_[self.predictor_.logits(X).argmax(dim=1).numpy()]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
