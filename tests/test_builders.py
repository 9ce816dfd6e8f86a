import keras
import numpy as np
import pytest

from models.builders import build_model, hidden_activation_layers, weight_layers
from models.config import ExperimentConfig
from models.registry import ACTIVATIONS


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_mlp_uses_each_activation(activation):
    c = ExperimentConfig(hidden_layers=(3, 2), activation=activation)
    model = build_model(c, (2,), 2)
    acts = hidden_activation_layers(model)
    assert [a.name for a in acts] == ["act_1", "act_2"]
    assert all(a.activation is keras.activations.get(activation) for a in acts)
    probs = np.asarray(model(np.zeros((4, 2), "float32")))
    assert probs.shape == (4, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("layers", [(), (1,), (128,) * 10])
def test_mlp_depth_and_width_limits(layers):
    model = build_model(ExperimentConfig(hidden_layers=layers), (2,), 2)
    dense = [layer for layer in weight_layers(model) if layer.name.startswith("dense_")]
    assert [d.units for d in dense] == list(layers)
    assert weight_layers(model)[-1].name == "output"


def test_same_seed_same_initial_weights_other_seed_differs():
    c = ExperimentConfig(hidden_layers=(5, 5))
    a, b = build_model(c, (2,), 2), build_model(c, (2,), 2)
    d = build_model(c.replace(seed=1), (2,), 2)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        assert np.array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], d.get_weights()[0])


def test_adding_dropout_keeps_the_initial_weights():
    """Each layer's seed comes from its kind and index, not its position: dropout takes no draws from the others."""
    c = ExperimentConfig(hidden_layers=(5, 5))
    plain, dropped = build_model(c, (2,), 2), build_model(c.replace(dropout=0.3), (2,), 2)
    assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), dropped.get_weights(), strict=True))


def test_images_are_flattened_for_an_mlp():
    model = build_model(ExperimentConfig(dataset="digits", hidden_layers=(6,)), (8, 8, 1), 10)
    assert model.get_layer("flatten").output.shape[-1] == 64
    assert model.output.shape[-1] == 10


@pytest.mark.parametrize("blocks", [1, 3, 6])
def test_cnn_blocks_and_pooling_stop_at_small_maps(blocks):
    c = ExperimentConfig(dataset="shapes", architecture="cnn", conv_filters=(4,) * blocks, hidden_layers=(8,))
    model = build_model(c, (32, 32, 3), 4)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == blocks and all(conv.kernel_size == (3, 3) for conv in convs)
    assert min(conv.output.shape[1] for conv in convs) >= 2
    assert np.asarray(model(np.zeros((2, 32, 32, 3), "float32"))).shape == (2, 4)


def test_regularisation_and_dropout_are_wired():
    c = ExperimentConfig(hidden_layers=(4,), l1=0.01, l2=0.02, dropout=0.5)
    model = build_model(c, (2,), 2)
    assert model.get_layer("dropout_1").rate == 0.5
    reg = model.get_layer("dense_1").kernel_regularizer
    assert reg.l1 == pytest.approx(0.01) and reg.l2 == pytest.approx(0.02)
    kernel = model.get_layer("dense_1").kernel.numpy()
    expected = 0.01 * np.abs(kernel).sum() + 0.02 * np.square(kernel).sum()
    assert float(model.losses[0]) == pytest.approx(expected, rel=1e-5)


def test_cnn_on_non_images_is_a_clear_error():
    c = ExperimentConfig(dataset="shapes", architecture="cnn")
    with pytest.raises(ValueError, match=r"A CNN needs image inputs \(H, W, C\); got input shape \(2,\)"):
        build_model(c, (2,), 2)


def test_point_models_start_with_the_features_layer():
    c = ExperimentConfig(input_features=("x1^2", "x2^2", "x1*x2"), hidden_layers=(3,))
    model = build_model(c, (2,), 2)
    assert [layer.name for layer in model.layers][:2] == ["input", "features"]
    assert model.get_layer("dense_1").kernel.shape == (3, 3)
    assert "features" in [layer.name for layer in build_model(ExperimentConfig(), (2,), 2).layers]
    assert "features" not in [layer.name for layer in weight_layers(model)]  # it has no weights


def test_each_hidden_layer_gets_its_own_activation():
    c = ExperimentConfig(hidden_layers=(3, 3, 2), layer_activations=("relu", "linear", "sigmoid"))
    acts = hidden_activation_layers(build_model(c, (2,), 2))
    assert [a.activation for a in acts] == [keras.activations.get(n) for n in ("relu", "linear", "sigmoid")]


def test_features_on_inputs_that_are_not_points_are_a_clear_error():
    with pytest.raises(ValueError, match=r"Input features need 2D points .*; got input shape \(3,\)"):
        build_model(ExperimentConfig(input_features=("x1^2",)), (3,), 2)
