"""What the conv layers of a CNN respond to: depth groups, kernels, feature maps and attributions."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

STAGES = ("early", "middle", "late")


def conv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The Conv2D layers, input to output."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def depth_groups(model: keras.Model) -> dict[str, list[str]]:
    """Conv layer names split into early / middle / late thirds by depth.

    A layer goes to the third its centre falls in; with fewer than three conv layers some stages are
    empty (one layer is "early", two are "early" and "late"). Every layer belongs to exactly one stage.
    """
    names = [layer.name for layer in conv_layers(model)]
    groups = {stage: [] for stage in STAGES}
    for i, name in enumerate(names):
        third = 0 if len(names) == 1 else int(3 * (i + 0.5) / len(names))
        groups[STAGES[third]].append(name)
    return groups


def first_layer_kernels(model: keras.Model) -> np.ndarray:
    """The first conv layer's filters as images, each scaled to [0, 1] on its own range.

    Returns:
        (filters, kh, kw, channels) float32; one colour image per filter when the input is RGB.
    """
    kernel = conv_layers(model)[0].kernel.numpy()  # (kh, kw, in, out)
    filters = np.moveaxis(kernel, -1, 0)
    lo = filters.min(axis=(1, 2, 3), keepdims=True)
    hi = filters.max(axis=(1, 2, 3), keepdims=True)
    return ((filters - lo) / np.maximum(hi - lo, 1e-12)).astype("float32")


def kernel_channels(model: keras.Model) -> np.ndarray:
    """The first conv layer's raw, signed weights, one small map per filter and input channel.

    To draw them, give each filter one symmetric scale, its largest |weight|, shared by its channels, so
    zero is the middle of a diverging colour map and the channels of a filter can be compared.

    Returns:
        (filters, channels, kh, kw) float32; [f, c] is the kernel filter f applies to input channel c.
    """
    kernel = conv_layers(model)[0].kernel.numpy()  # (kh, kw, in, out)
    return np.transpose(kernel, (3, 2, 0, 1)).astype("float32")


def kernel_norms(model: keras.Model) -> dict[str, np.ndarray]:
    """Per-filter L2 norm of every conv layer's kernel: a summary of kernels too deep to draw."""
    return {layer.name: np.sqrt(np.sum(layer.kernel.numpy() ** 2, axis=(0, 1, 2))) for layer in conv_layers(model)}


def rectified_output(model: keras.Model, conv_name: str) -> str:
    """The layer whose output is conv layer `conv_name`'s rectified feature maps.

    That is the conv itself when it applies a non-linear activation (keras.applications models),
    otherwise the first Activation layer after it, past any BatchNormalization (this project's
    builder: conv_i -> [conv_bn_i] -> conv_act_i). Grad-CAM (Selvaraju et al.), probes and
    selectivity measures read these maps, not the pre-activation output.
    """
    layers = model.layers
    index = [layer.name for layer in layers].index(conv_name)
    conv = layers[index]
    if getattr(conv, "activation", None) not in (None, keras.activations.linear):
        return conv_name
    for layer in layers[index + 1 :]:
        if isinstance(layer, keras.layers.Activation | keras.layers.ReLU | keras.layers.LeakyReLU | keras.layers.ELU):
            return layer.name
        if not isinstance(layer, keras.layers.BatchNormalization):
            break
    return conv_name


@dataclass(frozen=True)
class SymbolicGraph:
    """One connected symbolic call of a model: its input and every layer's input and output tensor."""

    input: keras.KerasTensor  # the model input
    outputs: dict[str, keras.KerasTensor]  # layer name -> that layer's output
    inputs: dict[str, keras.KerasTensor]  # layer name -> that layer's input

    def model(self, outputs) -> keras.Model:
        """A model from the input to `outputs` (tensors of this graph)."""
        return keras.Model(self.input, outputs)


def symbolic_graph(model: keras.Model) -> SymbolicGraph:
    """The tensors to build sub-models of `model` from (feature maps, pre-activations, logits).

    A functional model's own graph is used. A Sequential model's layers are called again on a fresh
    input: one loaded from a .keras file was rebuilt layer by layer, so its early layers' `.output` is
    left over from an earlier, disconnected call, and a sub-model mixing those with later tensors
    computes two separate paths (no gradient flows from one to the other).
    """
    if isinstance(model, keras.Sequential):
        x = start = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)
        inputs, outputs = {}, {}
        for layer in model.layers:
            inputs[layer.name] = x
            x = outputs[layer.name] = layer(x)
        return SymbolicGraph(start, outputs, inputs)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return SymbolicGraph(model.inputs[0], {layer.name: layer.output for layer in layers},
                         {layer.name: layer.input for layer in layers})


