"""One compiled call per epoch that trains one or several models side by side on the same batches.

`model.fit` pays Python and tf.data overhead on every step, which dominates on the tiny networks
this dashboard trains. Here a `tf.function` runs every step of an epoch in a graph loop and then
evaluates the full train and test sets, so Python is visited once per epoch. Several models (e.g.
one per activation) share the loop, the batches and a single compile; each model's steps are timed
in the graph so the wall time per epoch can still be reported per model.

A runner is used for one training and then `close`d: tracing leaves two things behind in process-wide
TensorFlow state that would otherwise keep every traced graph alive (measured: 3 FuncGraphs, ~4,400
objects and ~3.5 MB per training, growing without bound). Keras' optimiser all-reduces its gradients
through `tf.custom_gradient`, which in graph mode registers a gradient function under a fresh name in
TensorFlow's global gradient registry and never removes it; that function holds the graph's tensors.
And the eager context caches one kernel per function it has run, also never evicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.framework import ops

from models.builders import weight_layers


@dataclass(frozen=True)
class EpochStats:
    """What one epoch produced for one model."""

    grad_norms: np.ndarray  # (weight layers,) mean per-step gradient L2 norm
    train_loss: float  # mean data loss (without the penalty) on the whole training set after the epoch
    train_acc: float  # accuracy on the training set, 0..1; NaN for regression
    test_loss: float  # mean data loss on the test set
    test_acc: float  # accuracy on the test set, 0..1; NaN for regression
    penalty: float  # L1/L2 penalty of the weights after the epoch (0 without regularisation)
    step_seconds: float  # time spent in this model's training steps during the epoch (stacked: its share)
    weights: np.ndarray  # (P,) flattened trainable weights after the epoch
    state: np.ndarray  # (S,) flattened non-trainable state (batch-norm moving statistics), (0,) if none


class CompiledEpoch:
    """One epoch function compiled with `tf.function`, and what its traces leave in TensorFlow's process-wide
    state (module docstring); `close` releases that. Shared by `EpochRunner` and `models.stacked.StackedRunner`."""

    def __init__(self, epoch, owner: str, **options):
        self._fn = tf.function(epoch, reduce_retracing=True, **options)
        self._owner = owner  # the runner's name, for the error after close
        self._gradient_names: set[str] = set()  # what our traces registered in the global gradient registry

    def __call__(self, *args) -> tuple[list[np.ndarray], float]:
        """The epoch's outputs as arrays and the call's wall seconds."""
        if self._fn is None:
            raise RuntimeError(f"This {self._owner} was closed; build a new one to train again.")
        traces = self._fn.experimental_get_tracing_count()
        start = time.perf_counter()
        out = [np.asarray(t) for t in self._fn(*args)]
        seconds = time.perf_counter() - start
        if self._fn.experimental_get_tracing_count() != traces:
            self._gradient_names |= _custom_gradient_names(self._fn.get_concrete_function(*args).graph)
        return out, seconds

    def close(self) -> None:
        """Release what tracing left in TensorFlow's process-wide state, so the graphs and models can be freed.

        The epoch function's gradients were taken while tracing; nothing differentiates through it later,
        so its registered custom gradients are no longer needed.
        """
        for name in self._gradient_names:
            ops.gradient_registry._registry.pop(name, None)  # TF has no public way to unregister
        self._gradient_names.clear()
        self._fn = None
        # Kernels are cached per function and never evicted (~0.5 MB per training); clearing is global, so
        # sessions training at the same time rebuild theirs on their next call (as `tf.random.set_seed` does).
        # XLA's compilation cache (`jit_compile` runs) has no such switch and keeps ~5 MB per XLA training.
        context.context().clear_kernel_cache()


class EpochRunner:
    """Compiled epoch loop for a list of (model, optimiser, per-sample loss) members."""

    def __init__(self, models: list[keras.Model], optimizers: list, loss_fns: list, jit_compile: bool = False):
        self.models, self.optimizers, self.loss_fns = models, optimizers, loss_fns
        self._groups = [_layer_groups(m) for m in models]
        # Timing members inside the graph needs the Timestamp op, which XLA lacks; one member is
        # timed from Python instead.
        self._time_in_graph = len(models) > 1
        if self._time_in_graph and jit_compile:
            raise ValueError("Several models in one loop are timed in the graph, which XLA cannot compile.")
        for model, optimizer in zip(models, optimizers, strict=True):
            optimizer.build(model.trainable_variables)
        self._run = CompiledEpoch(self._epoch, "EpochRunner", jit_compile=jit_compile)

    def close(self) -> None:
        """Release what tracing left in TensorFlow's process-wide state (`CompiledEpoch.close`)."""
        self._run.close()

    def _step(self, k: int, xb, yb, weights):
        """One gradient step of member k; returns its per-layer gradient norms."""
        model, variables = self.models[k], self.models[k].trainable_variables
        with tf.GradientTape() as tape:
            per = self.loss_fns[k](yb, model(xb, training=True))
            loss = tf.reduce_sum(per * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
            loss += _penalty(model)
        grads = tape.gradient(loss, variables)
        self.optimizers[k].apply(grads, variables)
        return [tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(grads[i])) for i in g])) for g in self._groups[k]]

    def _timed_steps(self, xb, yb, wb):
        """One step of every member in turn, each timed between two graph timestamps."""
        stamp, norms, times = tf.timestamp(), [], []
        for k in range(len(self.models)):
            with tf.control_dependencies([stamp]):  # member k starts after member k-1 finished
                norms += self._step(k, xb, yb, wb)
            # Reading the weights orders the stamp after this member's optimiser update.
            done = [tf.reduce_sum(v.value) for v in self.models[k].trainable_variables]
            with tf.control_dependencies(done):
                new_stamp = tf.timestamp()
            times.append(new_stamp - stamp)
            stamp = new_stamp
        return norms, times

    def _epoch(self, x, y, batches, mask, x_test, y_test):
        # batches: (steps, batch) indices into x; mask: (steps, batch), 0 marks padding.
        n_layers = sum(len(g) for g in self._groups)
        grad_sums = tf.zeros([n_layers])
        seconds = tf.zeros([len(self.models)], tf.float64)
        for step in tf.range(tf.shape(batches)[0]):
            xb, yb, wb = tf.gather(x, batches[step]), tf.gather(y, batches[step]), mask[step]
            if self._time_in_graph:
                norms, times = self._timed_steps(xb, yb, wb)
                seconds += tf.stack(times)
            else:
                norms = [n for k in range(len(self.models)) for n in self._step(k, xb, yb, wb)]
            grad_sums += tf.stack(norms)
        outputs = [grad_sums / tf.cast(tf.shape(batches)[0], tf.float32), seconds]
        for k, model in enumerate(self.models):
            for xs, ys in ((x, y), (x_test, y_test)):
                predicted = model(xs, training=False)
                outputs += [tf.reduce_mean(self.loss_fns[k](ys, predicted)), accuracy(predicted, ys)]
            outputs.append(_penalty(model))
            outputs.append(tf.concat([tf.reshape(v, [-1]) for v in model.trainable_variables], axis=0))
            outputs.append(tf.concat([tf.zeros([0])] + [tf.reshape(v, [-1]) for v in model.non_trainable_weights],
                                     axis=0))
        return outputs

    def run_epoch(self, x, y, batches, mask, x_test, y_test) -> list[EpochStats]:
        """Train every member for one epoch on the same batches; one EpochStats per member."""
        out, wall = self._run(x, y, batches, mask, x_test, y_test)
        grad_means, seconds, rest = out[0], out[1], out[2:]
        if not self._time_in_graph:
            seconds = [wall] * len(self.models)  # includes the evaluation
        stats, offset = [], 0
        for k, groups in enumerate(self._groups):
            tr_loss, tr_acc, te_loss, te_acc, penalty, weights, state = rest[7 * k : 7 * k + 7]
            norms = grad_means[offset : offset + len(groups)]
            offset += len(groups)
            stats.append(EpochStats(norms, float(tr_loss), float(tr_acc), float(te_loss), float(te_acc),
                                    float(penalty), float(seconds[k]), weights, state))
        return stats


