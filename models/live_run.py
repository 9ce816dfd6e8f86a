"""A training run advanced a few epochs at a time, for TensorFlow Playground's play, pause and step buttons.

`engine.train` runs every epoch in one call and then closes its compiled loop. The Playground keeps one
`LiveRun` per session between Streamlit reruns instead: each Step or each tick of Play calls `step`, which
goes on with the same model, optimiser state, learning-rate schedule and batch order, so stepping 10 and
then 10 epochs gives the numbers of one uninterrupted 20-epoch `train`. Between steps a weight can be
edited by hand (`set_weight`), as by clicking a link in TensorFlow Playground.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from models.builders import build_model
from models.config import ExperimentConfig
from models.datasets import Dataset, load_dataset
from models.engine import (
    MAX_SNAPSHOT_FLOATS,
    TrainResult,
    _new_result,
    _record,
    epoch_batches,
    flat_state,
    flat_weights,
    learning_rate_for,
    per_sample_loss,
    settle_results,
)
from models.epoch_runner import EpochRunner, _penalty, accuracy
from models.network_weights import set_weight
from models.registry import make_optimizer


def _serialised(method):
    """Run `method` holding the run's lock. On a widget change Streamlit starts a new script thread at once
    (runner.fastReruns) while the interrupted one finishes its current epoch; both reach the same run, so
    its steps, edits and reads take turns."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class LiveRun:
    """One model being trained epoch by epoch; `result` holds everything recorded so far.

    `result.status` means, for a live run:
        "running": it can be stepped again (fresh, between steps, or paused by `should_stop`).
        "diverged": an epoch ended with a non-finite loss or weights (`result.diverged_epoch`); the model
            holds the last finite state and the run cannot be stepped again (start a new one).

    `config.epochs` is not a limit: a run may be stepped past it. It is the length a "warmup_cosine"
    schedule spans (after it the learning rate stays at the schedule's final 0), as in `engine.train`.
    Every epoch's weights are kept in `result.snapshots` until they would pass MAX_SNAPSHOT_FLOATS; then every
    other one is dropped and only every 2nd (4th, ...) epoch is kept from there on.
    """

    def __init__(self, config: ExperimentConfig, dataset: Dataset | None = None, jit_compile: bool = False):
        """Build the model at epoch 0 with the initial weights `engine.train(config)` starts from.

        Args:
            config: what to train.
            dataset: the data; loaded from the config when omitted.
            jit_compile: compile the epoch with XLA. Off by default: on the default Playground problem XLA
                makes the first Step about 1.3 s slower (compiling) to save 2-3 ms on each later epoch.
        """
        dataset = dataset if dataset is not None else load_dataset(config)
        model = build_model(config, dataset.input_shape, dataset.n_classes)
        steps_per_epoch = -(-len(dataset.y_train) // config.batch_size)
        optimizer = make_optimizer(config.optimizer, learning_rate_for(config, steps_per_epoch),
                                   config.optimizer_options)
        self._runner = EpochRunner([model], [optimizer], [per_sample_loss(config.loss, dataset.n_classes)],
                                   jit_compile=jit_compile)
        # A session that ends without `close` still releases the traced graphs when the run is collected.
        self._release = weakref.finalize(self, self._runner.close)
        self._release.atexit = False  # at interpreter exit TensorFlow may already be torn down
        self.result: TrainResult = _new_result(config, dataset, model)
        self._tensors = [tf.constant(a) for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)]
        self._rng = np.random.default_rng(config.seed + 1)  # the batch order of `engine.train`
        self._every = 1  # keep a snapshot every this many epochs
        self._seconds = 0.0  # time spent inside `step` so far; history.seconds counts only this
        self._lock = threading.RLock()  # see _serialised

    @property
    @_serialised
    def epoch(self) -> int:
        """Epochs trained so far; the model holds the weights after this epoch (0 = initial)."""
        return len(self.result.history)

    @property
    def model(self) -> keras.Model:
        return self.result.model

    @_serialised
    def step(
        self,
        epochs: int = 1,
        on_epoch: Callable[[TrainResult], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """Train `epochs` more epochs, or fewer if it diverges or `should_stop` says so.

        Args:
            epochs: how many epochs to add, >= 1.
            on_epoch: called with `result` after each epoch (for live charts).
            should_stop: polled after each epoch; True pauses the run, which stays "running" and can step again.

        Returns:
            `result`, with one more history entry per epoch trained.

        Raises:
            ValueError: `epochs` is below 1.
            RuntimeError: the run diverged earlier or was closed.
        """
        if epochs < 1:
            raise ValueError(f"A step trains at least 1 epoch; got epochs={epochs}.")
        result = self.result
        if result.status == "diverged":
            raise RuntimeError(f"This run diverged at epoch {result.diverged_epoch}; start a new one to train again.")
        x, y, x_test, y_test = self._tensors
        start = time.perf_counter()
        try:  # Streamlit interrupts a run by raising in `on_epoch`; the epochs done so far stay recorded
            for _ in range(epochs):
                epoch = self.epoch + 1
                batches, mask = epoch_batches(len(result.dataset.y_train), result.config.batch_size, self._rng)
                (stats,) = self._runner.run_epoch(x, y, batches, mask, x_test, y_test)
                _record(result, stats, epoch, self._every, self._seconds + time.perf_counter() - start)
                if result.status == "diverged":
                    settle_results([result], "running")  # puts the last finite weights back into the model
                else:
                    self._thin_snapshots()
                if on_epoch is not None:
                    on_epoch(result)
                if result.status == "diverged" or (should_stop is not None and should_stop()):
                    break
        finally:
            self._seconds += time.perf_counter() - start
        return result

    @_serialised
    def set_weight(self, layer_name: str, index: tuple[int, ...], value: float) -> dict[str, float]:
        """Set one entry of a dense layer's kernel (index (input, unit)) or bias (index (unit,)), then evaluate.

        The history is unchanged (a hand edit is not an epoch); the next `step` trains from the edited
        weights with the optimiser's state as it was. If that step diverges, the model goes back to the
        edited weights.

        Returns:
            The edited model's data loss and accuracy, keys as in History: "train_loss", "test_loss",
            "train_acc", "test_acc" (accuracy is NaN for regression), and "penalty" (L1/L2 of the weights).

        Raises:
            ValueError: no dense layer of that name, an index outside the kernel or bias, or a non-finite value.
        """
        set_weight(self.model, layer_name, index, value)
        self.result.last_weights, self.result.last_state = flat_weights(self.model), flat_state(self.model)
        return self.evaluate()

    @_serialised
    def evaluate(self) -> dict[str, float]:
        """The current weights' data loss and accuracy on the training and test sets (see `set_weight`)."""
        x, y, x_test, y_test = self._tensors
        out = {}
        for split, xs, ys in (("train", x, y), ("test", x_test, y_test)):
            predicted = self.model(xs, training=False)
            out[f"{split}_loss"] = float(tf.reduce_mean(self._runner.loss_fns[0](ys, predicted)))
            out[f"{split}_acc"] = float(accuracy(predicted, ys))
        out["penalty"] = float(_penalty(self.model))
        return out

    @_serialised
    def detached_result(self, status: str = "completed") -> TrainResult:
        """A copy of the run so far that later steps and weight edits leave alone: its own model (a clone
        with the current weights and state) and its own history and snapshot lists, marked `status`.

        Other pages keep results by config and cache analyses by it, so what they are handed must not
        change under them when the Playground steps on or a weight is edited.
        """
        r = self.result
        model = keras.models.clone_model(r.model)
        model.set_weights(r.model.get_weights())
        history = dataclasses.replace(r.history, **{f.name: list(getattr(r.history, f.name))
                                                    for f in dataclasses.fields(r.history)})
        return dataclasses.replace(r, model=model, history=history, snapshot_epochs=list(r.snapshot_epochs),
                                   snapshots=list(r.snapshots), state_snapshots=list(r.state_snapshots),
                                   status=status)

    @_serialised
    def wait(self) -> None:
        """Return once no other thread is stepping or editing this run (an interrupted script's last epoch)."""

    @_serialised
    def close(self) -> None:
        """Free the compiled epoch loop; the run cannot be stepped after this (its result stays readable)."""
        self._release()

    def _thin_snapshots(self) -> None:
        """Keep every other snapshot (epoch 0 always) once they hold more than MAX_SNAPSHOT_FLOATS floats."""
        r = self.result
        if len(r.snapshots) * r.snapshots[0].size <= MAX_SNAPSHOT_FLOATS:
            return
        self._every *= 2
        keep = [i for i, epoch in enumerate(r.snapshot_epochs) if epoch % self._every == 0]
        r.snapshot_epochs = [r.snapshot_epochs[i] for i in keep]
        r.snapshots = [r.snapshots[i] for i in keep]
        r.state_snapshots = [r.state_snapshots[i] for i in keep]
