"""The Playground's input features: what a 2D point is turned into before the first hidden layer.

TensorFlow Playground lets the user feed x1, x2, their squares, their product and their sines to the
network. Here the expansion is a layer of the model itself (`PlaneFeatures`, always named "features"),
so everything that feeds raw points to a model (training, the decision boundary, the forward trace,
an exported .keras file) gets the same features; `expand_features` is its numpy twin.
"""

from __future__ import annotations

import keras
import numpy as np

from models.config import DEFAULT_FEATURES, PLANE_FEATURES

__all__ = ["DEFAULT_FEATURES", "PLANE_FEATURES", "PlaneFeatures", "canonical_features", "expand_features"]


def canonical_features(features) -> tuple[str, ...]:
    """`features` without repeats, in PLANE_FEATURES order.

    Raises:
        ValueError: a name is not one of PLANE_FEATURES, or none is given.
    """
    features = tuple(str(f) for f in features)
    unknown = [f for f in features if f not in PLANE_FEATURES]
    if unknown or not features:
        raise ValueError(f"Input features must be a non-empty subset of {', '.join(PLANE_FEATURES)}; "
                         f"got {', '.join(features) or 'none'}.")
    return tuple(f for f in PLANE_FEATURES if f in features)


def _columns(ops, x1, x2) -> dict:
    """Each feature of points (x1, x2), computed with `ops` (numpy or keras.ops); only called lazily."""
    return {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1^2": lambda: x1 * x1,
        "x2^2": lambda: x2 * x2,
        "x1*x2": lambda: x1 * x2,
        "sin(x1)": lambda: ops.sin(x1),
        "sin(x2)": lambda: ops.sin(x2),
    }


def expand_features(x: np.ndarray, features=DEFAULT_FEATURES) -> np.ndarray:
    """Raw points (N, 2) -> (N, len(features)) float32, the columns in PLANE_FEATURES order."""
    x = np.asarray(x, dtype="float32")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"expand_features needs points of shape (N, 2); got shape {x.shape}.")
    columns = _columns(np, x[:, 0], x[:, 1])
    return np.stack([columns[f]() for f in canonical_features(features)], axis=1).astype("float32")


@keras.saving.register_keras_serializable(package="nn_dashboard")
class PlaneFeatures(keras.layers.Layer):
    """(N, 2) raw points -> (N, len(features)) input features; no weights.

    Registered with Keras, so a saved model reloads with `keras.saving.load_model(path, safe_mode=True)`
    once this module is imported.
    """

    def __init__(self, features=DEFAULT_FEATURES, **kwargs):
        super().__init__(**kwargs)
        self.features = canonical_features(features)

    def call(self, inputs):
        if self.features == ("x1", "x2"):
            return inputs  # the Playground default: the raw points, nothing to compute
        columns = _columns(keras.ops, inputs[:, 0], inputs[:, 1])
        return keras.ops.stack([columns[f]() for f in self.features], axis=1)  # (N, F)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.features))

    def get_config(self) -> dict:
        return {**super().get_config(), "features": list(self.features)}
