"""Many landscape points in one pass: a model's forward pass vectorised over weight vectors.

A loss surface evaluates one architecture at P weight vectors w_p = origin + coords[p] @ directions on the
same N samples. Running the model once per point (`stateless_call` in a `map_fn`) spends most of its time
in small ops; here each layer runs once for all P points of a chunk:

- layers that do not depend on the weights (the input, `PlaneFeatures`, a `Flatten` of the input, ...) run
  once, when the plan is built;
- a weight layer on such a shared input is linear in its weights:
  layer(x, W_p) = layer(x, W_origin) + sum_d coords[p, d] * layer(x, W_d). `prepare` runs it D + 1 times,
  once per surface (not per point), and each point's output is then a combination of D + 1 maps. For a
  `Conv2D` XLA fuses that combination with the batch norm, activation and pooling after it, so the
  full-resolution maps of the P points are never written to memory;
- image tensors then keep the points in the channel axis, (N, H, W, P * C), point p owning channels
  p * C ... (p + 1) * C: a later `Conv2D` is one grouped convolution (P groups, the P kernels side by side;
  oneDNN fuses its bias and ReLU), and pooling, batch norm and activations act per channel as they are;
- vectors (after `Flatten` or global pooling, or in an MLP) are (P, N, C) and a `Dense` layer is one
  batched matmul (P, N, C) @ (P, C, units);
- `BatchNormalization` uses the model's moving statistics (inference mode) and is folded into the
  convolution or dense layer before it when nothing else reads that layer's output.

The fast path covers Sequential and functional models with one input and one output, each layer called
once, made of: any layers without trainable weights on the input alone (e.g. `PlaneFeatures`, `Flatten`,
`Rescaling`); `Dense` (on vectors); `Conv2D` (channels last, no groups); `BatchNormalization` (last axis, no
renorm); `Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax` (last axis); `Dropout` and the other noise
layers (identity at inference); `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`,
`GlobalMaxPooling2D` (channels last); `Flatten`; and the element-wise merges `Add`, `Subtract`, `Average`,
`Maximum`, `Minimum`, `Multiply` (identity skips, as in the residual CNNs). Weights that are not trainable
(frozen layers) are constants. `BatchedForward` raises `UnsupportedModel` for anything else (e.g. nested
models, `Concatenate`, `LayerNormalization`, recurrent or 1-D/3-D layers, a `BatchNormalization` or other
weight layer directly on the input), and `SurfaceEvaluator` then evaluates point by point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

# Layers without weights that act on each element or along the last axis only: they apply unchanged to a
# tensor whose last two axes are (points, channels).
_ELEMENTWISE = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)
_IDENTITY_AT_INFERENCE = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                          keras.layers.SpatialDropout3D, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
                          keras.layers.AlphaDropout, keras.layers.ActivityRegularization)
_POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_GLOBAL_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
# Activations that act on each element alone (no softmax): they apply to any layout of the points.
_PER_ELEMENT = {keras.activations.get(name) for name in (
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "hard_sigmoid", "hard_silu",
    "softplus", "softsign", "exponential", "linear", "mish")}
_MERGES = (keras.layers.Add, keras.layers.Subtract, keras.layers.Average, keras.layers.Maximum,
           keras.layers.Minimum, keras.layers.Multiply)
_SMALL_MAP = 16  # global pooling of maps with at most this many positions is unrolled for XLA


class UnsupportedModel(ValueError):
    """The model has a layer or topology the batched forward pass does not cover."""


@dataclass
class _Points:
    """A chunk's weight vectors, as the graph sees them."""

    origin: tf.Tensor  # (T,)
    directions: tf.Tensor  # (D, T)
    coords: tf.Tensor  # (P, D)
    flat: tf.Tensor  # (P, T): origin + coords @ directions, each point's full weight vector

    @property
    def count(self) -> int:
        return int(self.coords.shape[0])  # chunks have a static size (the last one is padded)

    def coefficients(self) -> tf.Tensor:
        """(P, D + 1): [1, coords[p]], the weights of the origin and of each direction in point p."""
        return tf.concat([tf.ones_like(self.coords[:, :1]), self.coords], axis=1)


