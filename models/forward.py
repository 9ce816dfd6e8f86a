"""The forward pass, layer by layer, for any Keras model; and safe loading of uploaded models."""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from models.features import layer_outputs
from models.plane_features import PlaneFeatures  # noqa: F401  registers the layer: Playground models load in safe mode

MAX_MODEL_BYTES = 16 * 1024 * 1024
# Limits on what a .keras archive may unpack to, checked from its zip directory before anything is decompressed.
# Python's zipfile never yields more than a member's declared size, so the directory's numbers bound the memory.
MAX_UNPACKED_BYTES = 64 * 10**6  # all members together: ~4x the upload limit; real .keras files are stored 1:1
MAX_CONFIG_BYTES = 10**6  # each .json member (config, metadata); configs saved here take <1 kB per layer
MAX_RATIO = 100  # Keras stores members uncompressed (1:1); deflated zeros reach ~1000:1
RATIO_FLOOR_BYTES = 10**6  # small members (JSON, an all-zero bias) may compress well and cannot hurt
MAX_MEMBERS = 32  # Keras writes 3 members plus one file per asset (e.g. a StringLookup's vocabulary)
KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")


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


def _is_keras_member(name: str) -> bool:
    """Whether `name` is a member Keras 3 writes: its three files, or a relative path under `assets/`."""
    parts = name.rstrip("/").split("/")
    return name in KERAS_MEMBERS or (
        len(parts) > 1 and parts[0] == "assets" and "\\" not in name and ":" not in name
        and all(part not in ("", ".", "..") for part in parts))


def check_archive(archive: zipfile.ZipFile) -> None:
    """Refuse a zip bomb or a foreign archive from its directory alone, before any member is decompressed.

    Raises:
        ModelRejected: too many members, an unexpected or duplicated member, an oversized config.json, more than
            MAX_UNPACKED_BYTES in all, or a member over RATIO_FLOOR_BYTES compressed more than MAX_RATIO:1.
    """
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ModelRejected(f"The file holds {len(members)} archive members; a .keras file holds "
                            f"{len(KERAS_MEMBERS)} plus its assets, and the limit is {MAX_MEMBERS}.")
    names = [m.filename for m in members]
    allowed = ", ".join(KERAS_MEMBERS) + " and files under assets/"
    for name in names:
        if not _is_keras_member(name):
            raise ModelRejected(f"The file holds an unexpected member {name!r}; a .keras file holds only {allowed}.")
        if names.count(name) > 1:
            raise ModelRejected(f"The file holds {name!r} {names.count(name)} times; a .keras file holds it once.")
    for m in members:
        if m.filename.endswith(".json") and m.file_size > MAX_CONFIG_BYTES:
            raise ModelRejected(f"{m.filename} unpacks to {m.file_size / 1e6:.1f} MB; the limit is "
                                f"{MAX_CONFIG_BYTES / 1e6:.0f} MB.")
    total = sum(m.file_size for m in members)
    if total > MAX_UNPACKED_BYTES:
        raise ModelRejected(f"The model unpacks to {total / 1e6:.0f} MB; the limit is "
                            f"{MAX_UNPACKED_BYTES / 1e6:.0f} MB.")
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise ModelRejected(f"{m.filename} is compressed {ratio:.0f}:1 ({m.file_size / 1e6:.1f} MB stored in "
                                f"{m.compress_size / 1e3:.0f} kB); more than {MAX_RATIO}:1 is refused as a zip bomb.")


def load_uploaded_model(data: bytes, filename: str) -> keras.Model:
    """Load a user's `.keras` file with Keras' safe mode on; anything else is refused with a reason.

    Raises:
        ModelRejected: wrong format, too large (packed or unpacked, see `check_archive`), corrupt, or containing
            code (e.g. a Lambda layer).
    """
    if len(data) > MAX_MODEL_BYTES:
        raise ModelRejected(f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_MODEL_BYTES / 1e6:.0f} MB.")
    suffix = Path(filename).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        raise ModelRejected("HDF5 (.h5) models cannot be loaded safely; save the model as .keras "
                            "(model.save('model.keras')) and upload that.")
    if suffix != ".keras":
        raise ModelRejected(f"Only .keras model files are accepted; got {filename!r}.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_archive(archive)
    except zipfile.BadZipFile as err:
        raise ModelRejected("This is not a valid .keras file (a .keras file is a zip archive).") from err
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.keras"
        path.write_bytes(data)
        try:
            model = keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises many types for bad archives; all mean "not loadable"
            reason = "it contains code (a Lambda layer or custom object), which safe mode refuses" if (
                "safe_mode" in str(err) or "Lambda" in str(err)) else f"{type(err).__name__}: {err}"
            raise ModelRejected(f"The model could not be loaded: {reason}.") from err
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise ModelRejected("Only models with a single input can be shown.")
    return model
