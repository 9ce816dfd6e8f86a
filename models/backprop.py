"""Backpropagation made visible: one step of a tiny network by hand, gradient-flow statistics of a
trained run, and the learning-rate range test."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from models.activation_lab import activation_curve
from models.builders import build_model, hidden_activation_layers, weight_layers
from models.engine import (
    TrainResult,
    epoch_batches,
    per_sample_loss,
    restore_snapshot,
    split_flat,
    weight_shapes,
)
from models.registry import make_optimizer


@dataclass(frozen=True)
class HandStep:
    """Everything about one gradient-descent step of a network x -> f(W1 x + b1) -> sigmoid(W2 a + b2)."""

    forward: dict[str, np.ndarray]  # x, z1, a1, z2, y_hat, loss
    local: dict[str, np.ndarray]  # local derivatives: dL/dy_hat, dy_hat/dz2, da1/dz1
    chain: dict[str, np.ndarray]  # gradients by the chain rule: W1, b1, W2, b2
    autodiff: dict[str, np.ndarray]  # the same gradients by TensorFlow autodiff
    updated: dict[str, np.ndarray]  # weights after w <- w - lr * g
    loss_after: float  # loss of the same sample after the step


def tiny_weights(inputs: int, hidden: int, seed: int) -> dict[str, np.ndarray]:
    """Small random float64 weights for the hand-worked network."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(0, 0.8, (hidden, inputs)), "b1": rng.normal(0, 0.1, hidden),
            "W2": rng.normal(0, 0.8, (1, hidden)), "b2": rng.normal(0, 0.1, 1)}


def _forward(w, x, y, activation):
    z1 = w["W1"] @ x + w["b1"]
    a1 = np.asarray(activation_curve(activation, z1)[0], dtype="float64")
    z2 = w["W2"] @ a1 + w["b2"]
    y_hat = 1.0 / (1.0 + np.exp(-z2))
    return {"x": x, "z1": z1, "a1": a1, "z2": z2, "y_hat": y_hat, "loss": np.sum((y_hat - y) ** 2)}


def _autodiff(w, x, y, activation):
    params = {k: tf.Variable(v, dtype=tf.float64) for k, v in w.items()}
    fn = keras.activations.get(activation)
    with tf.GradientTape() as tape:
        a1 = fn(tf.linalg.matvec(params["W1"], x) + params["b1"])
        y_hat = tf.sigmoid(tf.linalg.matvec(params["W2"], a1) + params["b2"])
        loss = tf.reduce_sum(tf.square(y_hat - y))
    grads = tape.gradient(loss, params)
    return {k: g.numpy() for k, g in grads.items()}


def hand_step(weights: dict[str, np.ndarray], x: np.ndarray, y: float, activation: str, lr: float) -> HandStep:
    """Forward pass, chain-rule gradients, autodiff gradients and one descent step on (x, y).

    The loss is the squared error (y_hat - y)^2 of a sigmoid output; every number is float64.
    """
    x = np.asarray(x, dtype="float64")
    f = _forward(weights, x, y, activation)
    dl_dyhat = 2 * (f["y_hat"] - y)
    dyhat_dz2 = f["y_hat"] * (1 - f["y_hat"])
    delta2 = dl_dyhat * dyhat_dz2  # dL/dz2
    da1_dz1 = np.asarray(activation_curve(activation, f["z1"])[1], dtype="float64")
    delta1 = (weights["W2"].T @ delta2) * da1_dz1  # dL/dz1 = W2^T dL/dz2 * f'(z1)
    chain = {"W2": np.outer(delta2, f["a1"]), "b2": delta2, "W1": np.outer(delta1, x), "b1": delta1}
    updated = {k: weights[k] - lr * chain[k] for k in weights}
    return HandStep(
        forward=f,
        local={"dL/dy_hat": dl_dyhat, "dy_hat/dz2": dyhat_dz2, "da1/dz1": da1_dz1},
        chain=chain,
        autodiff=_autodiff(weights, x, y, activation),
        updated=updated,
        loss_after=float(_forward(updated, x, y, activation)["loss"]),
    )


def finite_difference(weights: dict[str, np.ndarray], x, y: float, activation: str, eps: float = 1e-6):
    """Central finite-difference gradient of the tiny network's loss, for checking the chain rule."""
    grads = {}
    for name, value in weights.items():
        g = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = {k: v.copy() for k, v in weights.items()}
                moved[name][index] += sign * eps
                g[index] += sign * _forward(moved, np.asarray(x, dtype="float64"), y, activation)["loss"]
            g[index] /= 2 * eps
        grads[name] = g
    return grads


