"""Keras optimisers racing to the minimum of classic 2D test functions.

The functions are written with TensorFlow ops so the optimisers get exact autodiff gradients; the
optimisers are the real `keras.optimizers` classes, stepped one update at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from models.registry import make_optimizer


@dataclass(frozen=True)
class TestFunction:
    """A 2D function with a known landscape."""

    formula: str  # shown to the user
    fn: Callable  # f(x, y) with TF (or numpy) ops
    x_range: tuple[float, float]  # plotted domain
    y_range: tuple[float, float]
    start: tuple[float, float]  # default starting point
    minima: tuple[tuple[float, float], ...]  # known global minima (or the saddle point)


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _himmelblau(x, y):
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def _saddle(x, y):
    return x**2 - y**2


def _rastrigin(x, y):
    cos = tf.cos if isinstance(x, tf.Tensor) else np.cos
    return 20 + x**2 - 10 * cos(2 * np.pi * x) + y**2 - 10 * cos(2 * np.pi * y)


FUNCTIONS: dict[str, TestFunction] = {
    "rosenbrock": TestFunction("(1 - x)^2 + 100 (y - x^2)^2", _rosenbrock, (-2, 2), (-1, 3), (-1.5, 2.5), ((1, 1),)),
    "beale": TestFunction("(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2", _beale,
                          (-4.5, 4.5), (-4.5, 4.5), (1.0, 1.5), ((3, 0.5),)),
    "himmelblau": TestFunction("(x^2 + y - 11)^2 + (x + y^2 - 7)^2", _himmelblau, (-5, 5), (-5, 5), (0.0, 0.0),
                               ((3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))),
    "saddle": TestFunction("x^2 - y^2", _saddle, (-2, 2), (-2, 2), (-1.5, 0.01), ((0, 0),)),
    "rastrigin": TestFunction("20 + x^2 - 10 cos(2 pi x) + y^2 - 10 cos(2 pi y)", _rastrigin,
                              (-5.12, 5.12), (-5.12, 5.12), (3.3, -2.8), ((0, 0),)),
}


def race(function: str, optimizers: dict[str, tuple[str, float]], start: tuple[float, float],
         steps: int) -> dict[str, np.ndarray]:
    """Minimise a test function with each optimiser from the same start.

    Args:
        function: a key of FUNCTIONS.
        optimizers: label -> (registry optimiser name, learning rate).
        start: the shared starting point.
        steps: number of updates.

    Returns:
        label -> (steps + 1, 3) array of x, y, f(x, y) along the path (row 0 is the start).
    """
    fn = FUNCTIONS[function].fn
    paths = {}
    for label, (name, lr) in optimizers.items():
        point = keras.Variable(np.array(start, dtype="float32"), name="point")
        optimizer = make_optimizer(name, lr)
        optimizer.build([point])
        visited = _descend(fn, point, optimizer)(tf.constant(steps)).numpy()  # (steps, 2)
        xy = np.vstack([np.array(start, dtype="float64"), visited])
        paths[label] = np.column_stack([xy, fn(xy[:, 0], xy[:, 1])])
    return paths


def _descend(fn, point, optimizer):
    """A compiled loop of `steps` optimiser updates; returns the visited points."""

    @tf.function
    def run(steps):
        visited = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            with tf.GradientTape() as tape:
                value = fn(point[0], point[1])
            optimizer.apply([tape.gradient(value, point.value)], [point])
            visited = visited.write(i, point.value)
        return visited.stack()

    return run


def diverged_at(path: np.ndarray) -> int | None:
    """The first step whose point or value is not finite (the optimiser overflowed), or None."""
    bad = ~np.isfinite(path).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def finite_path(path: np.ndarray) -> np.ndarray:
    """The path up to its last finite step: all of it unless it diverged."""
    return path[: diverged_at(path)]


def distance_to_minimum(function: str, point: tuple[float, float]) -> float:
    """Euclidean distance from `point` to the nearest known minimum of the function."""
    return float(min(np.hypot(point[0] - mx, point[1] - my) for mx, my in FUNCTIONS[function].minima))


def race_table(paths: dict[str, np.ndarray], function: str | None = None) -> list[dict]:
    """One row per optimiser: where it ended (its last finite point if it diverged) and how; with `function`,
    also how far that end is from the nearest known minimum."""
    rows = []
    for label, path in paths.items():
        step = diverged_at(path)
        x, y, f = finite_path(path)[-1].tolist()
        row = {"optimiser": label, "status": "completed" if step is None else f"diverged at step {step}",
               "final x": x, "final y": y, "final f": f}
        if function is not None:
            row["distance to nearest minimum"] = distance_to_minimum(function, (x, y))
        rows.append(row)
    return rows


def function_grid(function: str, resolution: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis values and f on a grid over the function's plotted domain; f has rows = y."""
    spec = FUNCTIONS[function]
    xs = np.linspace(*spec.x_range, resolution)
    ys = np.linspace(*spec.y_range, resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, spec.fn(gx, gy)
