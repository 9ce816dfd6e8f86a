"""Activation maximisation: the input that excites a filter (or a class) most, by gradient ascent.

Follows Olah et al., "Feature Visualization" (Distill, 2017) and their lucid library. Plain pixel
ascent finds high-frequency noise that the network happens to respond to; three things steer it
towards images a person can read:
- a parameterisation in which natural images are easy to reach: a Fourier spectrum scaled by 1/f
  (natural images have most energy at low frequencies), and decorrelated colour (a fixed square root
  of the colour correlation matrix, so one parameter moves brightness and another a hue);
- transformation robustness: each step the model sees each image randomly shifted, zoomed and
  rotated, so only patterns that survive small moves are rewarded;
- plain steps along the gradient, normalised per image. lucid uses Adam, which gives every parameter a
  full-size step: on this colour-blind shapes network the colour axes, whose gradients are tiny,
  random-walked into rainbow noise. With plain steps the two scalings act as preconditioners: each
  step follows the natural-image spectrum and colour covariance, and colour moves only when it pays.
All requested filters of a layer are optimised together as one batch (image i for filter i), which
costs about as much as a single image on small inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from models.features import logits_model, rectified_output, symbolic_graph

# Square root of the colour correlation of natural (ImageNet) images, from its SVD: lucid's
# `color_correlation_svd_sqrt`. Column 0 is brightness, 1 and 2 are colour-opponent axes.
COLOR_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype="float32")
# Scaled so that its largest column has unit norm: a unit step on any axis moves RGB by at most 1.
COLOR_MIXING = COLOR_CORRELATION_SQRT / np.linalg.norm(COLOR_CORRELATION_SQRT, axis=0).max()


@dataclass(frozen=True)
class AscentConfig:
    """Settings of one activation-maximisation run."""

    # 256 steps of 0.2: about 1.5 s for 16 images of 32x32 on two CPU cores. Fewer or smaller steps leave
    # some first-layer edge filters (high frequencies climb slowest under 1/f) below what pixel noise reaches.
    steps: int = 256  # gradient-ascent steps
    learning_rate: float = 0.2  # step size on the gradient normalised per image (RMS 1)
    jitter: int = 2  # max pixels of random shift each step (0 = off)
    scale: float = 0.1  # max relative random zoom in or out each step (0 = off)
    rotate: float = 10.0  # max degrees of random rotation each step (0 = off)
    tv_weight: float = 0.0  # total-variation penalty: smoothness (the 1/f spectrum already gives most of it)
    l2_weight: float = 0.0  # L2 penalty on the image's distance from grey: no runaway contrast
    fourier: bool = True  # optimise a 1/f-scaled Fourier spectrum; False: raw pixels
    decorrelate: bool = True  # optimise in decorrelated colour (RGB inputs only)
    seed: int = 0  # starting noise and the random transformations


def filter_objective(model: keras.Model, layer_name: str, filters: list[int], preprocess=None):
    """Score of image i = mean activation of filter filters[i] of `layer_name`.

    `preprocess` maps images in [0, 1] to the model's own input scaling (tensor in, tensor out), for
    models trained on other inputs (the ImageNet bases); None feeds the images as they are.

    A conv layer is read after its rectifier (`rectified_output`): the mean of a conv's linear output
    only sees the image's mean colour, so a first-layer filter would be "maximised" by a flat colour.
    A separate ReLU is applied here with a redirected gradient (see `_redirected_relu`).
    """
    layer = model.get_layer(layer_name)
    if isinstance(layer, keras.layers.Conv2D):
        layer = model.get_layer(rectified_output(model, layer_name))
    relu = _is_relu(layer)
    graph = symbolic_graph(model)
    probe = graph.model(graph.inputs[layer.name] if relu else graph.outputs[layer.name])
    pick = tf.one_hot(filters, probe.output.shape[-1])  # (F, C): row i selects filter filters[i]

    def score(images):
        maps = probe(images if preprocess is None else preprocess(images), training=False)
        means = tf.reduce_mean(_redirected_relu(maps) if relu else maps, axis=(1, 2))  # (F, C)
        return tf.reduce_sum(means * pick, axis=-1)

    return score


def _is_relu(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.relu


@tf.custom_gradient
def _redirected_relu(x):
    """ReLU whose gradient, for an image where no unit is active, still points the way up (lucid's trick).

    A plain ReLU passes no gradient to negative inputs, so a filter that is off everywhere on the
    starting image would never move. For such an image the upstream gradient is passed through
    wherever it would raise the input (gradient ascent on the score); images with any active unit
    get the plain ReLU gradient.
    """

    def grad(upstream):
        plain = tf.where(x > 0, upstream, tf.zeros_like(upstream))
        redirected = tf.where((x < 0) & (upstream < 0), tf.zeros_like(upstream), upstream)
        flows = tf.reduce_any(tf.not_equal(plain, 0), axis=list(range(1, x.shape.rank)), keepdims=True)
        return tf.where(flows, plain, redirected)

    return tf.nn.relu(x), grad


def class_objective(model: keras.Model, classes: list[int]):
    """Score of image i = pre-softmax score of class classes[i]."""
    scorer = logits_model(model)
    pick = tf.one_hot(classes, scorer.output.shape[-1])  # (K, classes): row i selects class classes[i]

    def score(images):
        return tf.reduce_sum(scorer(images, training=False) * pick, axis=-1)

    return score


def decorrelated_to_rgb(colours):
    """Map colours (..., 3) from the decorrelated space to RGB offsets: each pixel times COLOR_MIXING^T."""
    return colours @ COLOR_MIXING.T


def rgb_to_decorrelated(colours):
    """Inverse of `decorrelated_to_rgb`."""
    return colours @ np.linalg.inv(COLOR_MIXING).T


def _fourier_scale(h: int, w: int) -> np.ndarray:
    """1/f per rfft2d coefficient, times sqrt(h w) so that the transform is roughly unitary; (h, w // 2 + 1)."""
    freqs = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.rfftfreq(w)[None, :] ** 2)
    return (np.sqrt(h * w) / np.maximum(freqs, 1.0 / max(h, w))).astype("float32")


def _to_images(params, config: AscentConfig, shape):
    """Parameters to images in [0, 1]: spectrum to pixels, decorrelated colour to RGB, then a sigmoid."""
    h, w, c = shape
    if config.fourier:
        spectrum = tf.complex(params[..., 0], params[..., 1]) * _fourier_scale(h, w)  # (N, C, h, w // 2 + 1)
        # lucid's /4: keeps the starting image near grey, where the sigmoid is steepest.
        pixels = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[h, w]), [0, 2, 3, 1]) / 4.0  # (N, h, w, C)
    else:
        pixels = params
    if config.decorrelate and c == 3:
        pixels = decorrelated_to_rgb(pixels)
    return tf.sigmoid(pixels)