class _Weight:
    """One variable of a layer: a slice of the flat weight vector, or a constant if it is not trainable."""

    def __init__(self, variable, offsets: dict[int, int]):
        self.shape = tuple(int(s) for s in variable.shape)
        self.size = int(np.prod(self.shape))
        self.offset = offsets.get(id(variable))
        self.constant = None if self.offset is not None else tf.constant(np.asarray(variable.numpy(), "float32"))

    def per_point(self, pts: _Points) -> tf.Tensor:
        """(P, *shape): each point's value (a constant is repeated)."""
        if self.constant is not None:
            return tf.broadcast_to(self.constant[None], (pts.count, *self.shape))
        return tf.reshape(pts.flat[:, self.offset : self.offset + self.size], (pts.count, *self.shape))

    def stacked(self, origin: tf.Tensor, directions: tf.Tensor) -> tf.Tensor:
        """(D + 1, *shape): the origin's value, then each direction's (zero for a constant)."""
        if self.constant is not None:
            zeros = tf.zeros((directions.shape[0], *self.shape))
            return tf.concat([self.constant[None], zeros], axis=0)
        parts = tf.concat([origin[None, self.offset : self.offset + self.size],
                           directions[:, self.offset : self.offset + self.size]], axis=0)
        return tf.reshape(parts, (-1, *self.shape))


@dataclass
class _Node:
    """One call of a layer in the model's graph: the ids of the Keras tensors it reads and writes."""

    layer: keras.layers.Layer
    inputs: list[int]
    output: int


def graph(model: keras.Model) -> tuple[list[_Node], int, int]:
    """The model's layer calls in topological order (InputLayer left out), its input id and its output id.

    Raises:
        UnsupportedModel: several inputs or outputs, a nested model, or a layer called more than once.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModel("more than one input or output")
    nodes = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            raise UnsupportedModel(f"nested model {layer.name}")
        if len(layer._inbound_nodes) != 1 or len(layer._inbound_nodes[0].outputs) != 1:
            raise UnsupportedModel(f"layer {layer.name} is called more than once or has several outputs")
        node = layer._inbound_nodes[0]
        nodes.append(_Node(layer, [id(t) for t in node.input_tensors], id(node.outputs[0])))
    return nodes, id(model.inputs[0]), id(model.outputs[0])


def _is_linear(activation) -> bool:
    return activation is None or activation is keras.activations.linear


def _per_element(layer) -> Callable | None:
    """The function of a weightless layer that acts on each element alone, or None."""
    if type(layer) is keras.layers.Activation:
        return layer.activation if layer.activation in _PER_ELEMENT else None
    if type(layer) in (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU):
        return layer
    return None


def _batch_norm_affine(layer: keras.layers.BatchNormalization, offsets) -> Callable[[_Points], tuple]:
    """Batch norm in inference mode as x * scale + shift, scale and shift each (P, C)."""
    if layer.axis not in (-1, len(layer.input.shape) - 1) or getattr(layer, "renorm", False):
        raise UnsupportedModel(f"batch norm {layer.name} is not on the last axis, or renormalises")
    mean = tf.constant(np.asarray(layer.moving_mean.numpy(), "float32"))
    inv = tf.math.rsqrt(tf.constant(np.asarray(layer.moving_variance.numpy(), "float32")) + layer.epsilon)
    gamma = _Weight(layer.gamma, offsets) if layer.scale else None
    beta = _Weight(layer.beta, offsets) if layer.center else None

    def affine(pts: _Points):
        scale = tf.broadcast_to(inv[None], (pts.count, inv.shape[0])) if gamma is None else gamma.per_point(pts) * inv
        shift = -mean * scale
        return scale, (shift if beta is None else shift + beta.per_point(pts))

    return affine


def _pool_fits(layer, height: int, width: int) -> bool:
    """Whether the pooling windows tile the map without overlap (the usual pool_size == strides)."""
    (ph, pw), (sh, sw) = tuple(layer.pool_size), tuple(layer.strides)
    return (ph, pw) == (sh, sw) and (layer.padding == "valid" or (height % ph == 0 and width % pw == 0))


def _pool(t: tf.Tensor, layer) -> tf.Tensor:
    """2-D max or average pooling of (N, H, W, C), any channel order. Windows that tile the map are taken as
    ph * pw strided slices combined element by element, which XLA compiles into one vectorised loop (its
    reductions over small windows are several times slower); other poolings use TensorFlow's ops."""
    (ph, pw), (sh, sw) = tuple(layer.pool_size), tuple(layer.strides)
    _, h, w, _ = t.shape
    is_max = isinstance(layer, keras.layers.MaxPooling2D)
    if _pool_fits(layer, h, w):
        h2, w2 = h // ph, w // pw
        return _combine([t[:, i : h2 * ph : ph, j : w2 * pw : pw] for i in range(ph) for j in range(pw)], is_max)
    pool = tf.nn.max_pool2d if is_max else tf.nn.avg_pool2d
    return pool(t, (ph, pw), (sh, sw), layer.padding.upper())


