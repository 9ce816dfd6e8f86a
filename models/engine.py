"""The training engine: trains from an ExperimentConfig and records everything later pages need.

The compiled epoch loop lives in `epoch_runner`; this module drives it once per epoch, which is
where progress is reported, cancellation is checked, divergence is caught and weight snapshots are
taken.
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
from models.epoch_runner import EpochRunner, EpochStats
from models.registry import make_optimizer
from models.stacked import StackedRunner, can_stack

# XLA compiles an epoch in about a second more than plain graph mode but then runs small dense
# networks about 2.5x faster per step; above this many steps it pays off. (For convolutions on the
# CPU it is slower, so CNNs never use it.)
XLA_MIN_STEPS = 5000

# Above this many stored floats, weight snapshots are thinned to every k-th epoch (memory cap).
MAX_SNAPSHOT_FLOATS = 20_000_000


@dataclass
class History:
    """Per-epoch records; index i is the state after epoch i + 1."""

    train_loss: list[float] = field(default_factory=list)  # mean data loss on the whole training set
    test_loss: list[float] = field(default_factory=list)  # mean data loss on the test set
    train_acc: list[float] = field(default_factory=list)  # accuracy on the training set, 0..1; NaN for regression
    test_acc: list[float] = field(default_factory=list)  # accuracy on the test set, 0..1; NaN for regression
    grad_norms: list[list[float]] = field(default_factory=list)  # mean per-step gradient L2 norm per weight layer
    seconds: list[float] = field(default_factory=list)  # wall time since training started
    # Time in this model's own training steps per epoch. Models trained as one stacked model
    # (models/stacked.py) share every step: each is credited an equal share, the shared epoch's time / M.
    step_seconds: list[float] = field(default_factory=list)
    # L1/L2 penalty of the weights, 0 without regularisation; data loss + penalty is what the optimiser
    # minimises and what Keras' `evaluate` reports as the loss.
    penalty: list[float] = field(default_factory=list)

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
    state_snapshots: list[np.ndarray]  # non-trainable state (batch-norm statistics) at the same epochs, (S,)
    status: str = "running"  # "completed", "diverged" or "cancelled"
    diverged_epoch: int | None = None  # first epoch whose loss or weights were not finite
    last_weights: np.ndarray | None = None  # flattened weights after the last finite epoch
    last_state: np.ndarray | None = None  # non-trainable state after the last finite epoch
    run_id: str | None = None  # its id in the local run store once written there (models/run_store.py)

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

    @property
    def seconds_per_epoch(self) -> float:
        """Mean time of this model's own training steps per epoch (0 before the first epoch); for models trained
        as one stacked model, its equal share of the shared epoch."""
        steps = self.history.step_seconds
        return float(np.mean(steps)) if steps else 0.0


def per_sample_loss(name: str, n_classes: int) -> Callable:
    """Loss per sample: on softmax outputs cross-entropy, or squared error against one-hot labels; for
    regression (`n_classes == 0`, one linear output) the squared error against the target.

    Raises:
        ValueError: regression with a loss other than "mse".
    """
    if n_classes == 0:
        if name != "mse":
            raise ValueError(f"Regression trains on the squared error (loss 'mse'); got loss {name!r}.")

        def squared_error(y_true, predicted):  # y_true (B,) float targets, predicted (B, 1)
            return tf.square(predicted[:, 0] - y_true)

        return squared_error
    if name == "cross_entropy":
        return keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def mse(y_true, probs):
        return keras.losses.mean_squared_error(tf.one_hot(y_true, n_classes), probs)

    return mse


def training_data_loss(result: TrainResult) -> float:
    """Mean data loss of `result.model`'s current weights on the whole training set.

    For a run that diverged in its first epoch the model holds its initial weights, so this is the loss
    the first step started from (the history has no epoch to show).
    """
    probs = result.model(result.dataset.x_train, training=False)
    return float(np.mean(per_sample_loss(result.config.loss, result.dataset.n_classes)(result.dataset.y_train,
                                                                                         probs)))


def flat_weights(model: keras.Model) -> np.ndarray:
    """All trainable weights of `model` as one float32 vector, in `trainable_variables` order."""
    return np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables]).astype("float32")


def weight_shapes(model: keras.Model) -> list[tuple[int, ...]]:
    """Shapes of the trainable variables, in the order of the flattened weight vectors."""
    return [tuple(v.shape) for v in model.trainable_variables]


def split_flat(flat, shapes: list[tuple[int, ...]]) -> list:
    """Cut a flat weight vector (numpy or tensor) into the variables' shapes."""
    out, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        part = flat[offset : offset + size]
        out.append(tf.reshape(part, shape) if isinstance(part, tf.Tensor) else np.reshape(part, shape))
        offset += size
    return out