def _initial_params(n: int, shape, fourier: bool, rng: np.random.Generator) -> np.ndarray:
    h, w, c = shape
    size = (n, c, h, w // 2 + 1, 2) if fourier else (n, h, w, c)  # Fourier: real and imaginary parts
    return rng.normal(0, 0.01, size).astype("float32")


def _random_transforms(rng: np.random.Generator, n: int, shape, config: AscentConfig) -> np.ndarray:
    """One random shift, zoom and rotation about the centre per image, as projective transforms; (n, 8).

    Each row maps an output pixel (x, y) to the input point it samples, as
    `keras.ops.image.affine_transform` expects: [a0, a1, a2, b0, b1, b2, 0, 0].
    """
    h, w, _ = shape
    angle = np.deg2rad(rng.uniform(-config.rotate, config.rotate, n))
    zoom = rng.uniform(1 - config.scale, 1 + config.scale, n)
    shift = rng.integers(-config.jitter, config.jitter + 1, (n, 2))
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a2 = cx + shift[:, 0] - cos * cx + sin * cy
    b2 = cy + shift[:, 1] - sin * cx - cos * cy
    zeros = np.zeros(n)
    return np.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1).astype("float32")


def _penalty(images, config: AscentConfig):
    tv = tf.reduce_mean(tf.abs(images[:, 1:] - images[:, :-1]), axis=(1, 2, 3)) + tf.reduce_mean(
        tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=(1, 2, 3))
    l2 = tf.reduce_mean(tf.square(images - 0.5), axis=(1, 2, 3))
    return config.tv_weight * tv + config.l2_weight * l2


def maximise(score, input_shape: tuple[int, int, int], n: int, config: AscentConfig = AscentConfig()) -> np.ndarray:
    """Gradient ascent on `score` for a batch of n images at once.

    Args:
        score: maps images (n, H, W, C) to one score per image (n,).
        input_shape: (H, W, C) of the model input.
        n: how many images (one per filter or class).
        config: parameterisation, steps and regularisers.

    Returns:
        (n, H, W, C) float32 images in [0, 1].
    """
    rng = np.random.default_rng(config.seed)
    params = tf.Variable(_initial_params(n, input_shape, config.fourier, rng))
    transforms = np.stack([_random_transforms(rng, n, input_shape, config) for _ in range(config.steps)])

    @tf.function
    def step(transform):
        with tf.GradientTape() as tape:
            images = _to_images(params, config, input_shape)
            # Reflecting at the border, not padding with a colour, so a shift does not paint a frame.
            moved = keras.ops.image.affine_transform(images, transform, fill_mode="reflect")
            objective = tf.reduce_sum(score(moved) - _penalty(images, config))
        grads = tape.gradient(objective, params)
        # Normalised per image so every image climbs at the same pace whatever its gradient scale, while
        # directions the score ignores (colour, for a colour-blind filter) keep their small share.
        norm = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=list(range(1, grads.shape.rank)), keepdims=True))
        params.assign_add(config.learning_rate * grads / (norm + 1e-8))

    for transform in transforms:
        step(tf.constant(transform))
    return _to_images(params, config, input_shape).numpy()


def maximise_filters(model: keras.Model, layer_name: str, filters: list[int],
                     config: AscentConfig = AscentConfig(), preprocess=None) -> np.ndarray:
    """Images in [0, 1] that maximise each of `filters` of `layer_name`, optimised together; (F, H, W, C).

    `preprocess`: as in `filter_objective`, applied to the images before the model sees them.
    """
    return maximise(filter_objective(model, layer_name, filters, preprocess), tuple(model.inputs[0].shape[1:]),
                    len(filters), config)


def maximise_classes(model: keras.Model, classes: list[int], config: AscentConfig = AscentConfig()) -> np.ndarray:
    """What the network thinks each class looks like: images maximising each class score; (K, H, W, C)."""
    return maximise(class_objective(model, classes), tuple(model.inputs[0].shape[1:]), len(classes), config)


def mean_filter_activation(model: keras.Model, layer_name: str, filters: list[int], images: np.ndarray) -> np.ndarray:
    """Mean activation of filter filters[i] on images[i]; (F,)."""
    return filter_objective(model, layer_name, filters)(tf.constant(images, tf.float32)).numpy()