def layer_weight_norms(result: TrainResult) -> tuple[list[int], dict[str, np.ndarray]]:
    """Per weight layer: L2 norm of its weights at every snapshot epoch."""
    names, shapes = result.layer_names, weight_shapes(result.model)
    layer_of = _variable_layers(result)
    norms = {name: [] for name in names}
    for flat in result.snapshots:
        squares = {name: 0.0 for name in names}
        for layer, part in zip(layer_of, split_flat(flat, shapes), strict=True):
            squares[layer] += float(np.sum(part.astype("float64") ** 2))
        for name in names:
            norms[name].append(np.sqrt(squares[name]))
    return result.snapshot_epochs, {k: np.asarray(v) for k, v in norms.items()}


def update_ratios(result: TrainResult) -> tuple[list[int], dict[str, np.ndarray]]:
    """Per weight layer: ||w_t - w_(t-1)|| / ||w_(t-1)|| between consecutive snapshots.

    About 1e-3 per step is the usual healthy rule of thumb; far below, the layer barely learns.
    """
    shapes, layer_of = weight_shapes(result.model), _variable_layers(result)
    ratios = {name: [] for name in result.layer_names}
    for before, after in zip(result.snapshots[:-1], result.snapshots[1:], strict=True):
        change = {name: 0.0 for name in ratios}
        size = {name: 0.0 for name in ratios}
        for layer, b, a in zip(layer_of, split_flat(before, shapes), split_flat(after, shapes), strict=True):
            change[layer] += float(np.sum((a.astype("float64") - b) ** 2))
            size[layer] += float(np.sum(b.astype("float64") ** 2))
        for name in ratios:
            ratios[name].append(np.sqrt(change[name]) / max(np.sqrt(size[name]), 1e-12))
    return result.snapshot_epochs[1:], {k: np.asarray(v) for k, v in ratios.items()}


def _variable_layers(result: TrainResult) -> list[str]:
    """The weight layer each trainable variable belongs to, in flattening order."""
    owner = {id(w): layer.name for layer in weight_layers(result.model) for w in layer.trainable_weights}
    return [owner[id(v)] for v in result.model.trainable_variables]


QUANTILES = (0.0, 0.07, 0.16, 0.31, 0.5, 0.69, 0.84, 0.93, 1.0)  # TensorBoard's distribution bands


def weight_distributions(result: TrainResult) -> dict[str, np.ndarray]:
    """Per weight layer: quantiles (QUANTILES) of its kernel values at every snapshot; (snapshots, 9)."""
    shapes, layer_of = weight_shapes(result.model), _variable_layers(result)
    out = {name: [] for name in result.layer_names}
    for flat in result.snapshots:
        kernels = {}
        for layer, part in zip(layer_of, split_flat(flat, shapes), strict=True):
            if part.ndim > 1:  # kernels only, as TensorBoard's default weight histograms
                kernels[layer] = part.ravel()
        for name, values in kernels.items():
            out[name].append(np.quantile(values, QUANTILES))
    return {k: np.asarray(v) for k, v in out.items() if v}


def activation_distributions(result: TrainResult, max_snapshots: int = 12, samples: int = 256) -> tuple[
        list[int], dict[str, np.ndarray]]:
    """Per hidden activation layer: quantiles of its outputs on training samples at snapshot epochs."""
    picks = np.unique(np.linspace(0, len(result.snapshots) - 1, min(max_snapshots, len(result.snapshots))).round())
    replay = build_model(result.config, result.dataset.input_shape, result.dataset.n_classes)
    layers = hidden_activation_layers(replay)
    if not layers:
        return [], {}
    probe = keras.Model(replay.inputs[0], [layer.output for layer in layers])
    x = result.dataset.x_train[:samples]
    out = {layer.name: [] for layer in layers}
    for i in picks.astype(int):
        restore_snapshot(replay, result, i)
        values = probe(x, training=False)
        values = values if isinstance(values, list | tuple) else [values]
        for layer, v in zip(layers, values, strict=True):
            out[layer.name].append(np.quantile(np.asarray(v).ravel(), QUANTILES))
    return [result.snapshot_epochs[i] for i in picks.astype(int)], {k: np.asarray(v) for k, v in out.items()}


FLAT_DROP = 0.05  # a range test whose smoothed loss never falls 5% below its starting level found no useful rate


