import numpy as np
import pytest

from models.optimizer_race import (
    FUNCTIONS,
    distance_to_minimum,
    diverged_at,
    finite_path,
    function_grid,
    race,
    race_table,
)


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


def _beale_grad(x, y):
    u, v, w = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    return np.array([2 * u * (y - 1) + 2 * v * (y**2 - 1) + 2 * w * (y**3 - 1),
                     2 * u * x + 4 * v * x * y + 6 * w * x * y**2])


def test_momentum_on_beale_at_the_default_rate_is_reported_as_diverged():
    """Reference: heavy-ball momentum (v = 0.9 v - lr g, w = w + v) worked by hand in float32 numpy on Beale's
    hand-derived gradient: the first step whose point is not finite."""
    lr, start, steps = 0.01, FUNCTIONS["beale"].start, 300
    path = race("beale", {"momentum": ("momentum", lr)}, start, steps)["momentum"]
    w, v, reference = np.array(start, dtype="float32"), np.zeros(2, "float32"), None
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, steps + 1):
            v = np.float32(0.9) * v - np.float32(lr) * _beale_grad(*w).astype("float32")
            w = (w + v).astype("float32")
            if step <= 5:
                assert np.allclose(path[step, :2], w, rtol=1e-4)
            if not np.isfinite(w).all():
                reference = step
                break
    assert reference is not None and diverged_at(path) == reference
    finite = finite_path(path)
    assert len(finite) == reference and np.isfinite(finite).all()
    (row,) = race_table({"momentum": path})
    assert row["status"] == f"diverged at step {reference}"
    assert [row["final x"], row["final y"], row["final f"]] == finite[-1].tolist()


def test_a_path_that_converges_is_left_whole():
    path = race("beale", {"adam": ("adam", 0.01)}, FUNCTIONS["beale"].start, 300)["adam"]
    assert diverged_at(path) is None and np.array_equal(finite_path(path), path)
    (row,) = race_table({"adam": path})
    assert row["status"] == "completed" and row["final f"] == path[-1, 2] < path[0, 2]


def test_race_table_measures_the_distance_to_the_nearest_known_minimum():
    """Reference: Himmelblau's four minima; from (3.5, -1.9) the nearest is (3.584428, -1.848126)."""
    assert distance_to_minimum("himmelblau", (3.5, -1.9)) == pytest.approx(np.hypot(0.084428, 0.051874))
    path = race("rosenbrock", {"adam": ("adam", 0.05)}, (-1.5, 2.5), 20)["adam"]
    (row,) = race_table({"adam": path}, "rosenbrock")
    assert row["distance to nearest minimum"] == pytest.approx(np.hypot(path[-1, 0] - 1, path[-1, 1] - 1))
    assert "distance to nearest minimum" not in race_table({"adam": path})[0]