def _combine(parts: list[tf.Tensor], is_max: bool) -> tf.Tensor:
    """The element-wise maximum or mean of equally shaped tensors."""
    out = parts[0]
    for part in parts[1:]:
        out = tf.maximum(out, part) if is_max else out + part
    return out if is_max else out * (1.0 / len(parts))


def _per_point_channels(t: tf.Tensor, channels: int, fn) -> tf.Tensor:
    """Apply `fn`, which acts along the last axis, to (..., P * C) seen as (..., P, C)."""
    split = tf.reshape(t, (*t.shape[:-1], -1, channels))
    return tf.reshape(fn(split), t.shape)


@dataclass
class _Step:
    """One operation of the plan: `fn(inputs, pts) -> output`, on the tensors of the Keras ids `inputs`.
    `xla` steps are compiled by XLA, runs of them that feed one another fused into one function; the
    others (oneDNN convolutions and matmuls, merges) run as TensorFlow ops."""

    fn: Callable
    inputs: list[int]
    output: int
    xla: bool
    name: str


class BatchedForward:
    """A model's forward pass on fixed inputs `x`, for a chunk of P weight vectors at once.

    `prepare(origin, directions)` once per surface, then `outputs(prepared, origin, directions, coords)` per
    chunk: the (P, N, outputs) model outputs, equal to `model.stateless_call` point by point up to float
    rounding; a softmax output keeps its logits for the cross-entropy (`softmax_logits`), as Keras' does.

    Raises:
        UnsupportedModel: the model has a layer or topology the module docstring does not list.
    """

    def __init__(self, model: keras.Model, x: np.ndarray):
        nodes, input_id, self._output = graph(model)
        if any(v.dtype != "float32" for v in model.weights if "float" in str(v.dtype)):
            raise UnsupportedModel("weights that are not float32")
        for node in nodes:
            if getattr(node.layer, "lora_enabled", False) or getattr(node.layer, "quantization_mode", None):
                raise UnsupportedModel(f"layer {node.layer.name} is quantised or has LoRA weights")
        self._offsets, offset = {}, 0
        for v in model.trainable_variables:
            self._offsets[id(v)] = offset
            offset += int(np.prod(v.shape))
        self._weight_count = offset
        self.samples = int(np.shape(x)[0])
        self._consumers: dict[int, list[_Node]] = {}
        for node in nodes:
            for i in node.inputs:
                self._consumers.setdefault(i, []).append(node)
        # Tensors that do not depend on the weights (the input and layers of it without trainable weights)
        # are computed here, once; the others have a layout: "image" (N, H, W, P * C) or "vector" (P, N, C).
        self._shared = {input_id: tf.constant(np.asarray(x, "float32"))}
        self._layout: dict[int, str] = {}
        self._alias: dict[int, int] = {}  # identity layers: output id -> input id
        self._steps: list[_Step] = []
        self._prepares: list[Callable] = []  # first layers' outputs for the origin and each direction
        self._floats: list[int] = [1]  # per sample and point: each step's inputs + output
        self._done: set[int] = set()
        for node in nodes:
            if id(node) not in self._done:
                self._plan(node)
        if self._resolve(self._output) in self._shared or self._layout.get(self._resolve(self._output)) != "vector":
            raise UnsupportedModel("the model's output is not one vector per sample that depends on the weights")
        self._segments = self._compile_segments()

    # -- planning ------------------------------------------------------------------------------------------

    def _resolve(self, i: int) -> int:
        while i in self._alias:
            i = self._alias[i]
        return i

    def _sole_consumer(self, i: int) -> _Node | None:
        """The one layer that reads tensor `i`, if only one does (and it is not the model's output)."""
        readers = self._consumers.get(i, [])
        return readers[0] if len(readers) == 1 and i != self._output else None

    def _follow(self, node: _Node, kinds, test=None) -> _Node | None:
        """The sole reader of `node`'s output if it is one of `kinds` (and passes `test`); it is then fused
        into `node`'s step and marked done."""
        nxt = self._sole_consumer(node.output)
        if nxt is not None and isinstance(nxt.layer, kinds) and len(nxt.inputs) == 1 and (test is None or test(nxt)):
            self._done.add(id(nxt))
            return nxt
        return None

    def _take_batch_norm(self, node: _Node, activation) -> tuple[_Node, Callable | None]:
        """Fold a batch norm that alone reads a linear dense/conv layer into it."""
        if _is_linear(activation):
            bn = self._follow(node, keras.layers.BatchNormalization)
            if bn is not None:
                return bn, _batch_norm_affine(bn.layer, self._offsets)
        return node, None

    def _take_activation(self, node: _Node, activation) -> tuple[_Node, Callable | None]:
        """The layer's own activation, or if it has none a per-element activation layer that alone reads it."""
        if _is_linear(activation):
            act = self._follow(node, _ELEMENTWISE, lambda n: _per_element(n.layer) is not None)
            if act is not None:
                return act, _per_element(act.layer)
            return node, None
        return node, activation

    def _add(self, fn, inputs: list[int], output: int, layout: str, xla: bool, name: str, floats: int) -> None:
        self._steps.append(_Step(fn, inputs, output, xla, name))
        self._layout[output] = layout
        self._floats.append(floats)

    def _plan(self, node: _Node) -> None:
        layer = node.layer
        inputs = [self._resolve(i) for i in node.inputs]
        if all(i in self._shared for i in inputs) and not layer.trainable_weights:
            values = [self._shared[i] for i in inputs]
            out = layer(values if len(values) > 1 else values[0], training=False)
            self._shared[node.output] = tf.convert_to_tensor(out)
            return
        if isinstance(layer, _MERGES):
            self._merge(node, inputs)
            return
        if len(inputs) != 1:
            raise UnsupportedModel(f"layer {layer.name} ({type(layer).__name__}) has no batched version")
        source = inputs[0]
        rank = len(layer.input.shape)
        before = int(np.prod(layer.input.shape[1:]))
        after = int(np.prod(layer.output.shape[1:]))
        if source in self._shared:
            if type(layer) is keras.layers.Dense and rank == 2:
                self._first_dense(node, source)
            elif type(layer) is keras.layers.Conv2D and rank == 4:
                self._first_conv(node, source)
            else:
                raise UnsupportedModel(f"layer {layer.name} ({type(layer).__name__}) with weights on the input "
                                       "has no batched version")
            return
        layout = self._layout[source]
        if type(layer) is keras.layers.Dense and rank == 2:
            self._dense(node, source)
        elif type(layer) is keras.layers.Conv2D and rank == 4 and layout == "image":
            self._conv(node, source)
        elif isinstance(layer, keras.layers.BatchNormalization):
            affine = _batch_norm_affine(layer, self._offsets)

            def batch_norm(ts, pts):
                scale, shift = affine(pts)  # (P, C)
                if layout == "vector":
                    return ts[0] * scale[:, None, :] + shift[:, None, :]
                return ts[0] * tf.reshape(scale, (-1,)) + tf.reshape(shift, (-1,))

            self._add(batch_norm, [source], node.output, layout, True, layer.name, before + after)
        elif layer.trainable_weights:
            raise UnsupportedModel(f"layer {layer.name} ({type(layer).__name__}) has no batched version")
        elif isinstance(layer, _IDENTITY_AT_INFERENCE) or (isinstance(layer, keras.layers.Flatten) and rank == 2):
            self._alias[node.output] = source
        elif isinstance(layer, _ELEMENTWISE) or (isinstance(layer, keras.layers.Softmax)
                                                 and layer.axis in (-1, rank - 1)):
            fn, channels = _per_element(layer), int(layer.input.shape[-1])
            if layout == "vector":
                self._add(lambda ts, pts: layer(ts[0]), [source], node.output, layout, False, layer.name,
                          before + after)
            elif fn is not None:
                self._add(lambda ts, pts: fn(ts[0]), [source], node.output, layout, True, layer.name, before + after)
            else:
                self._add(lambda ts, pts: _per_point_channels(ts[0], channels, layer), [source], node.output, layout,
                          True, layer.name, before + after)
        elif isinstance(layer, _POOLS) and layout == "image" and layer.data_format == "channels_last":
            self._add(lambda ts, pts: _pool(ts[0], layer), [source], node.output, layout, True, layer.name,
                      before + after)
        elif (isinstance(layer, _GLOBAL_POOLS) and layout == "image" and layer.data_format == "channels_last"
              and not layer.keepdims):
            self._global_pool(node, source)
        elif isinstance(layer, keras.layers.Flatten) and layout == "image":
            h, w, channels = (int(s) for s in layer.input.shape[1:])
            samples = self.samples

            def flatten(ts, pts):
                t = tf.transpose(tf.reshape(ts[0], (samples, h, w, -1, channels)), (3, 0, 1, 2, 4))
                return tf.reshape(t, (-1, samples, h * w * channels))  # (P, N, H * W * C), Keras' order

            self._add(flatten, [source], node.output, "vector", True, layer.name, before + after)
        else:
            raise UnsupportedModel(f"layer {layer.name} ({type(layer).__name__}) has no batched version")

    def _merge(self, node: _Node, inputs: list[int]) -> None:
        """Add and the other element-wise merges; an input that does not depend on the weights is repeated
        for every point."""
        layouts = {self._layout[i] for i in inputs if i not in self._shared}
        if len(layouts) != 1:
            raise UnsupportedModel(f"merge layer {node.layer.name} joins images and vectors")
        layout, layer = layouts.pop(), node.layer
        shared = [i in self._shared for i in inputs]

        def merge(ts, pts):
            parts = []
            for t, is_shared in zip(ts, shared, strict=True):
                if is_shared:
                    t = tf.tile(t, [1, 1, 1, pts.count]) if layout == "image" else \
                        tf.broadcast_to(t[None], (pts.count, *t.shape))
                parts.append(t)
            return layer(parts)

        after = int(np.prod(layer.output.shape[1:]))
        self._add(merge, inputs, node.output, layout, False, layer.name, (len(inputs) + 1) * after)

    def _first_dense(self, node: _Node, source: int) -> None:
        layer = node.layer
        end, bn = self._take_batch_norm(node, layer.activation)
        end, activation = self._take_activation(end, layer.activation)
        kernel, bias = _kernel_and_bias(layer, self._offsets)
        activation = activation or keras.activations.linear
        x = self._shared[source]

        def prepare(origin, directions):
            # x @ W_k (+ b_k) for the origin and each direction: (D + 1, N, U)
            per_direction = tf.einsum("nf,kfu->knu", x, kernel.stacked(origin, directions))
            return per_direction if bias is None else per_direction + bias.stacked(origin, directions)[:, None, :]

        def combine(ts, pts):
            # x @ W_p + b_p = sum_k coef[p, k] (x @ W_k + b_k): one (P, D + 1) @ (D + 1, N * U) matmul
            k, n, u = ts[0].shape
            z = tf.reshape(tf.matmul(pts.coefficients(), tf.reshape(ts[0], (k, n * u))), (-1, n, u))  # (P, N, U)
            if bn is not None:
                scale, shift = bn(pts)
                z = z * scale[:, None, :] + shift[:, None, :]
            return activation(z)

        self._prepares.append(prepare)
        self._add(combine, [-len(self._prepares)], end.output, "vector", False, layer.name, 2 * layer.units)

    def _first_conv(self, node: _Node, source: int) -> None:
        layer = node.layer
        _check_conv(layer)
        end, bn = self._take_batch_norm(node, layer.activation)
        end, activation = self._take_activation(end, layer.activation)
        if activation is not None and activation not in _PER_ELEMENT and not isinstance(activation, keras.layers.Layer):
            raise UnsupportedModel(f"conv layer {layer.name} has activation {activation}")
        after_identity = end
        while (nxt := self._follow(after_identity, _IDENTITY_AT_INFERENCE)) is not None:
            after_identity = nxt
        h, w = (int(s) for s in layer.output.shape[1:3])
        pool = self._follow(after_identity, _POOLS, lambda n: n.layer.data_format == "channels_last"
                            and _pool_fits(n.layer, h, w))
        end = pool or after_identity
        pool = pool.layer if pool is not None else None
        kernel, bias = _kernel_and_bias(layer, self._offsets)
        kh, kw, c, o = kernel.shape
        strides, dilations, padding = tuple(layer.strides), tuple(layer.dilation_rate), layer.padding.upper()
        activation = activation or keras.activations.linear
        ph, pw = tuple(pool.pool_size) if pool is not None else (1, 1)
        is_max = isinstance(pool, keras.layers.MaxPooling2D)
        h2, w2 = h // ph, w // pw
        x = self._shared[source]

        def prepare(origin, directions):
            # conv(x, W_k) + b_k for the origin and each direction, with each pooling window's ph * pw
            # positions on an axis of their own: (N, H / ph, W / pw, ph * pw, O, D + 1)
            stacked = kernel.stacked(origin, directions)  # (K, kh, kw, C, O)
            k = stacked.shape[0]
            maps = tf.nn.conv2d(x, tf.reshape(tf.transpose(stacked, (1, 2, 3, 0, 4)), (kh, kw, c, k * o)),
                                strides, padding, dilations=dilations)
            maps = tf.reshape(maps, (-1, h, w, k, o))
            if bias is not None:
                maps = maps + bias.stacked(origin, directions)
            maps = tf.reshape(maps[:, : h2 * ph, : w2 * pw], (-1, h2, ph, w2, pw, k, o))
            return tf.reshape(tf.transpose(maps, (0, 1, 3, 2, 4, 6, 5)), (-1, h2, w2, ph * pw, o, k))

        def mix(ts, pts):
            # Per point: the combination of the D + 1 maps (batch norm folded in), the activation and the
            # pooling, written in the grouped convolution's order (N, H2, W2, P, O); the full-resolution maps
            # are never stored. (Writing (N, H2, W2, O, P) and transposing it afterwards cost 14% of the
            # Feature Hierarchy CNN's surface.)
            prepared = ts[0]
            weights = tf.transpose(pts.coefficients())[:, :, None]  # (K, P, 1)
            shift = None
            if bn is not None:
                scale, shift = bn(pts)  # (P, O)
                weights = weights * scale[None]  # (K, P, O)
            windows = []
            for position in range(ph * pw):
                z = tf.add_n([prepared[:, :, :, position, None, :, k] * weights[k] for k in range(prepared.shape[-1])])
                windows.append(activation(z if shift is None else z + shift))
            return _combine(windows, is_max)

        def points_first(ts, pts):
            # (N, H2, W2, P * O): a TensorFlow reshape, which only relabels the buffer (inside `mix`'s XLA
            # program it changed XLA's loop order and cost 15% of the Feature Hierarchy CNN's surface; as an
            # XLA program of its own it copied the maps: a quarter of the digits CNN's time)
            return tf.reshape(ts[0], (-1, h2, w2, pts.count * o))

        self._prepares.append(prepare)
        mixed = -1000 - len(self._prepares)  # an id of its own for the (N, H2, W2, P, O) maps
        self._add(mix, [-len(self._prepares)], mixed, "points apart", True, layer.name, h2 * w2 * o)
        self._add(points_first, [mixed], end.output, "image", False, layer.name + "/reshape", 2 * h2 * w2 * o)

    def _dense(self, node: _Node, source: int) -> None:
        layer = node.layer
        if self._layout[source] != "vector":
            raise UnsupportedModel(f"dense layer {layer.name} on images")
        end, bn = self._take_batch_norm(node, layer.activation)
        end, activation = self._take_activation(end, layer.activation)
        kernel, bias = _kernel_and_bias(layer, self._offsets)
        activation = activation or keras.activations.linear

        def dense(ts, pts):
            z = tf.matmul(ts[0], kernel.per_point(pts))  # (P, N, F) @ (P, F, U)
            scale, shift = _affine(pts, bias, bn)
            if scale is not None:
                z = z * scale[:, None, :]
            return activation(z if shift is None else z + shift[:, None, :])

        self._add(dense, [source], end.output, "vector", False, layer.name, kernel.shape[0] + layer.units)

    def _conv(self, node: _Node, source: int) -> None:
        layer = node.layer
        _check_conv(layer)
        end, bn = self._take_batch_norm(node, layer.activation)
        end, activation = self._take_activation(end, layer.activation)
        kernel, bias = _kernel_and_bias(layer, self._offsets)
        strides, dilations, padding = tuple(layer.strides), tuple(layer.dilation_rate), layer.padding.upper()
        kh, kw, c, o = kernel.shape

        def conv(ts, pts):
            # (kh, kw, C, P * O): point p's kernel in output channels p * O ... (p + 1) * O; on
            # (N, H, W, P * C) this is one grouped convolution with P groups
            w = kernel.per_point(pts)  # (P, kh, kw, C, O)
            scale, shift = _affine(pts, bias, bn)
            if scale is not None:
                w = w * scale[:, None, None, None, :]
            z = tf.nn.conv2d(ts[0], tf.reshape(tf.transpose(w, (1, 2, 3, 0, 4)), (kh, kw, c, -1)), strides, padding,
                             dilations=dilations)
            if shift is not None:
                z = tf.nn.bias_add(z, tf.reshape(shift, (-1,)))
            if activation is None:
                return z
            if activation is keras.activations.relu:
                return tf.nn.relu(z)  # oneDNN fuses the convolution, its bias and the ReLU
            if activation in _PER_ELEMENT or isinstance(activation, keras.layers.Layer):
                return activation(z)
            return _per_point_channels(z, o, activation)

        floats = int(np.prod(layer.input.shape[1:])) + int(np.prod(layer.output.shape[1:]))
        self._add(conv, [source], end.output, "image", False, layer.name, floats)

    def _global_pool(self, node: _Node, source: int) -> None:
        layer = node.layer
        h, w, channels = (int(s) for s in layer.input.shape[1:])
        is_max = isinstance(layer, keras.layers.GlobalMaxPooling2D)
        small, samples = h * w <= _SMALL_MAP, self.samples

        def global_pool(ts, pts):
            t = ts[0]
            if small:  # a handful of positions: element-wise, which XLA fuses with the pooling before it
                pooled = _combine([t[:, i, j] for i in range(h) for j in range(w)], is_max)
            else:
                pooled = tf.reduce_max(t, axis=(1, 2)) if is_max else tf.reduce_mean(t, axis=(1, 2))
            return tf.transpose(tf.reshape(pooled, (samples, -1, channels)), (1, 0, 2))  # (P, N, C)

        self._add(global_pool, [source], node.output, "vector", small, layer.name, h * w * channels + channels)

    def _compile_segments(self) -> list:
        """Runs of XLA steps, each reading only the one before it (which nothing else reads), form one
        segment: one compiled function, fused as XLA sees fit. Other steps are segments of their own."""
        readers: dict[int, int] = {}
        for step in self._steps:
            for i in step.inputs:
                readers[i] = readers.get(i, 0) + 1
        segments = []
        for step in self._steps:
            if step.xla and segments and segments[-1][0]:
                last = segments[-1][1][-1]
                if step.inputs == [last.output] and readers[last.output] == 1 and last.output != self._output:
                    segments[-1][1].append(step)
                    continue
            segments.append((step.xla, [step]))
        return [(xla, steps, self._jit(steps) if xla else None) for xla, steps in segments]

    @staticmethod
    def _jit(steps: list[_Step]):
        def run(t, origin, directions, coords, flat):
            pts = _Points(origin, directions, coords, flat)
            for step in steps:
                t = step.fn([t], pts)
            return t

        return tf.function(run, jit_compile=True, autograph=False)

    # -- running -------------------------------------------------------------------------------------------

    def bytes_per_point(self) -> int:
        """Rough peak memory one point of a chunk needs: the inputs and output of the largest step, and
        40% more for temporaries (oneDNN's reordered copies, XLA's buffers), plus the point's weights twice
        (its flat vector and the kernels rearranged from it). Measured on the digits CNN (512 samples): a
        512 MB chunk raised the process's peak memory by 470 MB."""
        return int(4 * (self.samples * 1.4 * max(self._floats) + 2 * self._weight_count))

    def prepare(self, origin: tf.Tensor, directions: tf.Tensor) -> list[tf.Tensor]:
        """The first layers' outputs for the origin and each direction, shared by every chunk of a surface."""
        return [prepare(origin, directions) for prepare in self._prepares]

    def outputs(self, prepared: list[tf.Tensor], origin: tf.Tensor, directions: tf.Tensor,
                coords: tf.Tensor) -> tf.Tensor:
        """(P, N, outputs): the model's outputs at each point of the chunk; call inside a tf.function."""
        flat = origin[None, :] + tf.matmul(coords, directions)
        pts = _Points(origin, directions, coords, flat)
        env = {-1 - k: t for k, t in enumerate(prepared)}
        for xla, steps, compiled in self._segments:
            if xla:
                (read,) = steps[0].inputs
                env[steps[-1].output] = compiled(self._value(env, read), origin, directions, coords, flat)
            else:
                for step in steps:
                    env[step.output] = step.fn([self._value(env, i) for i in step.inputs], pts)
        return env[self._resolve(self._output)]

    def _value(self, env: dict, i: int) -> tf.Tensor:
        return env[i] if i in env else self._shared[i]