@dataclass(frozen=True)
class RangeTest:
    """Result of a learning-rate range test."""

    learning_rates: np.ndarray  # the rate used at each step, growing exponentially
    losses: np.ndarray  # smoothed training loss after each step
    suggested: tuple[float, float] | None  # (steepest fall, a tenth of the lowest loss's rate); None: no clear range


def lr_range_test(result_config, dataset, start: float = 1e-5, end: float = 10.0, steps: int = 100,
                  smoothing: float = 0.9) -> RangeTest:
    """Train a fresh model while raising the learning rate from `start` to `end` (Smith, 2017).

    The loss is smoothed by a bias-corrected exponential moving average with factor `smoothing` (as
    fastai's `lr_find` records it). Stops early once the smoothed loss exceeds 4x its minimum (the rate
    is then clearly too large). The suggested range is `suggest_range` of the smoothed curve.
    """
    model = build_model(result_config, dataset.input_shape, dataset.n_classes)
    optimizer = make_optimizer(result_config.optimizer, start, result_config.optimizer_options)
    optimizer.build(model.trainable_variables)
    loss_fn = per_sample_loss(result_config.loss, dataset.n_classes)

    @tf.function
    def step(xb, yb, lr):
        optimizer.learning_rate.assign(lr)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(yb, model(xb, training=True)))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    rates = start * (end / start) ** (np.arange(steps) / max(steps - 1, 1))
    rng = np.random.default_rng(result_config.seed)
    batches, _ = epoch_batches(len(dataset.y_train), result_config.batch_size, rng)
    smoothed, average = [], 0.0
    for i, lr in enumerate(rates):
        idx = batches[i % len(batches)]
        loss = float(step(dataset.x_train[idx], dataset.y_train[idx], tf.constant(lr, tf.float32)))
        if not np.isfinite(loss):
            break
        average = smoothing * average + (1 - smoothing) * loss
        smoothed.append(average / (1 - smoothing ** (i + 1)))  # bias-corrected running mean
        if smoothed[-1] > 4 * min(smoothed):
            break
    used, curve = rates[: len(smoothed)], np.asarray(smoothed)
    return RangeTest(used, curve, suggest_range(used, curve, window=round(1 / (1 - smoothing))))


def suggest_range(rates: np.ndarray, smoothed: np.ndarray, window: int = 10) -> tuple[float, float] | None:
    """Learning rates to train with, read from a range test's smoothed loss curve; None when the curve is flat.

    As fastai's `lr_find` reads its curve, after dropping the first tenth of the steps (rates too small
    to matter) and the last five (divergence):
    - the upper end is its `minimum` suggestion, a tenth of the rate at the lowest smoothed loss. The
      moving average lags the rate (it remembers about `window` steps, a factor of about 4 in rate for
      100 steps over six decades), so the lowest point itself already lies past the largest rate that trains;
    - the lower end is its `steep` suggestion, the steepest fall of the loss per decade of rate, searched
      only up to the upper end, so nothing at or after the lowest point (rates already too large, where
      a diverging loss can jump down as well as up) is chosen. The slope is taken across `window` steps,
      the average's memory, not between neighbours, whose differences are mostly noise; the rate reported
      is the middle of the steepest window. With too few steps below the upper end to measure a slope,
      the lower end is the first rate kept.

    Flat: when the lowest smoothed loss is not at least FLAT_DROP (5%) below the starting level (the
    median over the first fifth of the kept steps), the model learned at no rate tried and any "steepest"
    point would be noise, so there is no range. There is none either when fewer than three steps are
    left after trimming (the loss diverged at once).
    """
    first, stop = len(smoothed) // 10, len(smoothed) - 5
    if stop - first < 3:
        return None
    rates, curve = np.asarray(rates[first:stop], dtype="float64"), np.asarray(smoothed[first:stop], dtype="float64")
    lowest = int(np.argmin(curve))
    level = float(np.median(curve[: max(1, len(curve) // 5)]))
    if curve[lowest] > (1 - FLAT_DROP) * level:
        return None
    upper = float(rates[lowest]) / 10
    below = int(np.searchsorted(rates, upper, side="right"))  # kept steps at rates <= upper
    if below <= window:
        return min(float(rates[0]), upper), upper
    r, c = rates[:below], curve[:below]
    slope = (c[window:] - c[:-window]) / np.log10(r[window:] / r[:-window])  # loss change per decade
    steepest = int(np.argmin(slope))
    return float(np.sqrt(r[steepest] * r[steepest + window])), upper
