"""What the conv layers of a CNN respond to: depth groups, kernels, feature maps and attributions."""

from __future__ import annotations

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


def kernel_norms(model: keras.Model) -> dict[str, np.ndarray]:
    """Per-filter L2 norm of every conv layer's kernel: a summary of kernels too deep to draw."""
    return {layer.name: np.sqrt(np.sum(layer.kernel.numpy() ** 2, axis=(0, 1, 2))) for layer in conv_layers(model)}


def layer_outputs(model: keras.Model, layer_names: list[str], images: np.ndarray) -> dict[str, np.ndarray]:
    """Each named layer's output for a batch of images, by a sub-model of `model`."""
    probe = keras.Model(model.input, [model.get_layer(n).output for n in layer_names])
    outputs = probe(images, training=False)
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
    head = model.layers[-1]
    if getattr(head, "activation", None) is keras.activations.softmax:
        features = head.input
        logits = keras.ops.matmul(features, head.kernel) + head.bias
        return keras.Model(model.input, logits)
    return model


def saliency(model: keras.Model, image: np.ndarray, class_index: int) -> np.ndarray:
    """Vanilla gradient saliency: |d score / d pixel|, max over colour channels; (H, W)."""
    return _input_gradients(logits_model(model), image[None], class_index)[0]


def smoothgrad(model: keras.Model, image: np.ndarray, class_index: int, samples: int = 25, noise: float = 0.15,
               seed: int = 0) -> np.ndarray:
    """SmoothGrad: saliency averaged over noisy copies of the image (noise as a share of its range); (H, W)."""
    rng = np.random.default_rng(seed)
    sigma = noise * float(image.max() - image.min() or 1.0)
    noisy = image[None] + rng.normal(0, sigma, (samples, *image.shape)).astype("float32")
    return _input_gradients(logits_model(model), noisy, class_index).mean(axis=0)


def _input_gradients(scorer: keras.Model, images: np.ndarray, class_index: int) -> np.ndarray:
    x = tf.constant(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(scorer(x, training=False)[:, class_index])
    return np.abs(tape.gradient(score, x).numpy()).max(axis=-1)  # (N, H, W)


def grad_cam(model: keras.Model, image: np.ndarray, class_index: int, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.) on a conv layer (default: the last), upsampled to the image; (H, W) in [0, 1]."""
    layer_name = layer_name or conv_layers(model)[-1].name
    scorer = logits_model(model)
    probe = keras.Model(scorer.input, [model.get_layer(layer_name).output, scorer.output])
    with tf.GradientTape() as tape:
        maps, scores = probe(tf.constant(image[None], tf.float32), training=False)
        score = scores[0, class_index]
    grads = tape.gradient(score, maps)[0]  # (h, w, C)
    weights = tf.reduce_mean(grads, axis=(0, 1))  # one weight per channel: its average gradient
    cam = tf.nn.relu(tf.reduce_sum(maps[0] * weights, axis=-1)).numpy()
    cam = tf.image.resize(cam[..., None], image.shape[:2], method="bilinear").numpy()[..., 0]
    return cam / cam.max() if cam.max() > 0 else cam
