"""The forward pass, layer by layer, for any Keras model; and safe loading of uploaded models."""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from models.features import layer_outputs

MAX_MODEL_BYTES = 16 * 1024 * 1024


class ModelRejected(ValueError):
    """An uploaded model file that will not be loaded; the message says why, for the user."""


@dataclass(frozen=True)
class LayerStep:
    """One layer's part of the forward pass for one input."""

    name: str  # layer name
    kind: str  # layer class name, e.g. "Dense", "Conv2D", "Activation"
    output: np.ndarray  # this layer's output for the input, batch axis removed
    params: int  # trainable + non-trainable parameters of the layer


def forward_trace(model: keras.Model, x: np.ndarray) -> list[LayerStep]:
    """Every layer's output for one input `x` (no batch axis), input to prediction.

    The outputs come from one sub-model of `model` (`features.layer_outputs`, which also serves Sequential
    models, whose Keras 3 form has no `model.input`), run in inference mode, so they are exactly what the
    model computes internally when it predicts.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    outputs = layer_outputs(model, [layer.name for layer in layers], np.asarray(x, dtype="float32")[None])
    return [LayerStep(layer.name, type(layer).__name__, outputs[layer.name][0], int(layer.count_params()))
            for layer in layers]


def top_predictions(probabilities: np.ndarray, class_names: tuple[str, ...], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes with their probabilities, most probable first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(class_names[i] if i < len(class_names) else f"class {i}", float(probabilities[i])) for i in order]


def load_uploaded_model(data: bytes, filename: str) -> keras.Model:
    """Load a user's `.keras` file with Keras' safe mode on; anything else is refused with a reason.

    Raises:
        ModelRejected: wrong format, too large, corrupt, or containing code (e.g. a Lambda layer).
    """
    if len(data) > MAX_MODEL_BYTES:
        raise ModelRejected(f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_MODEL_BYTES / 1e6:.0f} MB.")
    suffix = Path(filename).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        raise ModelRejected("HDF5 (.h5) models cannot be loaded safely; save the model as .keras "
                            "(model.save('model.keras')) and upload that.")
    if suffix != ".keras":
        raise ModelRejected(f"Only .keras model files are accepted; got {filename!r}.")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.keras"
        path.write_bytes(data)
        if not zipfile.is_zipfile(path):
            raise ModelRejected("This is not a valid .keras file (a .keras file is a zip archive).")
        try:
            model = keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises many types for bad archives; all mean "not loadable"
            reason = "it contains code (a Lambda layer or custom object), which safe mode refuses" if (
                "safe_mode" in str(err) or "Lambda" in str(err)) else f"{type(err).__name__}: {err}"
            raise ModelRejected(f"The model could not be loaded: {reason}.") from err
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise ModelRejected("Only models with a single input can be shown.")
    return model