def set_flat_weights(model: keras.Model, flat: np.ndarray) -> None:
    """Inverse of `flat_weights`."""
    for v, part in zip(model.trainable_variables, split_flat(flat, weight_shapes(model)), strict=True):
        v.assign(part)


def flat_state(model: keras.Model) -> np.ndarray:
    """The non-trainable weights (batch-norm moving statistics) as one float32 vector; (0,) if none.

    Dropout's seed-generator state (int64) is left out: it is not part of what the model computes.
    """
    parts = [np.ravel(v.numpy()) for v in model.non_trainable_weights]
    return np.concatenate(parts).astype("float32") if parts else np.zeros(0, "float32")


def set_flat_state(model: keras.Model, flat: np.ndarray) -> None:
    """Inverse of `flat_state`."""
    shapes = [tuple(v.shape) for v in model.non_trainable_weights]
    for v, part in zip(model.non_trainable_weights, split_flat(flat, shapes), strict=True):
        v.assign(part)


def restore_snapshot(model: keras.Model, result: TrainResult, index: int) -> None:
    """Put snapshot `index` of `result` (weights and batch-norm statistics) into `model`, a model of the same
    architecture (e.g. a fresh `build_model(result.config, ...)`), to replay training at that epoch."""
    set_flat_weights(model, result.snapshots[index])
    set_flat_state(model, result.state_snapshots[index])


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


def learning_rate_for(config: ExperimentConfig, steps_per_epoch: int):
    """The optimiser's learning rate: the config's number, or its schedule over the whole run.

    "warmup_cosine" climbs linearly from 0 over the first epoch (the first steps of an untrained
    network have the largest, least reliable gradients) and then follows a cosine down to 0 at the
    last step, so the final epochs average out the noise of large steps instead of ending on it.
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    total = max(2, config.epochs * steps_per_epoch)
    warmup = min(steps_per_epoch, total // 2)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=total - warmup, warmup_target=config.learning_rate,
        warmup_steps=warmup)


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
        initial_weights: flat starting weights; default: the seeded initialisation.
        jit_compile: compile the epoch with XLA; None decides by architecture and step count.

    Returns:
        The TrainResult; its status says whether it completed, diverged or was cancelled.
    """
    report = None if on_epoch is None else (lambda results: on_epoch(results[0]))
    return train_many([config], dataset, report, should_stop, initial_weights, jit_compile)[0]


def _check_compatible(configs: list[ExperimentConfig]) -> None:
    shared = ("dataset", "data_id", "n_samples", "noise", "train_fraction", "seed", "batch_size", "epochs")
    for name in shared:
        values = {getattr(c, name) for c in configs}
        if len(values) > 1:
            raise ValueError(f"Models trained together must share {name}; got {sorted(map(str, values))}.")


