import numpy as np

from models.builders import hidden_activation_layers
from models.config import ExperimentConfig
from models.engine import train
from models.plane import class_probability, constant_units, hidden_unit_maps, plane_grid


def test_grid_layout_is_row_major_with_x2_rows():
    g = plane_grid(5, (-1, 1))
    assert g.points.shape == (25, 2)
    assert np.allclose(g.points[1], [-0.5, -1]) and np.allclose(g.points[5], [-1, -0.5])


def test_class_probability_matches_model_predictions(tiny_config):
    r = train(tiny_config)
    g = plane_grid(7)
    prob = class_probability(r.model, g)
    direct = np.asarray(r.model(g.points))[:, 1]
    assert prob.shape == (7, 7) and np.allclose(prob.ravel(), direct, atol=1e-6)


def test_hidden_unit_maps_equal_layer_outputs():
    r = train(ExperimentConfig(hidden_layers=(3, 2), epochs=2))
    g = plane_grid(6)
    maps = hidden_unit_maps(r.model, g)
    assert [m.shape for m in maps] == [(3, 6, 6), (2, 6, 6)]
    first = hidden_activation_layers(r.model)[0]
    dense = r.model.get_layer("dense_1")
    expected = np.asarray(first.activation(g.points @ dense.kernel.numpy() + dense.bias.numpy()))
    assert np.allclose(maps[0][1].ravel(), expected[:, 1], atol=1e-5)


def test_no_hidden_layer_gives_no_maps():
    r = train(ExperimentConfig(hidden_layers=(), epochs=1))
    assert hidden_unit_maps(r.model, plane_grid(4)) == []


def test_constant_units_are_those_with_one_value_over_the_plane():
    maps = np.zeros((4, 5, 5))
    maps[1, 2, 3] = 0.5  # one bump: not constant
    maps[2] += 3.0  # constant but not zero (a unit fed only by dead units)
    maps[3] = np.linspace(-1, 1, 25).reshape(5, 5)
    assert constant_units(maps).tolist() == [True, False, True, False]


def test_model_output_is_class_one_probability_or_the_predicted_value(tiny_config):
    from models.plane import model_output

    g = plane_grid(5)
    r = train(tiny_config)
    assert np.array_equal(model_output(r.model, g), class_probability(r.model, g))
    regression = train(ExperimentConfig(dataset="plane", loss="mse", n_samples=60, epochs=2, hidden_layers=(3,)))
    values = model_output(regression.model, g)
    assert values.shape == (5, 5)
    assert np.allclose(values.ravel(), np.asarray(regression.model(g.points))[:, 0], atol=1e-6)
