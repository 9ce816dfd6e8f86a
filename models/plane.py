"""What a 2D-input network computes over the input plane: the output and every hidden unit."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from models.builders import hidden_activation_layers
from models.features import layer_outputs

DOMAIN = (-1.2, 1.2)  # plane shown for the 2D datasets; the data lie within about [-1, 1]


@dataclass(frozen=True)
class PlaneGrid:
    """A square grid of points covering the input plane."""

    xs: np.ndarray  # (R,) x1 coordinates of the grid columns
    ys: np.ndarray  # (R,) x2 coordinates of the grid rows
    points: np.ndarray  # (R*R, 2) float32, row-major: point k = (xs[k % R], ys[k // R])

    @property
    def resolution(self) -> int:
        return len(self.xs)


def plane_grid(resolution: int = 40, domain: tuple[float, float] = DOMAIN) -> PlaneGrid:
    """`resolution` x `resolution` points over `domain` on both axes."""
    axis = np.linspace(domain[0], domain[1], resolution, dtype="float32")
    gx, gy = np.meshgrid(axis, axis)
    return PlaneGrid(axis, axis, np.stack([gx.ravel(), gy.ravel()], axis=1))


def class_probability(model: keras.Model, grid: PlaneGrid, class_index: int = 1) -> np.ndarray:
    """Predicted probability of `class_index` at every grid point, shape (R, R) with rows = x2."""
    probs = np.asarray(model(grid.points, training=False))
    return probs[:, class_index].reshape(grid.resolution, grid.resolution)


def model_output(model: keras.Model, grid: PlaneGrid) -> np.ndarray:
    """What the model says at every grid point, shape (R, R) with rows = x2.

    A regression model's (one output unit) predicted value; a two-class model's probability of class 1
    (as `class_probability`); with more classes, the index of the most probable class.
    """
    out = np.asarray(model(grid.points, training=False))  # (R*R, outputs)
    if out.shape[1] == 1:
        values = out[:, 0]
    elif out.shape[1] == 2:
        values = out[:, 1]
    else:
        values = np.argmax(out, axis=1).astype("float32")
    return values.reshape(grid.resolution, grid.resolution)


def hidden_unit_maps(model: keras.Model, grid: PlaneGrid) -> list[np.ndarray]:
    """Each hidden layer's activations over the plane.

    Returns:
        One array per hidden layer, shape (units, R, R): what every neuron responds to.
    """
    layers = hidden_activation_layers(model)
    if not layers:
        return []
    outputs = layer_outputs(model, [layer.name for layer in layers], grid.points)
    r = grid.resolution
    return [outputs[layer.name].T.reshape(-1, r, r) for layer in layers]


def constant_units(layer_maps: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """Which units of one layer's (units, R, R) maps output a single value over the whole plane.

    A unit counts as constant when its range is at most `tolerance` times its largest |value| (or
    `tolerance` itself near zero): a dead ReLU's flat 0, or a unit fed only by dead units.

    Returns:
        (units,) bool.
    """
    flat = layer_maps.reshape(len(layer_maps), -1)  # (units, R*R)
    spread = flat.max(axis=1) - flat.min(axis=1)
    return spread <= tolerance * np.maximum(np.abs(flat).max(axis=1), 1.0)
