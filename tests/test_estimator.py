"""fusionlab.estimators.FusionClassifier: the same configs and training loop behind a scikit-learn API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from fusionlab.estimators import FusionClassifier


@pytest.fixture(scope="module")
def gunpoint():
    from aeon.datasets import load_classification

    x, y = load_classification("GunPoint", split="train")
    x_test, y_test = load_classification("GunPoint", split="test")
    return x, y, x_test, y_test


def test_params_are_the_constructor_arguments_and_clone_keeps_them() -> None:
    clf = FusionClassifier(model="cnn", fusion="gated", max_epochs=3, overrides=["optimizer=adam"])
    params = clf.get_params()
    assert params["model"] == "cnn" and params["fusion"] == "gated" and params["overrides"] == ["optimizer=adam"]
    copy = clone(clf).set_params(max_epochs=5)
    assert copy.max_epochs == 5 and clf.max_epochs == 3 and copy.overrides == ["optimizer=adam"]
    assert "trainer.max_epochs=5" in copy.config_overrides() and copy.config_overrides()[-1] == "optimizer=adam"


def test_fit_composes_the_package_configs(tmp_path) -> None:
    cfg = FusionClassifier(model="rnn", fusion="gated", max_epochs=4, lr=0.01, overrides=["optimizer=sgd"]).compose(
        str(tmp_path))
    assert cfg.trainer.max_epochs == 4 and cfg.optimizer.lr == 0.01
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.model.fusion._target_.endswith("GatedFusion")
    assert cfg.data.val_size == 0 and cfg.test is False


@pytest.mark.slow
def test_fit_predict_score_on_gunpoint(gunpoint) -> None:
    x, y, x_test, y_test = gunpoint
    clf = FusionClassifier(model="cnn", max_epochs=20, batch_size=16, threads=1).fit(x, y)
    assert clf.classes_.tolist() == ["1", "2"]
    proba = clf.predict_proba(x_test)
    assert proba.shape == (len(x_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    predicted = clf.predict(x_test)
    assert set(predicted) <= {"1", "2"}
    assert (clf.classes_[proba.argmax(axis=1)] == predicted).all()
    assert clf.score(x_test, y_test) == pytest.approx((predicted == y_test).mean())
    assert clf.score(x_test, y_test) > 0.75  # well above chance (0.5) after 20 epochs (80 steps)
    # the same training twice gives the same model (seeded like train.py)
    again = FusionClassifier(model="cnn", max_epochs=20, batch_size=16, threads=1).fit(x, y)
    np.testing.assert_allclose(again.predict_proba(x_test), proba, atol=1e-6)


@pytest.mark.slow
def test_unequal_length_series_and_more_epochs_fit_better(gunpoint) -> None:
    x, y, _, _ = gunpoint
    ragged = [a[:, : 110 + (i % 40)] for i, a in enumerate(x)]  # 110..149 steps
    short = FusionClassifier(model="cnn_rnn", max_epochs=1, batch_size=16, threads=1).fit(ragged, y)
    assert short.input_spec_.masked
    longer = FusionClassifier(model="cnn_rnn", max_epochs=15, batch_size=16, threads=1).fit(ragged, y)
    assert longer.score(ragged, y) > short.score(ragged, y)
    assert longer.n_epochs_ == 15


@pytest.mark.slow
def test_runs_inside_cross_val_score_and_grid_search(gunpoint) -> None:
    from sklearn.model_selection import GridSearchCV, cross_val_score

    x, y, _, _ = gunpoint
    scores = cross_val_score(FusionClassifier(model="cnn", max_epochs=3, batch_size=16, threads=1), x, y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    search = GridSearchCV(FusionClassifier(model="cnn", batch_size=16, threads=1), {"max_epochs": [1, 15]},
                          cv=2).fit(x, y)
    assert search.best_params_ == {"max_epochs": 15} and search.best_estimator_.n_epochs_ == 15


def test_bad_input_is_a_value_error_naming_it() -> None:
    clf = FusionClassifier(max_epochs=1)
    with pytest.raises(ValueError, match="single class"):
        clf.fit(np.zeros((4, 1, 10)), ["a"] * 4)
    x = np.zeros((4, 1, 10))
    x[2, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(x, ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="continuous|Unknown label type"):
        clf.fit(np.zeros((4, 10)), [0.5, 1.5, 2.5, 3.5])


# check_estimator runs on scikit-learn's small tabular sets (2-5 columns read as series of 2-5 steps):
# the MLP preset reads any length; the CNN presets refuse kernels longer than the series (a ConfigError,
# itself a ValueError naming model.branches.cnn.kernel_sizes), so they cannot take these sets.
SKIPPED_CHECKS = {
    "check_array_api_input": "scikit-learn skips it itself unless SCIPY_ARRAY_API=1 (no array-API support)",
}


@pytest.mark.slow
def test_scikit_learn_estimator_checks() -> None:
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(FusionClassifier(model="mlp", max_epochs=2, threads=1), on_fail=None)
    failed = {r["check_name"]: str(r["exception"])[:200] for r in results if r["status"] == "failed"}
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert failed == {}
    assert skipped <= set(SKIPPED_CHECKS)
    assert len(results) >= 50
