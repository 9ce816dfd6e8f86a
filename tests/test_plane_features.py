import keras
import numpy as np
import pytest

from models.builders import build_model
from models.config import PLANE_FEATURES, ConfigError, ExperimentConfig
from models.datasets import load_dataset
from models.diagnosis import chance_accuracy
from models.engine import train
from models.forward import load_uploaded_model
from models.plane_features import PlaneFeatures, canonical_features, expand_features

_SUBSETS = [("x1", "x2"), PLANE_FEATURES, ("x1^2", "x2^2"), ("sin(x2)", "x1*x2", "x1"), ("x2",)]


@pytest.mark.parametrize("features", _SUBSETS)
def test_layer_output_equals_the_numpy_twin(features):
    x = np.random.default_rng(3).uniform(-1.2, 1.2, (50, 2)).astype("float32")
    layer_out = np.asarray(PlaneFeatures(features)(x))
    assert layer_out.shape == (50, len(features))
    assert np.allclose(layer_out, expand_features(x, features), atol=1e-6)


def test_the_numpy_twin_by_hand():
    x = np.array([[0.5, -2.0]], "float32")
    assert np.allclose(expand_features(x, PLANE_FEATURES),
                       [[0.5, -2.0, 0.25, 4.0, -1.0, np.sin(0.5), np.sin(-2.0)]], atol=1e-6)


def test_features_come_in_canonical_order_and_unknown_ones_are_named():
    assert canonical_features(["sin(x1)", "x1", "x1"]) == ("x1", "sin(x1)")
    assert ExperimentConfig(input_features=("x2^2", "x1^2")).input_features == ("x1^2", "x2^2")
    with pytest.raises(ValueError, match="got x3"):
        canonical_features(["x3"])
    with pytest.raises(ConfigError, match="input_features must be a non-empty subset .*; got x3"):
        ExperimentConfig(input_features=("x1", "x3"))
    with pytest.raises(ConfigError, match="input_features must be a non-empty subset"):
        ExperimentConfig(input_features=())
    with pytest.raises(ValueError, match=r"shape \(N, 2\); got shape \(3,\)"):
        expand_features(np.zeros(3), ("x1",))


def test_image_datasets_keep_the_raw_inputs():
    with pytest.raises(ConfigError, match="input_features only apply to 2D points; 'digits' is images"):
        ExperimentConfig(dataset="digits", input_features=("x1^2",))
    model = build_model(ExperimentConfig(dataset="digits"), (8, 8, 1), 10)
    assert "features" not in [layer.name for layer in model.layers]


def test_saved_model_reloads_in_safe_mode(tmp_path):
    c = ExperimentConfig(input_features=("x1", "x1^2", "sin(x2)"), hidden_layers=(3,))
    model = build_model(c, (2,), 2)
    path = tmp_path / "features.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_layer("features").features == ("x1", "x1^2", "sin(x2)")
    x = np.random.default_rng(0).uniform(-1, 1, (9, 2)).astype("float32")
    assert np.allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    uploaded = load_uploaded_model(path.read_bytes(), "features.keras")  # the dashboard's upload path
    assert np.allclose(np.asarray(uploaded(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_squared_features_let_a_network_without_hidden_layers_learn_the_circle(seed):
    """TensorFlow Playground's first lesson: a linear model on x1^2, x2^2 separates the circle; on x1, x2 it cannot."""
    squared = train(ExperimentConfig(dataset="circle", input_features=("x1^2", "x2^2"), hidden_layers=(), seed=seed))
    assert squared.history.test_acc[-1] >= 0.95
    raw = train(ExperimentConfig(dataset="circle", hidden_layers=(), seed=seed))
    chance = chance_accuracy(load_dataset(raw.config).y_test)
    assert raw.history.test_acc[-1] < max(chance, 0.5) + 0.15
