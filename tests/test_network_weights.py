"""network_weights: links, node maps and hand edits checked against the weights and a numpy forward pass."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models.builders import build_model
from models.config import ExperimentConfig
from models.network_weights import dense_layers, network_links, node_maps, set_weight
from models.plane import plane_grid

GRID = plane_grid(7)
NUMPY_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def expanded(points: np.ndarray) -> np.ndarray:
    """The test models' three features: x1, x2, x1*x2."""
    return np.stack([points[:, 0], points[:, 1], points[:, 0] * points[:, 1]], axis=1)


def mlp(activations=("tanh", "relu"), units=(4, 3), n_out=2, features=True, seed=0) -> keras.Model:
    """A Playground-shaped model: [features] -> dense_i/act_i per hidden layer -> output."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((2,), name="input")
    x = keras.layers.Lambda(lambda p: keras.ops.stack([p[:, 0], p[:, 1], p[:, 0] * p[:, 1]], axis=1),
                            output_shape=(3,), name="features")(inputs) if features else inputs
    for i, (n, act) in enumerate(zip(units, activations, strict=True), start=1):
        x = keras.layers.Dense(n, name=f"dense_{i}", bias_initializer="random_normal")(x)
        x = keras.layers.Activation(act, name=f"act_{i}")(x)
    head = "softmax" if n_out > 1 else None
    return keras.Model(inputs, keras.layers.Dense(n_out, activation=head, name="output")(x))


def numpy_columns(model: keras.Model, activations, points: np.ndarray, features=True) -> list[np.ndarray]:
    """Every node column's output, (N, units) each, by hand from the weights (the oracle)."""
    x = expanded(points) if features else points
    columns = [x]
    for layer, act in zip(dense_layers(model)[:-1], activations, strict=True):
        kernel, bias = layer.get_weights()
        x = NUMPY_ACTIVATIONS[act](x @ kernel + bias)
        columns.append(x)
    kernel, bias = dense_layers(model)[-1].get_weights()
    z = x @ kernel + bias
    if kernel.shape[1] > 1:
        z = np.exp(z - z.max(axis=1, keepdims=True))
        z = z / z.sum(axis=1, keepdims=True)
    return [*columns, z]


def test_links_are_the_kernels_entries():
    model = mlp()
    links = network_links(model)
    assert len(links) == 3 * 4 + 4 * 3 + 3 * 2
    for column, layer in enumerate(dense_layers(model), start=1):
        kernel = layer.get_weights()[0]
        rows = links[links.target_layer == column]
        assert (rows.source_layer == column - 1).all() and (rows.layer_name == layer.name).all()
        np.testing.assert_array_equal(rows.weight.to_numpy(), kernel[rows.source_index, rows.target_index])
        assert len(rows) == kernel.size


def test_two_class_output_column_keeps_both_softmax_units():
    links = network_links(mlp(n_out=2))
    assert sorted(set(links[links.target_layer == 3].target_index)) == [0, 1]


@pytest.mark.parametrize("features", [True, False])
def test_node_maps_match_a_numpy_forward_pass(features):
    activations = ("tanh", "relu")
    model = mlp(activations, features=features)
    maps = node_maps(model, GRID)
    expected = numpy_columns(model, activations, GRID.points, features)
    assert [m.shape for m in maps] == [(3 if features else 2, 7, 7), (4, 7, 7), (3, 7, 7), (2, 7, 7)]
    for got, want in zip(maps, expected, strict=True):
        np.testing.assert_allclose(got, want.T.reshape(-1, 7, 7), rtol=1e-5, atol=1e-6)


def test_node_maps_rows_are_x2():
    maps = node_maps(mlp(), GRID)
    np.testing.assert_allclose(maps[0][0][3], GRID.xs, atol=1e-6)  # feature x1 varies along a row
    np.testing.assert_allclose(maps[0][1][:, 3], GRID.ys, atol=1e-6)  # feature x2 varies down a column


def test_node_maps_of_a_regression_model_and_of_a_network_without_hidden_layers():
    regression = mlp(n_out=1)
    maps = node_maps(regression, GRID)
    np.testing.assert_allclose(maps[-1][0], np.asarray(regression(GRID.points)).reshape(7, 7), rtol=1e-5, atol=1e-6)
    linear = mlp(activations=(), units=(), features=False)
    assert [m.shape for m in node_maps(linear, GRID)] == [(2, 7, 7), (2, 7, 7)]


def test_node_maps_of_a_project_model():
    config = ExperimentConfig(dataset="xor", hidden_layers=(5, 4), activation="tanh")
    model = build_model(config, (2,), 2)
    maps = node_maps(model, GRID)
    assert [m.shape[0] for m in maps] == [len(config.input_features), 5, 4, 2]
    np.testing.assert_allclose(maps[-1].transpose(1, 2, 0).reshape(-1, 2), np.asarray(model(GRID.points)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("layer_name", "index"), [("dense_2", (1, 2)), ("output", (0, 1)), ("dense_1", (3,))])
def test_set_weight_changes_exactly_that_entry_and_the_prediction(layer_name, index):
    activations = ("tanh", "relu")
    model = mlp(activations)
    before = [w.copy() for w in model.get_weights()]
    set_weight(model, layer_name, index, 0.75)
    after = model.get_weights()
    layer = model.get_layer(layer_name)
    target = layer.kernel if len(index) == 2 else layer.bias
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if not np.array_equal(a, b)]
    assert len(changed) == 1
    diff = np.argwhere(before[changed[0]] != after[changed[0]])
    assert [tuple(d) for d in diff] == [index] and after[changed[0]][index] == np.float32(0.75)
    np.testing.assert_array_equal(after[changed[0]], np.asarray(target))
    points = GRID.points[:20]
    np.testing.assert_allclose(model.predict(points, verbose=0), numpy_columns(model, activations, points)[-1],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("layer_name", "index", "message"), [
    ("act_1", (0, 0), "No dense layer named 'act_1'; the dense layers are dense_1, dense_2, output"),
    ("dense_1", (3, 0), r"Index \(3, 0\) is outside dense_1's kernel of shape \(3, 4\)"),
    ("dense_1", (4,), r"Index \(4,\) is outside dense_1's bias of shape \(4,\)"),
    ("output", (0, 0, 0), r"must be \(input, unit\) for the kernel or \(unit,\) for the bias"),
])
def test_set_weight_names_a_bad_layer_or_index(layer_name, index, message):
    with pytest.raises(ValueError, match=message):
        set_weight(mlp(), layer_name, index, 1.0)


def test_set_weight_refuses_a_non_finite_value():
    with pytest.raises(ValueError, match="finite"):
        set_weight(mlp(), "dense_1", (0, 0), float("nan"))
