"""Activation maximisation: the input that excites a filter (or a class) most, by gradient ascent.

All requested filters of a layer are optimised together as one batch (image i for filter i), which
costs about as much as a single image on small inputs. Regularisers keep the images natural: random
jitter and rescaling each step, a total-variation and an L2 penalty, and optionally a Fourier (decorrelated)
parameterisation that favours low frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from models.features import logits_model


@dataclass(frozen=True)
class AscentConfig:
    """Settings of one activation-maximisation run."""

    steps: int = 64  # gradient-ascent steps
    learning_rate: float = 0.1  # step size on the normalised gradient
    jitter: int = 2  # max pixels of random shift each step (0 = off)
    scale: float = 0.1  # max relative random zoom in or out each step (0 = off)
    tv_weight: float = 0.05  # total-variation penalty: smoothness
    l2_weight: float = 0.01  # L2 penalty on the image: no runaway contrast
    fourier: bool = False  # optimise in a decorrelated Fourier basis instead of raw pixels
    seed: int = 0  # starting noise


def filter_objective(model: keras.Model, layer_name: str, filters: list[int]):
    """Score of image i = mean activation of filter filters[i] of `layer_name`."""
    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    pick = tf.one_hot(filters, probe.output.shape[-1])  # (F, C): row i selects filter filters[i]

    def score(images):
        means = tf.reduce_mean(probe(images, training=False), axis=(1, 2))  # (F, C)
        return tf.reduce_sum(means * pick, axis=-1)

    return score


def class_objective(model: keras.Model, classes: list[int]):
    """Score of image i = pre-softmax score of class classes[i]."""
    scorer = logits_model(model)
    pick = tf.one_hot(classes, scorer.output.shape[-1])  # (K, classes): row i selects class classes[i]

    def score(images):
        return tf.reduce_sum(scorer(images, training=False) * pick, axis=-1)

    return score


def _to_images(params, fourier: bool, shape):
    if not fourier:
        return tf.sigmoid(params)
    h, w, _ = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / max(h, w))  # 1/f: natural-image spectrum
    spectrum = tf.complex(params[..., 0], params[..., 1]) * tf.cast(scale[None, None], tf.complex64)
    pixels = tf.signal.irfft2d(spectrum, fft_length=[h, w])  # (N, C, h, w)
    return tf.sigmoid(tf.transpose(pixels, [0, 2, 3, 1]) * 4.0)


def _initial_params(n: int, shape, fourier: bool, rng: np.random.Generator):
    h, w, c = shape
    if fourier:
        return rng.normal(0, 0.01, (n, c, h, w // 2 + 1, 2)).astype("float32")
    return rng.normal(0, 0.1, (n, h, w, c)).astype("float32")


def _zoom(images, factor, shape):
    """Rescale by `factor` about the centre, cropping or padding back to the input size."""
    h, w, _ = shape
    size = tf.cast(tf.round(tf.constant([h, w], tf.float32) * factor), tf.int32)
    return tf.image.resize_with_crop_or_pad(tf.image.resize(images, size), h, w)


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
        config: steps and regularisers.

    Returns:
        (n, H, W, C) float32 images in [0, 1].
    """
    rng = np.random.default_rng(config.seed)
    params = tf.Variable(_initial_params(n, input_shape, config.fourier, rng))
    shifts = rng.integers(-config.jitter, config.jitter + 1, (config.steps, 2)) if config.jitter else np.zeros(
        (config.steps, 2), dtype=int)
    zooms = rng.uniform(1 - config.scale, 1 + config.scale, config.steps).astype("float32")

    @tf.function
    def step(shift, zoom):
        with tf.GradientTape() as tape:
            images = _to_images(params, config.fourier, input_shape)
            # Features must survive small shifts and zooms, which suppresses pixel-level noise patterns.
            moved = _zoom(tf.roll(images, shift, axis=[1, 2]), zoom, input_shape)
            objective = tf.reduce_sum(score(moved) - _penalty(images, config))
        grads = tape.gradient(objective, params)
        # Normalise per image so every filter climbs at the same pace whatever its gradient scale.
        norm = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=list(range(1, grads.shape.rank)), keepdims=True))
        params.assign_add(config.learning_rate * grads / (norm + 1e-8))

    for shift, zoom in zip(shifts, zooms, strict=True):
        step(tf.constant(shift, tf.int32), tf.constant(zoom))
    return _to_images(params, config.fourier, input_shape).numpy()


def maximise_filters(model: keras.Model, layer_name: str, filters: list[int],
                     config: AscentConfig = AscentConfig()) -> np.ndarray:
    """Images that maximise each of `filters` of `layer_name`, optimised together; (F, H, W, C)."""
    return maximise(filter_objective(model, layer_name, filters), tuple(model.input.shape[1:]), len(filters), config)


def maximise_classes(model: keras.Model, classes: list[int], config: AscentConfig = AscentConfig()) -> np.ndarray:
    """What the network thinks each class looks like: images maximising each class score; (K, H, W, C)."""
    return maximise(class_objective(model, classes), tuple(model.input.shape[1:]), len(classes), config)


def mean_filter_activation(model: keras.Model, layer_name: str, filters: list[int], images: np.ndarray) -> np.ndarray:
    """Mean activation of filter filters[i] on images[i]; (F,)."""
    return filter_objective(model, layer_name, filters)(tf.constant(images, tf.float32)).numpy()