def _kernel_and_bias(layer, offsets) -> tuple[_Weight, _Weight | None]:
    return _Weight(layer.kernel, offsets), (_Weight(layer.bias, offsets) if layer.use_bias else None)


def _check_conv(layer) -> None:
    if layer.data_format != "channels_last" or getattr(layer, "groups", 1) != 1:
        raise UnsupportedModel(f"conv layer {layer.name} is channels-first or grouped")
    if layer.padding not in ("same", "valid"):
        raise UnsupportedModel(f"conv layer {layer.name} has padding {layer.padding}")


def _affine(pts, bias: _Weight | None, bn) -> tuple:
    """(scale or None, shift or None), each (P, C): the layer's bias, then batch norm if it is folded in."""
    b = bias.per_point(pts) if bias is not None else None
    if bn is None:
        return None, b
    scale, shift = bn(pts)
    return scale, (shift if b is None else b * scale + shift)


def softmax_logits(t: tf.Tensor) -> tf.Tensor | None:
    """The logits of a softmax output (as Keras' cross-entropy finds them), or None."""
    logits = getattr(t, "_keras_logits", None)
    if logits is None and not isinstance(t, tf.__internal__.EagerTensor) and getattr(t, "op", None) is not None \
            and t.op.type == "Softmax":
        logits = t.op.inputs[0]
    return logits


