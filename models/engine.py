"""The training engine: a whole epoch of mini-batch steps per compiled call, reporting every epoch.

`model.fit` pays Python and tf.data overhead on every step, which dominates on the tiny networks
this dashboard trains. Here one `tf.function` runs all steps of an epoch in a graph loop and then
evaluates the full train and test sets, so Python is visited once per epoch: that is where progress
is reported, cancellation is checked and weight snapshots are taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from models.builders import build_model, weight_layers
from models.config import ExperimentConfig
from models.datasets import Dataset, load_dataset
from models.registry import make_optimizer

# XLA compiles an epoch in about a second more than plain graph mode but then runs small dense
# networks about 2.5x faster per step; above this many steps it pays off. (For convolutions on the
# CPU it is slower, so CNNs never use it.)
XLA_MIN_STEPS = 5000

# Above this many stored floats, weight snapshots are thinned to every k-th epoch (memory cap).
MAX_SNAPSHOT_FLOATS = 20_000_000


@dataclass
class History:
    """Per-epoch records; index i is the state after epoch i + 1."""

    train_loss: list[float] = field(default_factory=list)  # mean loss on the whole training set
    test_loss: list[float] = field(default_factory=list)  # mean loss on the test set
    train_acc: list[float] = field(default_factory=list)  # accuracy on the training set, 0..1
    test_acc: list[float] = field(default_factory=list)  # accuracy on the test set, 0..1
    grad_norms: list[list[float]] = field(default_factory=list)  # mean per-step gradient L2 norm per weight layer
    seconds: list[float] = field(default_factory=list)  # wall time since training started

    def __len__(self) -> int:
        return len(self.train_loss)


@dataclass
class TrainResult:
    """A trained (or stopped) model with everything recorded on the way."""

    config: ExperimentConfig  # what was trained
    dataset: Dataset  # the exact split used
    model: keras.Model  # weights at the end (the last finite state if training diverged)
    history: History  # per-epoch metrics
    layer_names: list[str]  # names of the weight layers, matching history.grad_norms columns
    snapshot_epochs: list[int]  # epochs at which snapshots were taken; 0 = initial weights
    snapshots: list[np.ndarray]  # flattened trainable weights at each snapshot epoch, (P,) float32
    status: str = "running"  # "completed", "diverged" or "cancelled"
    diverged_epoch: int | None = None  # first epoch whose loss or weights were not finite

    @property
    def initial_weights(self) -> np.ndarray:
        return self.snapshots[0]

    @property
    def message(self) -> str:
        """One line for the user describing how training ended."""
        if self.status == "diverged":
            return (
                f"Diverged at epoch {self.diverged_epoch}: the loss became infinite or NaN. "
                "Showing the last finite state; try a smaller learning rate."
            )
        if self.status == "cancelled":
            return f"Stopped after {len(self.history)} of {self.config.epochs} epochs."
        return f"Trained {len(self.history)} epochs in {self.history.seconds[-1]:.2f} s."


def per_sample_loss(name: str, n_classes: int) -> Callable:
    """Loss per sample on softmax outputs: cross-entropy, or squared error against one-hot labels."""
    if name == "cross_entropy":
        return keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def mse(y_true, probs):
        return keras.losses.mean_squared_error(tf.one_hot(y_true, n_classes), probs)

    return mse


def flat_weights(model: keras.Model) -> np.ndarray:
    """All trainable weights of `model` as one float32 vector, in `trainable_variables` order."""
    return np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables]).astype("float32")


def set_flat_weights(model: keras.Model, flat: np.ndarray) -> None:
    """Inverse of `flat_weights`."""
    offset = 0
    for v in model.trainable_variables:
        size = int(np.prod(v.shape))
        v.assign(np.reshape(flat[offset : offset + size], v.shape))
        offset += size


class EpochRunner:
    """Compiled epoch loop for one model and optimiser."""

    def __init__(self, model: keras.Model, optimizer, loss_fn, jit_compile: bool = False):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        variables = model.trainable_variables
        ids = [[id(w) for w in layer.trainable_weights] for layer in weight_layers(model)]
        self._groups = [[i for i, v in enumerate(variables) if id(v) in group] for group in ids]
        optimizer.build(variables)
        self._run = tf.function(self._epoch, jit_compile=jit_compile, reduce_retracing=True)

    def _loss(self, x, y, weights, training):
        probs = self.model(x, training=training)
        per = self.loss_fn(y, probs)
        data_loss = tf.reduce_sum(per * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        return data_loss + tf.add_n([tf.constant(0.0)] + list(self.model.losses)), probs

    def _epoch(self, x, y, batches, mask, x_test, y_test):
        # batches: (steps, batch) indices into x; mask: (steps, batch), 0 marks padding.
        variables = self.model.trainable_variables
        grad_sums = tf.zeros([len(self._groups)])
        for step in tf.range(tf.shape(batches)[0]):
            xb, yb = tf.gather(x, batches[step]), tf.gather(y, batches[step])
            with tf.GradientTape() as tape:
                loss, _ = self._loss(xb, yb, mask[step], training=True)
            grads = tape.gradient(loss, variables)
            self.optimizer.apply(grads, variables)
            norms = [tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(grads[i])) for i in g])) for g in self._groups]
            grad_sums += tf.stack(norms)
        metrics = [grad_sums / tf.cast(tf.shape(batches)[0], tf.float32)]
        for xs, ys in ((x, y), (x_test, y_test)):
            probs = self.model(xs, training=False)
            per = self.loss_fn(ys, probs)
            correct = tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int32), ys)
            metrics += [tf.reduce_mean(per), tf.reduce_mean(tf.cast(correct, tf.float32))]
        flat = tf.concat([tf.reshape(v, [-1]) for v in variables], axis=0)
        return metrics, flat

    def run_epoch(self, x, y, batches, mask, x_test, y_test):
        """One epoch; returns (grad_norms, train_loss, train_acc, test_loss, test_acc), flat weights."""
        metrics, flat = self._run(x, y, batches, mask, x_test, y_test)
        return [np.asarray(m) for m in metrics], flat.numpy()


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A shuffled epoch as fixed-size index batches; the last batch is padded and masked out.

    Returns:
        indices (steps, batch) int32 and mask (steps, batch) float32.
    """
    batch_size = min(batch_size, n)
    steps = -(-n // batch_size)
    order = rng.permutation(n)
    padded = np.resize(order, steps * batch_size)  # repeats from the start to fill the last batch
    mask = (np.arange(steps * batch_size) < n).astype("float32")
    return padded.reshape(steps, batch_size).astype("int32"), mask.reshape(steps, batch_size)


def train(
    config: ExperimentConfig,
    dataset: Dataset | None = None,
    on_epoch: Callable[[TrainResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial_weights: np.ndarray | None = None,
    jit_compile: bool | None = None,
) -> TrainResult:
    """Train a fresh model for `config`, reporting after every epoch.

    Args:
        config: what to train.
        dataset: the data; loaded from the config when omitted.
        on_epoch: called with the partial result after each epoch (for progress bars and live charts).
        should_stop: polled after each epoch; returning True ends training as "cancelled".
        initial_weights: flat starting weights (e.g. shared between compared runs); default: seeded init.
        jit_compile: compile the epoch with XLA; None decides by architecture and step count.

    Returns:
        The TrainResult; its status says whether it completed, diverged or was cancelled.
    """
    dataset = dataset if dataset is not None else load_dataset(config)
    model = build_model(config, dataset.input_shape, dataset.n_classes)
    if initial_weights is not None:
        set_flat_weights(model, initial_weights)
    if jit_compile is None:
        steps = config.epochs * -(-len(dataset.y_train) // config.batch_size)
        jit_compile = config.architecture == "mlp" and steps >= XLA_MIN_STEPS
    runner = EpochRunner(
        model,
        make_optimizer(config.optimizer, config.learning_rate, config.optimizer_options),
        per_sample_loss(config.loss, dataset.n_classes),
        jit_compile=jit_compile,
    )
    first = flat_weights(model)
    every = max(1, int(np.ceil(first.size * (config.epochs + 1) / MAX_SNAPSHOT_FLOATS)))
    names = [layer.name for layer in weight_layers(model)]
    result = TrainResult(config, dataset, model, History(), names, [0], [first])
    tensors = [tf.constant(a) for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)]
    rng = np.random.default_rng(config.seed + 1)
    last_flat = first
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        batches, mask = epoch_batches(len(dataset.y_train), config.batch_size, rng)
        (grads, tr_loss, tr_acc, te_loss, te_acc), flat = runner.run_epoch(
            tensors[0], tensors[1], batches, mask, tensors[2], tensors[3]
        )
        if not (np.isfinite(tr_loss) and np.isfinite(flat).all()):
            set_flat_weights(model, last_flat)
            result.status, result.diverged_epoch = "diverged", epoch
            return result
        last_flat = flat
        _record(result, grads, tr_loss, tr_acc, te_loss, te_acc, time.perf_counter() - start)
        if epoch % every == 0 or epoch == config.epochs:
            result.snapshot_epochs.append(epoch)
            result.snapshots.append(flat)
        if on_epoch is not None:
            on_epoch(result)
        if should_stop is not None and should_stop() and epoch < config.epochs:
            result.status = "cancelled"
            return result
    result.status = "completed"
    return result


def _record(result: TrainResult, grads, tr_loss, tr_acc, te_loss, te_acc, seconds: float) -> None:
    h = result.history
    h.train_loss.append(float(tr_loss))
    h.train_acc.append(float(tr_acc))
    h.test_loss.append(float(te_loss))
    h.test_acc.append(float(te_acc))
    h.grad_norms.append([float(g) for g in grads])
    h.seconds.append(seconds)
