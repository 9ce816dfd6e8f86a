"""Several same-shaped MLPs trained as one stacked model: the fast path of `engine.train_many`.

The Activation Lab trains two to six copies of one MLP that differ only in their activations. On networks
this small a step costs what its ops cost to dispatch, not their arithmetic, and most of a separate run's
ops are the optimiser's (about twenty per variable). Here the M models' weights live in one (M, P)
variable, row k being model k's flattened weights in its `trainable_variables` order, and one Keras
optimiser updates it: for the element-wise optimisers (`STACKABLE_OPTIMIZERS`) that is exactly M separate
optimisers, since every slot entry only ever sees its own weight's gradient. The loop, the batch gather,
the loss bookkeeping, the gradient norms and the evaluation are shared too.

Each model's dense layers still run as a separate run's do: its own (N, units) tensors through the ops of
`Dense.call` (matmul, add, activation). That is deliberate. Grappler fuses matmul + bias + activation into
oneDNN kernels whose tanh, sigmoid, GELU and ELU round differently from TensorFlow's element-wise kernels,
and batched (M, N, units) versions differ from the per-model ones in the last bit; such differences grow
over a few thousand steps (a linear net on the circle drifts by 2e-4 in loss over 100 epochs). Computed
this way, a stacked run reproduces separate `engine.train` runs bit for bit: weights, losses and
accuracies (tests/test_stacked.py); only the recorded gradient norms and penalty are summed in another
order and may differ in the last bit.

What else is kept as in separate runs:

* initial weights: each Keras model is built and seeded as usual and their weights are stacked;
* batches: the engine draws one shuffle per epoch and every model steps on it, as each separate run does;
* loss: each model's masked mean data loss plus its own L1/L2 penalty; the gradient of their sum with
  respect to a model's row is that model's own gradient, so the models do not interact, and a model that
  overflows to NaN leaves the others' rows untouched;
* dropout: every model's Dropout layers are seeded alike (the seed derives from `config.seed` only), so
  separate runs draw identical masks; the first model's Dropout layers draw them here and every model is
  masked with them, with the ops of `tf.nn.experimental.stateless_dropout`;
* XLA: the engine compiles a stacked epoch with XLA exactly when it would compile each separate run.

The results' models are the ordinary Keras models: each compiled epoch ends by writing every model's row
into them, so they are live for progress callbacks and hold the trained weights at the end.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from models.builders import weight_layers
from models.config import ExperimentConfig
from models.epoch_runner import CompiledEpoch, EpochStats, accuracy
from models.registry import OPTIMIZERS

# Keras optimisers for which one optimiser over the stacked weights reproduces M separate ones bit for bit.
# Their update of a weight reads only that weight, its gradient, its own slot entries and scalars shared by
# all weights (step count, learning rate), and uses only correctly rounded element-wise ops, so the (M, P)
# layout cannot change a result. Left out:
# * Lamb: its trust ratio is the norm of a whole variable, which stacking would mix across the models;
# * RMSprop, Adagrad, Adadelta: element-wise too, but they divide by a square root, which grappler turns
#   into a multiplication by Rsqrt, and TensorFlow's vectorised Rsqrt is an approximation that differs in
#   the last bit from the scalar one used for a tensor's last few elements; which elements those are
#   depends on the tensor's size, so the stacked update differs slightly, and RMSprop at the dashboard's
#   learning rates amplifies that to visibly different runs (0.1 in loss after 60 epochs).
_ELEMENTWISE_OPTIMIZERS = {"SGD", "Adam", "AdamW", "Adamax", "Nadam", "Lion", "Ftrl"}
STACKABLE_OPTIMIZERS = frozenset(name for name, spec in OPTIMIZERS.items()
                                 if spec.keras_name in _ELEMENTWISE_OPTIMIZERS)

# Config fields that may differ between stacked models: they change no shape and no shared number.
_MAY_DIFFER = ("activation", "layer_activations")


def can_stack(configs: list[ExperimentConfig]) -> bool:
    """True when `configs` can train as one stacked model with results equal to separate runs.

    They must be at least two MLPs equal in everything but their (per-layer) activations, with an
    optimiser from `STACKABLE_OPTIMIZERS`.
    """
    if len(configs) < 2 or configs[0].architecture != "mlp" or configs[0].optimizer not in STACKABLE_OPTIMIZERS:
        return False
    shared = [{k: v for k, v in c.to_dict().items() if k not in _MAY_DIFFER} for c in configs]
    return all(s == shared[0] for s in shared[1:])


class StackedRunner:
    """Compiled epoch loop over M same-shaped MLPs held in one (M, P) weight variable; `EpochRunner`'s interface.

    Row k of the variable is model k's flattened weights, in its `trainable_variables` order (kernel and
    bias per dense layer), so it is also what each epoch reports. One variable rather than one per layer
    keeps the optimiser's update to a single set of element-wise ops, which on these tiny networks is most
    of a step.

    Timing: the models share every step, so one model's own step time cannot be measured apart. Each model
    is credited with an equal share of the shared epoch (wall time of the compiled epoch, its evaluation
    included, divided by M), so the shares add up to the time actually spent.
    """

    def __init__(self, models: list[keras.Model], optimizer, loss_fn, jit_compile: bool = False):
        self.models, self.optimizer, self.loss_fn = models, optimizer, loss_fn
        self.n = len(models)
        first = models[0]
        layers = weight_layers(first)  # dense_1 .. dense_k, output: each a kernel and a bias
        self._prefix = []  # the shared weightless layers in front of the first dense layer (features, flatten)
        for layer in first.layers:
            if layer is layers[0]:
                break
            if not isinstance(layer, keras.layers.InputLayer):
                self._prefix.append(layer)
        self._shapes = [tuple(v.shape) for v in first.trainable_variables]
        self._sizes = [int(np.prod(shape)) for shape in self._shapes]
        if len(self._shapes) != 2 * len(layers) or any(len(shape) != 2 for shape in self._shapes[0::2]):
            raise ValueError("A stacked run needs an MLP whose weight layers each hold a kernel and a bias.")
        # Column j of the flat weights belongs to weight layer `segments[j]` (for the gradient norms).
        self._segments = tf.constant(np.repeat(np.arange(2 * len(layers)) // 2, self._sizes), tf.int32)
        n_hidden = len(layers) - 1
        # Each model's activation function per hidden layer, and the shared dropout layers (first model's).
        self._activations = [[m.get_layer(f"act_{i}").activation for m in models] for i in range(1, n_hidden + 1)]
        self._dropouts = [_layer_or_none(first, f"dropout_{i}") for i in range(1, n_hidden + 1)]
        self._out_activation = layers[-1].activation
        self._regularizer = layers[0].kernel_regularizer  # every dense layer's (L1L2), or None
        self._l1 = float(getattr(self._regularizer, "l1", 0.0) or 0.0)
        self._l2 = float(getattr(self._regularizer, "l2", 0.0) or 0.0)
        flat = [np.concatenate([np.ravel(v.numpy()) for v in m.trainable_variables]) for m in models]
        self.weights = keras.Variable(np.stack(flat).astype("float32"), name="stacked_weights")
        optimizer.build([self.weights])
        self._run = CompiledEpoch(self._epoch, "StackedRunner", jit_compile=jit_compile, autograph=False)

    # --- the stacked network -------------------------------------------------------------------------------

    def _forward(self, x, training: bool, parts: list | None = None):
        """Softmax (or regression) outputs of every model: M tensors (N, classes).

        Each model's dense layers run on its own (N, units) tensors with the very ops of `Dense.call`
        (matmul, add, activation): grappler then fuses them into the same oneDNN kernels as in a separate
        run, whose tanh, sigmoid, GELU and ELU round differently from TensorFlow's own element-wise kernels.
        What is shared: the input features, the optimiser, the loss and the bookkeeping.
        """
        parts = self._parts() if parts is None else parts
        h = x
        for layer in self._prefix:
            h = layer(h)
        hs = [h] * self.n
        for i in range(len(parts) // 2):
            kernels = tf.unstack(tf.reshape(parts[2 * i], [self.n, *self._shapes[2 * i]]))
            biases = tf.unstack(parts[2 * i + 1])
            zs = [keras.ops.add(keras.ops.matmul(h, kernel), bias) for h, kernel, bias in zip(hs, kernels, biases,
                                                                                              strict=True)]
            if i == len(self._activations):
                return [self._out_activation(z) for z in zs]
            hs = [activation(z) for activation, z in zip(self._activations[i], zs, strict=True)]
            dropout = self._dropouts[i]
            if training and dropout is not None:
                # The mask a separate run's Dropout draws for this batch (same seed, same generator state),
                # applied with tf.nn.experimental.stateless_dropout's own ops (a constant scale, so that
                # grappler folds it as in the separate run's graph).
                keep = dropout(tf.ones(tf.shape(hs[0])), training=True) != 0
                scale = tf.constant(1 / (1 - dropout.rate), tf.float32)
                hs = [tf.where(keep, h * scale, tf.constant(0, tf.float32)) for h in hs]
        raise AssertionError("unreachable: the output layer returns")

    def _per_sample(self, y, outputs):
        """(M, N) per-sample data loss of every model."""
        return tf.stack([self.loss_fn(y, output) for output in outputs])

    def _parts(self) -> list:
        """The flat weights cut into (M, size) blocks, one per variable of a model."""
        return tf.split(self.weights, self._sizes, axis=1)

    def _penalty(self, parts: list):
        """(M,) L1/L2 penalty of each model's kernels, for the loss: its gradient is exactly Keras' regulariser's
        (the value may differ from `_recorded_penalty` in the last bit: the sums run in another order)."""
        terms = [tf.zeros([self.n])]
        for kernel in parts[0::2]:
            term = tf.zeros([self.n])
            if self._l1:
                term += self._l1 * tf.reduce_sum(tf.abs(kernel), axis=1)
            if self._l2:
                term += self._l2 * tf.reduce_sum(tf.square(kernel), axis=1)
            terms.append(term)
        return tf.add_n(terms)

    def _recorded_penalty(self):
        """(M,) penalties to report, each model's summed exactly as `epoch_runner._penalty(model)` sums it."""
        if self._regularizer is None:
            return tf.zeros([self.n])
        kernels = [tf.unstack(tf.reshape(part, [self.n, *shape]))
                   for part, shape in zip(self._parts()[0::2], self._shapes[0::2], strict=True)]
        return tf.stack([tf.add_n([tf.constant(0.0)] + [self._regularizer(layer[k]) for layer in kernels])
                         for k in range(self.n)])

    def _step(self, xb, yb, weights):
        """One gradient step of every model; returns (weight layers, M) gradient norms."""
        with tf.GradientTape() as tape:
            parts = self._parts()
            per = self._per_sample(yb, self._forward(xb, training=True, parts=parts))
            losses = tf.reduce_sum(per * weights, axis=1) / tf.maximum(tf.reduce_sum(weights), 1.0)
            if self._l1 or self._l2:
                losses += self._penalty(parts)
            total = tf.reduce_sum(losses)  # each model's row gets exactly its own loss' gradient
        (grad,) = tape.gradient(total, [self.weights])
        self.optimizer.apply([grad], [self.weights])
        squares = tf.transpose(tf.square(grad))  # (P, M)
        return tf.sqrt(tf.math.unsorted_segment_sum(squares, self._segments, len(self._sizes) // 2))

    def _epoch(self, x, y, batches, mask, x_test, y_test):
        # Traced without AutoGraph (a third of the tracing time), so the loop is written out.
        steps = tf.shape(batches)[0]

        def body(step, grad_sums):
            norms = self._step(tf.gather(x, batches[step]), tf.gather(y, batches[step]), mask[step])
            return step + 1, grad_sums + norms

        _, grad_sums = tf.while_loop(lambda step, _: step < steps, body,
                                     (tf.constant(0), tf.zeros([len(self._sizes) // 2, self.n])))
        outputs = [grad_sums / tf.cast(steps, tf.float32)]
        for xs, ys in ((x, y), (x_test, y_test)):  # per model, with a separate run's very reductions
            predicted = self._forward(xs, training=False)
            outputs.append(tf.stack([tf.reduce_mean(self.loss_fn(ys, p)) for p in predicted]))
            outputs.append(tf.stack([accuracy(p, ys) for p in predicted]))
        outputs.append(self._recorded_penalty())
        outputs.append(tf.identity(self.weights))
        with tf.control_dependencies(outputs):
            self._write_back()
        return outputs

    def _write_back(self) -> None:
        """Put every model's row into its own Keras variables, so the results' models are live between
        epochs as in separate runs; and advance the other models' dropout seed generators as their own runs
        would have."""
        parts = [tf.unstack(part) for part in self._parts()]
        for k, model in enumerate(self.models):
            for variable, part, shape in zip(model.trainable_variables, parts, self._shapes, strict=True):
                variable.assign(tf.reshape(part[k], shape))
        for i, dropout in enumerate(self._dropouts, start=1):
            if dropout is not None:
                for model in self.models[1:]:
                    model.get_layer(f"dropout_{i}").seed_generator.state.assign(dropout.seed_generator.state)

    # --- the EpochRunner interface -----------------------------------------------------------------------

    def run_epoch(self, x, y, batches, mask, x_test, y_test) -> list[EpochStats]:
        """Train every model for one epoch on the same batches; one EpochStats per model."""
        out, wall = self._run(x, y, batches, mask, x_test, y_test)
        share = wall / self.n
        grad_means, tr_loss, tr_acc, te_loss, te_acc, penalty, weights = out
        empty = np.zeros(0, "float32")  # an MLP has no non-trainable state
        return [EpochStats(grad_means[:, k], float(tr_loss[k]), float(tr_acc[k]), float(te_loss[k]),
                           float(te_acc[k]), float(penalty[k]), share, weights[k], empty) for k in range(self.n)]

    def close(self) -> None:
        """Release what tracing left in TensorFlow's process-wide state (`CompiledEpoch.close`)."""
        self._run.close()


def _layer_or_none(model: keras.Model, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        return None
