import numpy as np
import pytest

from models.optimizer_race import FUNCTIONS, function_grid, race


def _rosenbrock_grad(x, y):
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


def test_sgd_path_matches_hand_steps():
    lr, start = 1e-3, (-1.5, 2.5)
    path = race("rosenbrock", {"sgd": ("sgd", lr)}, start, 5)["sgd"]
    w = np.array(start, dtype="float64")
    for step in range(1, 6):
        w = w - lr * _rosenbrock_grad(*w)
        assert np.allclose(path[step, :2], w, rtol=1e-4)


def test_adam_path_matches_hand_steps():
    lr, b1, b2, eps, start = 0.05, 0.9, 0.999, 1e-7, (-1.5, 2.5)
    path = race("rosenbrock", {"adam": ("adam", lr)}, start, 5)["adam"]
    w, m, v = np.array(start, dtype="float64"), np.zeros(2), np.zeros(2)
    for t in range(1, 6):
        g = _rosenbrock_grad(*w)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        assert np.allclose(path[t, :2], w, rtol=1e-4)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functions_have_their_minimum_where_stated(name):
    spec = FUNCTIONS[name]
    xs, ys, f = function_grid(name, 50)
    assert f.shape == (50, 50)
    for mx, my in spec.minima:
        value = spec.fn(np.float64(mx), np.float64(my))
        assert value == pytest.approx(0.0, abs=1e-4) if name != "saddle" else value == 0.0


def test_adam_reaches_himmelblau_minimum():
    path = race("himmelblau", {"adam": ("adam", 0.1)}, (0.0, 0.0), 400)["adam"]
    assert path[-1, 2] < 1e-3 and path[0, 2] > 100
