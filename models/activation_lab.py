"""Analyses behind the Activation Lab: curves, layer health, gradient ratios and the claim presets."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import confusion_matrix

from models.builders import hidden_activation_layers
from models.config import ExperimentConfig
from models.engine import TrainResult
from models.features import symbolic_graph

SATURATED_BELOW = 0.05  # |f'(z)| under this counts as saturated (gradient mostly blocked)
DEAD_BELOW = 1e-6  # |f'(z)| under this for every input: the unit passes no gradient at all
MOST_INPUTS = 0.5  # a unit is "saturated" when saturated for more than this share of inputs


def activation_curve(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The activation and its derivative at `x`, the derivative by autodiff through Keras.

    Returns:
        f(x) and f'(x), both shaped like x (float64 in, float64 out; anything else as float32).
    """
    fn = keras.activations.get(name)
    x = np.asarray(x)
    z = tf.constant(x if x.dtype == np.float64 else x.astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = fn(z)
        total = tf.reduce_sum(y)
    # The activation is element-wise, so the gradient of the sum is the derivative at each point.
    dy = tape.gradient(total, z)
    dy = tf.zeros_like(z) if dy is None else dy
    return np.asarray(y), np.asarray(dy)


@dataclass(frozen=True)
class LayerHealth:
    """How healthy one hidden layer's units are on the training set."""

    layer: str  # activation layer name, e.g. "act_1"
    units: int  # units (dense) or channels (conv)
    dead: float  # share of units whose derivative is ~0 for every training input
    saturated: float  # share of units whose derivative is below SATURATED_BELOW for most inputs
    mean_activation: float  # mean output over units and inputs


def layer_health(result: TrainResult, max_samples: int = 2000) -> list[LayerHealth]:
    """Dead and saturated units and mean activation of every hidden layer, on the training set.

    A unit is judged by the derivative of its activation at its own pre-activations, which works for
    every activation: ReLU units with z < 0 everywhere are dead, sigmoid units pinned at 0 or 1 are
    saturated. Conv channels are judged over all positions.
    """
    model = result.model
    acts = hidden_activation_layers(model)
    if not acts:
        return []
    graph = symbolic_graph(model)  # model.input is undefined on Sequential models
    probe = graph.model([graph.inputs[a.name] for a in acts])  # pre-activations
    x = result.dataset.x_train[:max_samples]
    pre = probe(x, training=False)
    pre = pre if isinstance(pre, list | tuple) else [pre]
    out = []
    for layer, z in zip(acts, pre, strict=True):
        z = np.asarray(z).reshape(-1, z.shape[-1])  # (inputs * positions, units)
        y, dy = activation_curve(result.config.activation, z)
        slope = np.abs(dy)
        out.append(LayerHealth(
            layer=layer.name,
            units=z.shape[-1],
            dead=float(np.mean(np.all(slope < DEAD_BELOW, axis=0))),
            saturated=float(np.mean(np.mean(slope < SATURATED_BELOW, axis=0) > MOST_INPUTS)),
            mean_activation=float(np.mean(y)),
        ))
    return out


def gradient_ratio(result: TrainResult) -> float:
    """Mean over epochs of first-layer / last-layer gradient norm: << 1 means vanishing gradients."""
    norms = np.asarray(result.history.grad_norms)
    if norms.size == 0:
        return float("nan")
    return float(np.mean(norms[:, 0] / np.maximum(norms[:, -1], 1e-30)))


def confusion_on_test_set(result: TrainResult) -> np.ndarray:
    """Confusion matrix on the test set, rows = true class, columns = predicted class."""
    data = result.dataset
    predicted = np.argmax(np.asarray(result.model(data.x_test, training=False)), axis=-1)
    return confusion_matrix(data.y_test, predicted, labels=list(range(data.n_classes)))


@dataclass(frozen=True)
class Preset:
    """A ready-made comparison that demonstrates one claim."""

    title: str  # the claim, as the user reads it
    explanation: str  # one or two sentences on why it happens
    config: ExperimentConfig  # shared settings (the activation field is ignored)
    activations: tuple[str, ...]  # what to compare
    measure: str  # "test_acc", "gradient_ratio" or "dead": the figure that backs the claim


PRESETS: dict[str, Preset] = {
    "nonlinearity": Preset(
        "Nonlinearity is what lets a network learn complex patterns",
        "Stacked linear layers are still one linear map, so the linear net can only draw a straight "
        "line through the circle; tanh and ReLU bend the boundary around it.",
        ExperimentConfig(dataset="circle", hidden_layers=(8, 8), epochs=60, learning_rate=0.03),
        ("linear", "tanh", "relu"),
        "test_acc",
    ),
    "vanishing": Preset(
        "Vanishing gradients",
        "The sigmoid's slope is at most 0.25, and backpropagation multiplies one such factor per layer: "
        "in a deep sigmoid net the first layer's gradient is orders of magnitude smaller than the last's.",
        ExperimentConfig(dataset="circle", hidden_layers=(8,) * 8, epochs=20, learning_rate=0.01),
        ("sigmoid", "relu"),
        "gradient_ratio",
    ),
    "dead_relu": Preset(
        "Dead ReLUs",
        "A large step can push a ReLU unit's pre-activation below zero for every input; its gradient "
        "is then zero forever. Leaky ReLU and ELU keep a slope for negative inputs, so units recover.",
        ExperimentConfig(dataset="circle", hidden_layers=(16, 16), epochs=30, optimizer="sgd", learning_rate=1.0),
        ("relu", "leaky_relu", "elu"),
        "dead",
    ),
}


def preset_figure(preset: Preset, results: dict[str, TrainResult]) -> dict[str, float]:
    """The measured figure behind a preset's claim, for each activation."""
    if preset.measure == "test_acc":
        return {a: r.history.test_acc[-1] if len(r.history) else float("nan") for a, r in results.items()}
    if preset.measure == "gradient_ratio":
        return {a: gradient_ratio(r) for a, r in results.items()}
    return {a: float(np.mean([h.dead for h in layer_health(r)])) for a, r in results.items()}
