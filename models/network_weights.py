"""The Playground's network as a graph: its node columns, the weights linking them, what each node computes.

The columns are the ones TensorFlow Playground draws: column 0 holds the input features (the output of
the "features" layer, or the raw x1, x2 of a model without one), column k the units of hidden layer k
(after its activation), and the last column the output layer as it is: one node per softmax unit
(both classes for a 2-class problem, so each class's probability has its own picture and its own
incoming weights) or the single linear unit of a regression. The links into column k are the kernel
of the k-th Dense layer.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from models.features import symbolic_graph
from models.plane import PlaneGrid

LINK_COLUMNS = ("source_layer", "source_index", "target_layer", "target_index", "weight", "layer_name")


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """The Dense layers, input to output: dense_1 ... dense_H, then "output"."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def network_links(model: keras.Model) -> pd.DataFrame:
    """One row per weight between consecutive node columns.

    Returns:
        Columns `source_layer, source_index, target_layer, target_index, weight` (node columns as in the
        module docstring, units counted from 0) and `layer_name`, the Dense layer holding the weight:
        `set_weight(model, layer_name, (source_index, target_index), value)` edits it.
    """
    frames = []
    for column, layer in enumerate(dense_layers(model), start=1):
        kernel = layer.get_weights()[0]  # (inputs, units)
        sources, targets = np.meshgrid(np.arange(kernel.shape[0]), np.arange(kernel.shape[1]), indexing="ij")
        frames.append(pd.DataFrame({
            "source_layer": column - 1, "source_index": sources.ravel(), "target_layer": column,
            "target_index": targets.ravel(), "weight": kernel.ravel().astype("float64"), "layer_name": layer.name,
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(LINK_COLUMNS))


def node_maps(model: keras.Model, grid: PlaneGrid) -> list[np.ndarray]:
    """What every node outputs over the plane, from one predict of a sub-model.

    Column 0 is the input of the first Dense layer (the features), hidden column k the input of Dense
    layer k + 1 (layer k's activation; dropout is off at inference) and the last column the model's
    output (probabilities for a softmax, the predicted value for a regression).

    Returns:
        One (units, R, R) float32 array per column, rows = x2 as in `models.plane`.
    """
    layers = dense_layers(model)
    graph = symbolic_graph(model)
    tensors = [graph.inputs[layer.name] for layer in layers] + [graph.outputs[layers[-1].name]]
    outputs = graph.model(tensors)(grid.points, training=False)  # one (R*R, units) array per column
    r = grid.resolution
    return [np.asarray(out, dtype="float32").T.reshape(-1, r, r) for out in outputs]


def set_weight(model: keras.Model, layer_name: str, index: tuple[int, ...], value: float) -> None:
    """Set one entry of a Dense layer's kernel (index `(input, unit)`) or bias (index `(unit,)`) in place.

    The model's own variable changes, so its optimiser, a compiled training loop and every later
    `predict` see the edit.

    Raises:
        ValueError: no Dense layer of that name, an index of the wrong length or outside the kernel or
            bias, or a value that is not a finite number.
    """
    variable = _weight_variable(model, layer_name, tuple(int(i) for i in index))
    if not np.isfinite(value):
        raise ValueError(f"A weight must be a finite number; got {value}.")
    values = np.array(variable.numpy())
    values[tuple(index)] = value
    variable.assign(values)


def _weight_variable(model: keras.Model, layer_name: str, index: tuple[int, ...]):
    dense = {layer.name: layer for layer in dense_layers(model)}
    if layer_name not in dense:
        raise ValueError(f"No dense layer named {layer_name!r}; the dense layers are {', '.join(dense)}.")
    layer = dense[layer_name]
    kinds = {2: ("kernel", layer.kernel), 1: ("bias", layer.bias)}
    if len(index) not in kinds or kinds[len(index)][1] is None:
        raise ValueError(f"Index {index} of {layer_name} must be (input, unit) for the kernel or (unit,) for the bias.")
    kind, variable = kinds[len(index)]
    shape = tuple(variable.shape)
    if not all(0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise ValueError(f"Index {index} is outside {layer_name}'s {kind} of shape {shape}.")
    return variable