def accuracy(predicted, labels):
    """Share of argmax predictions equal to the integer labels; NaN for float regression targets."""
    if labels.dtype.is_floating:
        return tf.constant(float("nan"))
    correct = tf.equal(tf.argmax(predicted, axis=-1, output_type=tf.int32), labels)
    return tf.reduce_mean(tf.cast(correct, tf.float32))


def _penalty(model: keras.Model):
    """The regularisers' L1/L2 penalty of the current weights; Keras adds it to the loss it reports."""
    return tf.add_n([tf.constant(0.0)] + list(model.losses))


def _custom_gradient_names(graph: tf.Graph) -> set[str]:
    """Names under which `tf.custom_gradient` registered gradients for ops of `graph` or its loop bodies."""
    graph_def = graph.as_graph_def()
    nodes = list(graph_def.node) + [node for f in graph_def.library.function for node in f.node_def]
    return {node.attr["_gradient_op_type"].s.decode() for node in nodes if "_gradient_op_type" in node.attr}


def _layer_groups(model: keras.Model) -> list[list[int]]:
    """For each weight layer, the indices of its variables in `model.trainable_variables`."""
    variables = model.trainable_variables
    ids = [{id(w) for w in layer.trainable_weights} for layer in weight_layers(model)]
    return [[i for i, v in enumerate(variables) if id(v) in group] for group in ids]