def layer_outputs(model: keras.Model, layer_names: list[str], images: np.ndarray) -> dict[str, np.ndarray]:
    """Each named layer's output for a batch of images, by a sub-model of `model`."""
    graph = symbolic_graph(model)
    outputs = graph.model([graph.outputs[n] for n in layer_names])(images, training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return {name: np.asarray(out) for name, out in zip(layer_names, outputs, strict=True)}


def most_active_channels(feature_map: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k channels of an (H, W, C) map with the highest mean activation, strongest first."""
    return np.argsort(feature_map.mean(axis=(0, 1)))[::-1][:k]


def logits_model(model: keras.Model) -> keras.Model:
    """A model with the same input whose output is the pre-softmax class scores.

    Class scores are taken before the softmax so that raising one class does not just mean lowering
    the others (the usual choice for saliency, Grad-CAM and class visualisation).
    """
    graph = symbolic_graph(model)
    return graph.model(logits_tensor(model, graph))


def logits_tensor(model: keras.Model, graph: SymbolicGraph) -> keras.KerasTensor:
    """The pre-softmax class scores in `graph`: the last layer's output recomputed without its softmax."""
    head = model.layers[-1]
    if getattr(head, "activation", None) is keras.activations.softmax:
        return keras.ops.matmul(graph.inputs[head.name], head.kernel) + head.bias
    return graph.outputs[head.name]


def saliency(model: keras.Model, image: np.ndarray, class_index: int) -> np.ndarray:
    """Vanilla gradient saliency: |d score / d pixel|, max over colour channels; (H, W)."""
    return _channel_max_abs(_input_gradients(logits_model(model), image[None], class_index)[0])


def smoothgrad(model: keras.Model, image: np.ndarray, class_index: int, samples: int = 25, noise: float = 0.20,
               seed: int = 0, magnitude: bool = True) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): gradients averaged over noisy copies of the image; (H, W).

    As tf-keras-vis' `Saliency(smooth_samples=...)` does by default: each copy's gradient goes
    through |.| (its default gradient_modifier), the copies are averaged with the colour channels
    kept, and only then is the map reduced by the max over channels. (Reducing each copy first, as
    this module once did, lets a different channel win in every copy and blurs the map.)
    `magnitude=False` averages the signed gradients instead (the paper's eq. 3, PAIR-code saliency's
    GetSmoothedMask(magnitude=False)), so a pixel whose gradient flips sign between copies cancels.

    The noise is reproducible: `np.random.default_rng(seed).normal(0, sigma, (samples, *image.shape))`
    with sigma = noise * (max - min) of the image (tf-keras-vis' smooth_noise, default 0.20), or
    sigma = noise for a flat image.
    """
    sigma = noise * float(image.max() - image.min() or 1.0)
    draws = np.random.default_rng(seed).normal(0, sigma, (samples, *image.shape)).astype("float32")  # (S, H, W, C)
    grads = _input_gradients(logits_model(model), image[None] + draws, class_index)
    return _channel_max_abs((np.abs(grads) if magnitude else grads).mean(axis=0))


def _input_gradients(scorer: keras.Model, images: np.ndarray, class_index: int) -> np.ndarray:
    """d score[class_index] / d image for each image; (N, H, W, C), signed."""
    x = tf.constant(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(scorer(x, training=False)[:, class_index])
    return tape.gradient(score, x).numpy()


def _channel_max_abs(grads: np.ndarray) -> np.ndarray:
    return np.abs(grads).max(axis=-1)


def grad_cam_maps(model: keras.Model, images: np.ndarray, class_indices: int | np.ndarray,
                  layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) at the resolution of the layer's feature maps; (N, h, w) in [0, 1].

    The maps are the rectified output of a conv layer (default: the last): `layer_name` may name the
    conv or the layer that rectifies it. Each channel is weighted by the mean gradient of the class
    score over the map, and the weighted sum is rectified and divided by its maximum.

    Args:
        images: (N, H, W, C) model inputs.
        class_indices: the class to explain for each image, (N,) or one int for all.
    """
    graph = symbolic_graph(model)
    maps_name = _rectified_name(model, layer_name or conv_layers(model)[-1].name)
    probe = graph.model([graph.outputs[maps_name], logits_tensor(model, graph)])
    classes = np.broadcast_to(np.asarray(class_indices, "int32"), (len(images),))
    with tf.GradientTape() as tape:
        maps, scores = probe(tf.constant(images, tf.float32), training=False)  # (N, h, w, C), (N, K)
        chosen = tf.reduce_sum(scores * tf.one_hot(classes, scores.shape[-1]), axis=-1)  # (N,)
    weights = tf.reduce_mean(tape.gradient(chosen, maps), axis=(1, 2))  # (N, C): each channel's mean gradient
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", maps, weights)).numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0).astype("float32")


def grad_cam(model: keras.Model, image: np.ndarray, class_index: int, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM of one image, upsampled bilinearly to the image size; (H, W) in [0, 1]. See `grad_cam_maps`."""
    cam = grad_cam_maps(model, image[None], class_index, layer_name)[0]
    cam = tf.image.resize(cam[..., None], image.shape[:2], method="bilinear").numpy()[..., 0]
    return cam / cam.max() if cam.max() > 0 else cam


def _rectified_name(model: keras.Model, layer_name: str) -> str:
    if layer_name not in [layer.name for layer in model.layers]:
        convs = ", ".join(layer.name for layer in conv_layers(model))
        raise ValueError(f"Grad-CAM needs a conv layer of the model; got {layer_name!r}, choose one of {convs}.")
    if isinstance(model.get_layer(layer_name), keras.layers.Conv2D):
        return rectified_output(model, layer_name)
    return layer_name