def train_many(
    configs: list[ExperimentConfig],
    dataset: Dataset | None = None,
    on_epoch: Callable[[list[TrainResult]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial_weights: np.ndarray | None = None,
    jit_compile: bool | None = None,
) -> list[TrainResult]:
    """Train several models side by side on the same batches, in one compiled loop.

    The configs may differ in activation, optimiser, learning rate, loss and regularisation but must
    share the data, seed, batch size and epochs. Every model starts from the same weights when the
    shapes allow (`initial_weights`, else the first model's seeded initialisation). A model that
    diverges is marked so at that epoch and keeps its last finite weights; the others go on.

    MLPs that differ only in their activations (the Activation Lab's case; `stacked.can_stack`) train as
    one stacked model, several times faster and with the results of separate `train` runs; other sets
    step model by model through `EpochRunner`.

    Raises:
        ValueError: the configs do not share data, seed, batch size and epochs.
    """
    _check_compatible(configs)
    first_config = configs[0]
    dataset = dataset if dataset is not None else load_dataset(first_config)
    models = [build_model(c, dataset.input_shape, dataset.n_classes) for c in configs]
    start_weights = initial_weights if initial_weights is not None else flat_weights(models[0])
    for model in models:
        if sum(int(np.prod(v.shape)) for v in model.trainable_variables) == start_weights.size:
            set_flat_weights(model, start_weights)
    steps_per_epoch = -(-len(dataset.y_train) // first_config.batch_size)
    stacked = can_stack(configs)
    if jit_compile is None:
        steps = first_config.epochs * steps_per_epoch
        # A stacked run compiles exactly when its separate runs would (and then matches them bit for bit).
        jit_compile = ((len(configs) == 1 or stacked) and first_config.architecture == "mlp"
                       and steps >= XLA_MIN_STEPS)
    if stacked:
        runner = StackedRunner(
            models, make_optimizer(first_config.optimizer, learning_rate_for(first_config, steps_per_epoch),
                                   first_config.optimizer_options),
            per_sample_loss(first_config.loss, dataset.n_classes), jit_compile=jit_compile)
    else:
        runner = EpochRunner(
            models,
            [make_optimizer(c.optimizer, learning_rate_for(c, steps_per_epoch), c.optimizer_options) for c in configs],
            [per_sample_loss(c.loss, dataset.n_classes) for c in configs],
            jit_compile=jit_compile,
        )
    results = [_new_result(c, dataset, m) for c, m in zip(configs, models, strict=True)]
    every = max(1, int(np.ceil(results[0].snapshots[0].size * (first_config.epochs + 1) / MAX_SNAPSHOT_FLOATS)))
    tensors = [tf.constant(a) for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)]
    rng = np.random.default_rng(first_config.seed + 1)
    start = time.perf_counter()
    try:  # closed also when a callback raises (Streamlit interrupts a run by raising in `on_epoch`)
        for epoch in range(1, first_config.epochs + 1):
            batches, mask = epoch_batches(len(dataset.y_train), first_config.batch_size, rng)
            stats = runner.run_epoch(tensors[0], tensors[1], batches, mask, tensors[2], tensors[3])
            for result, s in zip(results, stats, strict=True):
                if result.status == "running":
                    _record(result, s, epoch, every, time.perf_counter() - start)
            if on_epoch is not None:
                on_epoch(results)
            if all(r.status != "running" for r in results):
                break
            if should_stop is not None and should_stop() and epoch < first_config.epochs:
                return settle_results(results, "cancelled")
    finally:
        runner.close()
    return settle_results(results, "completed")


def _new_result(config: ExperimentConfig, dataset: Dataset, model: keras.Model) -> TrainResult:
    names = [layer.name for layer in weight_layers(model)]
    return TrainResult(config, dataset, model, History(), names, [0], [flat_weights(model)], [flat_state(model)])


def _record(result: TrainResult, s: EpochStats, epoch: int, every: int, seconds: float) -> None:
    if not (np.isfinite(s.train_loss) and np.isfinite(s.weights).all()):
        result.status, result.diverged_epoch = "diverged", epoch
        return
    h = result.history
    h.train_loss.append(s.train_loss)
    h.train_acc.append(s.train_acc)
    h.test_loss.append(s.test_loss)
    h.test_acc.append(s.test_acc)
    h.penalty.append(s.penalty)
    h.grad_norms.append([float(g) for g in s.grad_norms])
    h.step_seconds.append(s.step_seconds)
    h.seconds.append(seconds)
    result.last_weights, result.last_state = s.weights, s.state
    if epoch % every == 0 or epoch == result.config.epochs:
        result.snapshot_epochs.append(epoch)
        result.snapshots.append(s.weights)
        result.state_snapshots.append(s.state)


def settle_results(results: list[TrainResult], status: str) -> list[TrainResult]:
    """Mark runs still running with `status`; give diverged runs back their last finite weights."""
    for result in results:
        if result.status == "running":
            result.status = status
        elif result.status == "diverged":  # its Keras weights are NaN: put back the last finite state
            last = result.last_weights if result.last_weights is not None else result.snapshots[0]
            set_flat_weights(result.model, last)
            set_flat_state(result.model, result.last_state if result.last_state is not None
                           else result.state_snapshots[0])
    return results
