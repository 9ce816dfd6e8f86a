"""Regression on the Playground's "plane" and "multi_gaussian": data, model, loss and the engine's numbers."""

import sys
import types

import keras
import numpy as np
import pytest

from models.builders import build_model
from models.config import REGRESSION_DATASETS, ConfigError, ExperimentConfig
from models.datasets import DatasetUnavailable, load_dataset, make_targets
from models.engine import per_sample_loss, train


def _config(dataset, **changes) -> ExperimentConfig:
    return ExperimentConfig(dataset=dataset, loss="mse", **changes)


@pytest.mark.parametrize("name", REGRESSION_DATASETS)
def test_targets_are_float_deterministic_and_in_range(name):
    data = load_dataset(_config(name, n_samples=300))
    assert data.task == "regression" and data.n_classes == 0 and data.class_names == ()
    assert data.x_train.shape == (150, 2) and data.y_train.shape == (150,) and data.y_train.dtype == np.float32
    assert np.abs(data.x_train).max() <= 1.0 and np.abs(data.y_train).max() <= 1.2 + 1e-6
    assert data.y_train.std() > 0.2  # a target that varies, not a constant
    again = load_dataset(_config(name, n_samples=300))
    assert np.array_equal(data.x_train, again.x_train) and np.array_equal(data.y_test, again.y_test)
    other = load_dataset(_config(name, n_samples=300, seed=1))
    assert not np.array_equal(data.y_train, other.y_train)


def test_clean_plane_is_the_playgrounds_linear_target():
    x, y = make_targets("plane", 200, 0.0, np.random.default_rng(0))
    assert np.allclose(y, (6 * x[:, 0] + 6 * x[:, 1]) / 10, atol=1e-6)  # x1 + x2 over [-10, 10] in its units


def test_clean_multi_gaussian_peaks_at_its_signed_centres():
    x, y = make_targets("multi_gaussian", 2000, 0.0, np.random.default_rng(0))
    assert -1 <= y.min() < -0.9 and 0.9 < y.max() <= 1
    near = np.linalg.norm(x * 6 - np.array([0.0, 2.5]), axis=1) < 0.3  # the negative bump at the top middle
    assert near.any() and np.all(y[near] < -0.8)
    far = np.abs(x[:, 1] * 6) < 0.3  # between the rows of bumps, more than 2 from every centre
    assert np.all(y[far] == 0)


def test_regression_needs_the_squared_error():
    assert ExperimentConfig(dataset="plane", loss="mse").task == "regression"
    assert ExperimentConfig().task == "classification"
    with pytest.raises(ConfigError, match="loss must be 'mse' for a regression dataset"):
        ExperimentConfig(dataset="plane")
    with pytest.raises(ValueError, match="got loss 'cross_entropy'"):
        per_sample_loss("cross_entropy", 0)


def test_a_regression_link_brings_its_loss():
    config, problems = ExperimentConfig.from_query_lenient({"dataset": "multi_gaussian", "epochs": "3"})
    assert (config.dataset, config.loss, config.epochs, problems) == ("multi_gaussian", "mse", 3, [])
    c = _config("plane", hidden_layers=(4,))
    assert ExperimentConfig.from_query(c.to_query()) == c


def test_the_model_has_one_linear_output():
    model = build_model(_config("plane"), (2,), 0)
    assert model.get_layer("output").units == 1
    assert model.get_layer("output").activation is keras.activations.linear
    assert np.asarray(model(np.zeros((3, 2), "float32"))).shape == (3, 1)


@pytest.mark.parametrize("name", REGRESSION_DATASETS)
def test_reported_mse_equals_keras_evaluate_and_numpy(name):
    r = train(_config(name, n_samples=120, epochs=5, batch_size=16, hidden_layers=(4,)))
    h = r.history
    assert np.isnan(h.train_acc).all() and np.isnan(h.test_acc).all()  # no accuracy for regression
    r.model.compile(loss="mse")
    assert h.test_loss[-1] == pytest.approx(r.model.evaluate(r.dataset.x_test, r.dataset.y_test, verbose=0), rel=1e-4)
    predicted = np.asarray(r.model.predict(r.dataset.x_train, verbose=0))[:, 0]
    assert h.train_loss[-1] == pytest.approx(float(np.mean((predicted - r.dataset.y_train) ** 2)), rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name, noise, share", [("plane", 0.1, 0.1), ("multi_gaussian", 0.0, 0.5)])
def test_a_2x8_tanh_network_fits_both_problems(name, noise, share, seed):
    """Far below the variance, the test MSE of always predicting the mean (2x8 tanh, 100 epochs, Adam 0.03)."""
    r = train(_config(name, noise=noise, seed=seed))
    assert r.status == "completed"
    assert r.history.test_loss[-1] < share * float(np.var(r.dataset.y_test))


def test_a_csv_table_that_is_gone_asks_for_the_upload_again(monkeypatch):
    store = types.ModuleType("models.csv_data")
    store.lookup = lambda data_id: None
    monkeypatch.setitem(sys.modules, "models.csv_data", store)
    with pytest.raises(DatasetUnavailable, match="no longer in memory; upload it again"):
        load_dataset(ExperimentConfig(dataset="csv", data_id="0123456789abcdef"))


def test_a_csv_table_is_split_with_its_task_and_names(monkeypatch):
    rng = np.random.default_rng(0)
    table = types.SimpleNamespace(
        data_id="0123456789abcdef", x=rng.uniform(-1, 1, (40, 2)).astype("float32"),
        y=rng.uniform(-1, 1, 40).astype("float32"), task="regression", class_names=(),
        feature_names=("height", "weight"), target_name="age", rows=40)
    store = types.ModuleType("models.csv_data")
    store.lookup = lambda data_id: table if data_id == table.data_id else None
    monkeypatch.setitem(sys.modules, "models.csv_data", store)
    config = ExperimentConfig(dataset="csv", data_id=table.data_id, csv_task="regression", loss="mse")
    data = load_dataset(config)
    assert (data.task, data.n_classes, data.feature_names) == ("regression", 0, ("height", "weight"))
    assert len(data.y_train) == 20 and data.y_train.dtype == np.float32
    assert sorted(np.concatenate([data.y_train, data.y_test])) == sorted(table.y)
    with pytest.raises(ConfigError, match="'age' is a regression table; got csv_task 'classification'"):
        load_dataset(ExperimentConfig(dataset="csv", data_id=table.data_id))
    with pytest.raises(ConfigError, match="data_id must be the 16 hex digits"):
        ExperimentConfig(dataset="csv", data_id="not-a-hash")


def test_the_loss_surface_of_a_regression_run_is_its_mse():
    from models.engine import flat_weights
    from models.landscape import SurfaceEvaluator

    r = train(_config("plane", n_samples=80, epochs=2, hidden_layers=(3,)))
    evaluator = SurfaceEvaluator(r.model, r.dataset.x_test, r.dataset.y_test, "mse", r.dataset.n_classes)
    weights = flat_weights(r.model)
    loss, acc = evaluator.evaluate(weights, np.zeros((1, weights.size)), np.zeros((1, 1)))[0]
    assert loss == pytest.approx(r.history.test_loss[-1], rel=1e-5) and np.isnan(acc)