def flatten_points(t: tf.Tensor) -> tf.Tensor:
    """(P, N, C) -> (P * N, C), keeping a softmax's logits where Keras' cross-entropy looks for them."""
    logits = softmax_logits(t)
    if logits is None:
        return tf.reshape(t, (-1, t.shape[-1]))
    return keras.activations.softmax(tf.reshape(logits, (-1, logits.shape[-1])))


_UNROLL_CLASSES = 32  # up to this many classes the loss is unrolled over them for XLA


def cross_entropy_and_accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """(P, 2): each point's mean sparse cross-entropy of softmax(logits) and its accuracy (argmax, the first
    of equal maxima), from (P, N, C) logits and (N,) integer labels; the same numbers as Keras'
    `SparseCategoricalCrossentropy` on a softmax output and `accuracy`, in one fused pass."""
    classes = logits.shape[-1]
    by_class = tf.transpose(logits, (2, 0, 1))  # (C, P, N): one contiguous (P, N) slab per class
    if classes <= _UNROLL_CLASSES:
        return _unrolled_cross_entropy(by_class, labels)
    return _cross_entropy(by_class, labels)


@tf.function(jit_compile=True, autograph=False)
def _unrolled_cross_entropy(by_class, labels):
    # Element-wise over (P, N) slabs, one per class: XLA compiles this into a few vectorised loops, where
    # reductions over a short last axis run several times slower.
    rows = tf.unstack(by_class)
    top, best = rows[0], tf.zeros_like(rows[0], tf.int32)
    for c, row in enumerate(rows[1:], start=1):
        better = row > top
        top, best = tf.where(better, row, top), tf.where(better, c, best)
    total = tf.add_n([tf.exp(row - top) for row in rows])
    picked = tf.add_n([tf.where(tf.equal(labels, c), row, 0.0) for c, row in enumerate(rows)])
    losses = top + tf.math.log(total) - picked  # (P, N)
    hits = tf.cast(tf.equal(best, tf.cast(labels, tf.int32)), tf.float32)
    return tf.stack([tf.reduce_mean(losses, axis=1), tf.reduce_mean(hits, axis=1)], axis=1)


@tf.function(jit_compile=True, autograph=False)
def _cross_entropy(by_class, labels):
    labels = tf.cast(labels, tf.int32)
    top = tf.reduce_max(by_class, axis=0)
    losses = top + tf.math.log(tf.reduce_sum(tf.exp(by_class - top), axis=0))
    is_label = tf.equal(tf.range(by_class.shape[0])[:, None, None], labels)  # (C, 1, N)
    losses -= tf.reduce_sum(tf.where(is_label, by_class, 0.0), axis=0)
    hits = tf.cast(tf.equal(tf.argmax(by_class, axis=0, output_type=tf.int32), labels), tf.float32)
    return tf.stack([tf.reduce_mean(losses, axis=1), tf.reduce_mean(hits, axis=1)], axis=1)
