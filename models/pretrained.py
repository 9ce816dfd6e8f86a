"""ImageNet-trained `keras.applications` models (conv base only), cache first and offline-safe.

Weights already in the Keras cache (`$KERAS_HOME/models`, the file name Keras itself downloads to)
are loaded without the network; otherwise Keras downloads them, and when that fails the user is told
how to get them instead of seeing a URL error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np


class PretrainedUnavailable(RuntimeError):
    """The ImageNet weights are not cached and could not be downloaded."""


@dataclass(frozen=True)
class PretrainedSpec:
    """One keras.applications model the dashboard offers."""

    builder: str  # class name in keras.applications
    weights_file: str  # the name Keras caches the no-top ImageNet weights under
    preprocess: str  # module in keras.applications holding preprocess_input
    size: int = 224  # input side in pixels


PRETRAINED = {
    "VGG16": PretrainedSpec("VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg16"),
    "MobileNetV2": PretrainedSpec("MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                                  "mobilenet_v2"),
}


def weights_path(name: str, cache_dir: Path | None = None) -> Path:
    """Where Keras keeps the weights: `$KERAS_HOME/models/<file>`, by default under `~/.keras`."""
    root = Path(cache_dir) if cache_dir is not None else Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return root / "models" / PRETRAINED[name].weights_file


def load_pretrained(name: str, cache_dir: Path | None = None) -> keras.Model:
    """The ImageNet conv base of `name`.

    Raises:
        PretrainedUnavailable: not cached and the download failed (offline).
    """
    spec = PRETRAINED[name]
    builder = getattr(keras.applications, spec.builder)
    path = weights_path(name, cache_dir)
    weights = str(path) if path.exists() else "imagenet"
    try:
        return builder(weights=weights, include_top=False, input_shape=(spec.size, spec.size, 3))
    except Exception as err:  # Keras raises a bare Exception for URL failures
        if weights != "imagenet":
            raise
        raise PretrainedUnavailable(
            f"The ImageNet weights of {name} are not in the Keras cache ({path}) and could not be downloaded "
            f"({type(err).__name__}). Run the dashboard once with internet access, or copy "
            f"{spec.weights_file} into {path.parent}."
        ) from err


def preprocess(name: str, pixels: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (N, H, W, 3) to the model's own input scaling."""
    module = getattr(keras.applications, PRETRAINED[name].preprocess)
    return module.preprocess_input(np.asarray(pixels, dtype="float32") * 255.0)


def preprocess_tensor(name: str, pixels):
    """`preprocess` for tensors inside a traced function (activation maximisation differentiates through it)."""
    module = getattr(keras.applications, PRETRAINED[name].preprocess)
    return module.preprocess_input(pixels * 255.0)
