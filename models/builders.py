"""Keras models built from an ExperimentConfig: MLPs, small CNNs and small residual CNNs with predictable
layer names.

A model of 2D points starts with a `PlaneFeatures` layer ("features") that expands each point into
the config's input features (just x1, x2 by default). Each hidden layer is a linear layer ("dense_1",
"conv_1") followed by its own Activation layer ("act_1", "conv_act_1"), so later pages can show the
pre-activation and the activation separately; dense layer i uses `config.hidden_activations()[i - 1]`.
With `batch_norm`, a BatchNormalization layer ("conv_bn_1") sits between a conv and its activation.
A "resnet" is the same conv stack with identity skip connections: a stem conv ("conv_1"), then blocks of
two convs whose output is added to the block's input ("skip_1" after "conv_act_3"), so with zero conv
weights a block is the identity. The output is a softmax over the classes, or for regression
(`n_classes == 0`) one linear unit.

Every random draw of a model comes from seeds of its own (one per layer, derived from `config.seed`),
never from Keras' process-wide generator: in the dashboard's server several sessions build and train
at the same time in threads, and their draws would otherwise interleave.
"""

from __future__ import annotations

import keras
import numpy as np

from models.config import DEFAULT_FEATURES, ExperimentConfig
from models.plane_features import PlaneFeatures

_SEED_KINDS = ("conv", "dense", "output", "dropout")  # layers that draw random numbers


def build_model(config: ExperimentConfig, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """A freshly initialised model; its initial weights and dropout masks depend only on `config.seed`.

    Args:
        config: the experiment; its architecture, layer sizes, activation, regularisation are used.
        input_shape: one sample's shape, e.g. (2,) or (32, 32, 3).
        n_classes: size of the softmax output; 0 for regression (one linear output unit).

    Raises:
        ValueError: a CNN was asked for on inputs that are not images, or input features on inputs that
            are not 2D points.
    """
    regularizer = keras.regularizers.L1L2(l1=config.l1, l2=config.l2) if (config.l1 or config.l2) else None
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    if not config.is_image and tuple(input_shape) == (2,):
        x = PlaneFeatures(config.input_features, name="features")(x)
    elif config.input_features != DEFAULT_FEATURES:
        raise ValueError(f"Input features need 2D points (input shape (2,)); got input shape {input_shape}.")
    if config.architecture in ("cnn", "resnet"):
        if len(input_shape) != 3:
            raise ValueError(f"A CNN needs image inputs (H, W, C); got input shape {input_shape}.")
        x = _residual_blocks(x, config, regularizer) if config.architecture == "resnet" else \
            _conv_blocks(x, config, regularizer)
    elif len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for i, (units, activation) in enumerate(zip(config.hidden_layers, config.hidden_activations(), strict=True),
                                            start=1):
        x = keras.layers.Dense(units, kernel_regularizer=regularizer,
                               kernel_initializer=_initializer(config, "dense", i), name=f"dense_{i}")(x)
        x = keras.layers.Activation(activation, name=f"act_{i}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, seed=layer_seed(config.seed, "dropout", i), name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(n_classes or 1, activation="softmax" if n_classes else None,
                                 kernel_regularizer=regularizer, kernel_initializer=_initializer(config, "output"),
                                 name="output")(x)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_{config.activation}")


def _conv_blocks(x, config: ExperimentConfig, regularizer):
    smallest = _smallest_side(x)
    for i in range(1, len(config.conv_filters) + 1):
        x = _conv_unit(x, config, regularizer, i)
        x = _pool_if_large(x, smallest, i)
    # Global average pooling keeps each late filter's evidence spatial until the end (Grad-CAM).
    return keras.layers.GlobalAveragePooling2D(name="gap")(x)


def _residual_blocks(x, config: ExperimentConfig, regularizer):
    """The stem conv, then blocks x + F(x) with F = two conv units; pooled after the stem and each block by
    the same rule as the plain CNN, so every skip joins maps of one size and one width."""
    smallest = _smallest_side(x)
    x = _pool_if_large(_conv_unit(x, config, regularizer, 1), smallest, 1)
    for block, i in enumerate(range(2, len(config.conv_filters) + 1, 2), start=1):
        branch = _conv_unit(_conv_unit(x, config, regularizer, i), config, regularizer, i + 1)
        x = keras.layers.Add(name=f"skip_{block}")([x, branch])
        x = _pool_if_large(x, smallest, i + 1)
    return keras.layers.GlobalAveragePooling2D(name="gap")(x)


def _smallest_side(x) -> int:
    # Pool until the maps are a quarter of the input's side (8x8 on 32x32 shapes, 2x2 on 8x8 digits),
    # then keep that resolution: the last conv layers still have a grid of positions for Grad-CAM to
    # localise an object on (Grad-CAM mass on the shape: 1.85-1.97x its area share with a 4x4 grid,
    # 1.90-2.08x with 8x8), and their units already see most of the image.
    return max(2, min(x.shape[1], x.shape[2]) // 4)


def _conv_unit(x, config: ExperimentConfig, regularizer, i: int):
    """conv_i, its batch norm (optional) and its activation."""
    x = keras.layers.Conv2D(
        config.conv_filters[i - 1], config.kernel_size, padding="same", kernel_regularizer=regularizer,
        kernel_initializer=_initializer(config, "conv", i),
        use_bias=not config.batch_norm, name=f"conv_{i}",  # a bias before batch norm is cancelled by it
    )(x)
    if config.batch_norm:
        # momentum 0.9, not Keras' 0.99: runs here are a few hundred steps, and the moving
        # statistics used at test time must have caught up with the weights by the end.
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"conv_bn_{i}")(x)
    return keras.layers.Activation(config.activation, name=f"conv_act_{i}")(x)


def _pool_if_large(x, smallest: int, i: int):
    if min(x.shape[1], x.shape[2]) // 2 >= smallest:
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    return x


def layer_seed(seed: int, kind: str, index: int = 0) -> int:
    """The seed of one random layer, hashed from the run's seed and the layer's kind and index.

    Every layer draws differently, a layer's draws do not depend on which other layers the config has
    (dense_2 starts the same with or without dropout), and the result is below 2**31, which every
    Keras backend accepts as a seed.
    """
    return int(np.random.SeedSequence((seed, _SEED_KINDS.index(kind), index)).generate_state(1)[0] >> 1)


def _initializer(config: ExperimentConfig, kind: str, index: int = 0) -> keras.initializers.Initializer:
    # Keras' default kernel initialiser, with a seed of its own instead of the process-wide one.
    return keras.initializers.GlorotUniform(seed=layer_seed(config.seed, kind, index))


def weight_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that hold trainable weights, input to output (dense, conv and output layers)."""
    return [layer for layer in model.layers if layer.trainable_weights]


def hidden_activation_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The Activation layers of the hidden dense and conv layers, input to output."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
