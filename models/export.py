"""Take a run away: the trained model file, the training curves as CSV, and a standalone script.

The script is the one a reader can study and run without this dashboard: plain numpy and Keras, the
run's own train/test split embedded in it, and the same features, layers, optimiser, schedule, loss and
regularisation. Its weights start from other random draws than the dashboard's (Keras' global seed
instead of the builders' per-layer seeds), so it reaches the page's accuracy closely, not to the digit.

Playground runs (2D points) always fit in a script. Image runs (an MLP or a CNN) do when their split,
stored without changing a single float and compressed, stays under `MAX_EMBEDDED_BYTES`: digits and
"shapes" runs of the pages' sizes do, full MNIST or CIFAR-10 do not (their .keras file is the way to take
them away).
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from models.builders import build_model
from models.config import ExperimentConfig
from models.datasets import Dataset
from models.engine import History
from models.registry import OPTIMIZERS

# The most an image run's embedded train/test split may take: the compressed arrays, before base64 (which
# adds a third), so a script of at most about 11 MB. Measured: all 1797 digits take 0.05 MB (uint8 counts),
# 3000 clean "shapes" 1.6 MB, 500 "shapes" with noise 0.1 5.2 MB (float32; noisy pixels barely compress);
# full MNIST would take about what Keras' own mnist.npz does, 11 MB.
MAX_EMBEDDED_BYTES = 8_000_000

# Images whose every pixel is exactly k / d (k = 0..255) for one of these d are stored as the uint8 counts k:
# keras.datasets images are bytes / 255, scikit-learn's digits are counts / 16.
PIXEL_DENOMINATORS = (255, 16)

# Pixels checked per slice when looking for a lossless storage, so no full-size temporary copy is made.
_CHECK_CHUNK = 1 << 22

# How each input feature is computed from the raw coordinates; the order is the canonical one.
_FEATURE_CODE = {
    "x1": "x1",
    "x2": "x2",
    "x1^2": "x1**2",
    "x2^2": "x2**2",
    "x1*x2": "x1 * x2",
    "sin(x1)": "np.sin(x1)",
    "sin(x2)": "np.sin(x2)",
}


def model_bytes(model: keras.Model) -> bytes:
    """The content of `model` saved as a .keras file (architecture, weights and optimiser state)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def history_csv(history: History) -> str:
    """One row per epoch: losses, accuracies (empty where there are none, as for regression) and the penalty."""
    table = pd.DataFrame({
        "epoch": np.arange(1, len(history) + 1),
        "train_loss": history.train_loss,
        "test_loss": history.test_loss,
        "train_accuracy": history.train_acc,
        "test_accuracy": history.test_acc,
        "penalty": history.penalty,
    })
    return table.to_csv(index=False, na_rep="")


def standalone_script(config: ExperimentConfig, dataset: Dataset) -> str:
    """Python source that retrains `config` on `dataset` with plain Keras and prints the test score.

    The last line it prints is `test_accuracy=0.9760` for classification or `test_mse=0.0123` for regression;
    a script for images first prints the model's parameter count, `params=1234`.

    Raises:
        ValueError: the inputs are neither 2D points nor images, the images are too many to embed (more
            than MAX_EMBEDDED_BYTES once compressed), or the network is a residual CNN (not a layer stack).
    """
    if dataset.is_image:
        return _image_script(config, dataset)
    if dataset.x_train.ndim != 2 or dataset.x_train.shape[1] != 2:
        raise ValueError(
            f"A standalone script covers 2D points and images; {config.dataset!r} has inputs of shape "
            f"{dataset.x_train.shape[1:]}."
        )
    regression = config.task == "regression"
    parts = [
        _header(config, dataset) + "\n\n" + _DATA_SECTION.format(expand=_expand_function(config.input_features)),
        _model_section(config, dataset, regression),
        _training_section(config, regression, _POINT_INPUTS),
        _data_constant(_encode_data(dataset)),
    ]
    return "\n\n\n".join(parts)


def _image_script(config: ExperimentConfig, dataset: Dataset) -> str:
    """The script for an image run: pixels stored losslessly, the dashboard's network layer for layer."""
    if config.architecture == "resnet":
        raise ValueError("A standalone script writes the network as a keras.Sequential stack of layers, which cannot "
                         "hold a residual CNN's skip connections (each block's input is added to its output). "
                         "Download the trained model as a .keras file instead.")
    storage, x_train, x_test = _pixel_storage(dataset)
    data = _npz_bytes(x_train=x_train, y_train=dataset.y_train, x_test=x_test, y_test=dataset.y_test)
    if len(data) > MAX_EMBEDDED_BYTES:
        raise ValueError(
            f"The {config.dataset!r} run's train/test split ({len(dataset.y_train) + len(dataset.y_test)} images "
            f"of {'x'.join(str(d) for d in dataset.input_shape)}, stored as {storage[0]}) takes "
            f"{len(data) / 1e6:.1f} MB compressed, over the {MAX_EMBEDDED_BYTES / 1e6:g} MB cap a standalone "
            f"script embeds. Download the trained model as a .keras file instead, or train on fewer images "
            f"(n_samples)."
        )
    parts = [
        _header(config, dataset) + "\n\n" + _image_data_section(dataset, storage),
        _image_model_section(config, dataset),
        _training_section(config, False, _IMAGE_INPUTS),
        _data_constant(_wrap_base64(data)),
    ]
    return "\n\n\n".join(parts)


def _data_constant(text: str) -> str:
    return f'DATA = """\n{text}\n"""\n\nif __name__ == "__main__":\n    main()\n'


def _header(config: ExperimentConfig, dataset: Dataset) -> str:
    fields = ",\n".join(f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in config.to_dict().items())
    settings = "    {\n" + fields + "\n    }"
    # An uploaded table's column names go in escaped as JSON strings: quotes or newlines in them stay text.
    x1, x2 = (json.dumps(name, ensure_ascii=False) for name in dataset.feature_names)
    columns = "" if dataset.feature_names == ("x1", "x2") else f"\nHere x1 is the table's column {x1} and x2 is {x2}.\n"
    run = f"an image run ({config.dataset}, {config.architecture.upper()})" if dataset.is_image else "a Playground run"
    return f'''"""Retrain {run} of the Inside Neural Networks dashboard with plain numpy and Keras.

The run's settings, as the dashboard recorded them:

{settings}
{columns}
The train/test split is embedded below (DATA), so this file runs on its own: `python this_file.py`.
The weights start from other random draws than the dashboard's, so the final score is close to the
page's but not identical. The last line printed is the test score.
"""

import base64
import io
import math

import keras
import numpy as np'''


_DATA_SECTION = '''# --- Data ---------------------------------------------------------------------------------------


def load_data():
    """The dashboard's train/test split: raw (N, 2) points and their labels or targets."""
    with np.load(io.BytesIO(base64.b64decode(DATA))) as arrays:
        return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


{expand}'''


def _expand_function(features: tuple[str, ...]) -> str:
    columns = ", ".join(_FEATURE_CODE[f] for f in features)
    return f'''def expand_features(points):
    """(N, 2) raw points -> (N, {len(features)}) network inputs: {", ".join(features)}."""
    x1, x2 = points[:, 0], points[:, 1]
    return np.stack([{columns}], axis=1).astype("float32")'''


def _model_section(config: ExperimentConfig, dataset: Dataset, regression: bool) -> str:
    layers = list(zip(config.hidden_layers, config.hidden_activations(), strict=True))
    lines = [
        "# --- Model " + "-" * 87,
        "",
        "",
        "def build_model(n_inputs):",
        f'    """Hidden dense layers {" -> ".join(str(u) for u in config.hidden_layers) or "(none)"}, then '
        f'{"one linear output unit" if regression else f"a softmax over {dataset.n_classes} classes"}."""',
    ]
    if config.l1 or config.l2:
        lines.append(f"    regularizer = keras.regularizers.L1L2(l1={config.l1!r}, l2={config.l2!r})  # every kernel")
    else:
        lines.append("    regularizer = None")
    lines += [
        "    x = inputs = keras.Input(shape=(n_inputs,))",
        f"    for units, activation in [{', '.join(f'({u}, {json.dumps(a)})' for u, a in layers)}]:",
        "        x = keras.layers.Dense(units, activation=activation, kernel_regularizer=regularizer)(x)",
    ]
    if config.dropout:
        lines.append(f"        x = keras.layers.Dropout({config.dropout!r})(x)")
    if regression:
        lines.append("    outputs = keras.layers.Dense(1, kernel_regularizer=regularizer)(x)  # the predicted value")
    else:
        lines.append(f'    outputs = keras.layers.Dense({dataset.n_classes}, activation="softmax", '
                     "kernel_regularizer=regularizer)(x)")
    lines.append("    return keras.Model(inputs, outputs)")
    return "\n".join(lines)


def _optimizer_section(config: ExperimentConfig) -> str:
    spec = OPTIMIZERS[config.optimizer]
    settings = {**dict(spec.fixed), **dict(config.optimizer_options)}
    arguments = "".join(f", {name}={value!r}" for name, value in settings.items())
    lines = [
        "def make_optimizer(steps_per_epoch):",
        f'    """The dashboard\'s "{config.optimizer}" ({spec.keras_name}), learning rate {config.learning_rate:g}'
        f'{" with warm-up and cosine decay" if config.lr_schedule != "constant" else ""}."""',
    ]
    if config.lr_schedule == "constant":
        lines.append(f"    learning_rate = {config.learning_rate!r}")
    else:
        lines += [
            "    # Climb from 0 over the first epoch, then follow a cosine down to 0 at the last step.",
            "    total = max(2, EPOCHS * steps_per_epoch)",
            "    warmup = min(steps_per_epoch, total // 2)",
            "    learning_rate = keras.optimizers.schedules.CosineDecay(",
            f"        initial_learning_rate=0.0, decay_steps=total - warmup, warmup_target={config.learning_rate!r},",
            "        warmup_steps=warmup)",
        ]
    lines.append(f"    return keras.optimizers.{spec.keras_name}(learning_rate=learning_rate{arguments})")
    return "\n".join(lines)


# How `main` turns the loaded arrays into network inputs and builds the model: 2D points, or images.
_POINT_INPUTS = (
    "    x_train, x_test = expand_features(x_train), expand_features(x_test)",
    "    model = build_model(x_train.shape[1])",
)
_IMAGE_INPUTS = (
    "    model = build_model(x_train.shape[1:])",
    '    print(f"params={model.count_params()}")',
)


def _training_section(config: ExperimentConfig, regression: bool, inputs: tuple[str, ...]) -> str:
    if regression:
        loss, targets = '"mse"', "y_train[:, None]  # (N, 1), like the model's output"
        score = [
            "    predictions = model.predict(x_test, verbose=0)[:, 0]",
            '    print(f"test_mse={np.mean((predictions - y_test) ** 2):.4f}")',
        ]
    else:
        if config.loss == "cross_entropy":
            loss, targets = '"sparse_categorical_crossentropy"', "y_train  # class indices"
        else:
            loss, targets = '"mse"', 'np.eye(model.output_shape[-1], dtype="float32")[y_train]  # one-hot labels'
        score = [
            "    predictions = model.predict(x_test, verbose=0).argmax(axis=1)",
            '    print(f"test_accuracy={np.mean(predictions == y_test):.4f}")',
        ]
    lines = [
        "# --- Training " + "-" * 84,
        "",
        f"BATCH_SIZE = {config.batch_size}",
        f"EPOCHS = {config.epochs}",
        "",
        "",
        _optimizer_section(config),
        "",
        "",
        "def main():",
        f"    keras.utils.set_random_seed({config.seed})  # initial weights, shuffling and dropout",
        "    x_train, y_train, x_test, y_test = load_data()",
        *inputs,
        "    steps_per_epoch = math.ceil(len(y_train) / BATCH_SIZE)",
        f"    model.compile(optimizer=make_optimizer(steps_per_epoch), loss={loss})",
        f"    targets = {targets}",
        "    model.fit(x_train, targets, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=0)",
        *score,
    ]
    return "\n".join(lines)


def _encode_data(dataset: Dataset) -> str:
    return _wrap_base64(_npz_bytes(x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test,
                                   y_test=dataset.y_test))


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _wrap_base64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(textwrap.wrap(text, 96))


# --- Images: lossless storage -------------------------------------------------------------------

# A storage is (dtype, denominator): ("uint8", d) keeps counts k for pixels k / d; ("float16", None) and
# ("float32", None) keep the values themselves.
Storage = tuple[str, int | None]


def _pixel_storage(dataset: Dataset) -> tuple[Storage, np.ndarray, np.ndarray]:
    """The most compact storage that gives back every pixel of both images arrays bit for bit, and the arrays
    in it: uint8 counts for one of PIXEL_DENOMINATORS, else float16, else float32 (always exact)."""
    candidates: list[Storage] = [("uint8", d) for d in PIXEL_DENOMINATORS] + [("float16", None)]
    for storage in candidates:
        x_train = _store_exactly(dataset.x_train, storage)
        x_test = _store_exactly(dataset.x_test, storage) if x_train is not None else None
        if x_test is not None:
            return storage, x_train, x_test
    return ("float32", None), dataset.x_train, dataset.x_test


def _store_exactly(x: np.ndarray, storage: Storage) -> np.ndarray | None:
    """`x` in `storage`, or None when reading it back as the script does would change any float32."""
    x = np.ascontiguousarray(x, dtype="float32")
    flat, out = x.reshape(-1), np.empty(x.size, storage[0])
    for start in range(0, flat.size, _CHECK_CHUNK):
        part = flat[start : start + _CHECK_CHUNK]
        stored = _to_storage(part, storage)
        if not np.array_equal(_from_storage(stored, storage).view("uint32"), part.view("uint32")):
            return None  # compared as bits: -0.0 is not 0.0, and NaN fails
        out[start : start + part.size] = stored
    return out.reshape(x.shape)


def _to_storage(pixels: np.ndarray, storage: Storage) -> np.ndarray:
    dtype, denominator = storage
    if denominator is None:
        return pixels.astype(dtype)
    with np.errstate(invalid="ignore"):  # NaN pixels cast to some count; the comparison then fails
        return np.clip(np.rint(pixels * np.float32(denominator)), 0, 255).astype(dtype)


def _from_storage(stored: np.ndarray, storage: Storage) -> np.ndarray:
    """What the script's `load_data` computes (`_decode_expression`), in numpy."""
    denominator = storage[1]
    pixels = stored.astype("float32")
    return pixels / np.float32(denominator) if denominator is not None else pixels


def _decode_expression(storage: Storage) -> str:
    """The script's code for `_from_storage` of `arrays[name]`."""
    dtype, denominator = storage
    if denominator is not None:
        return f'arrays[name].astype("float32") / np.float32({denominator})'
    return 'arrays[name].astype("float32")' if dtype != "float32" else "arrays[name]"


def _image_data_section(dataset: Dataset, storage: Storage) -> str:
    dtype, denominator = storage
    shape = ", ".join(str(d) for d in dataset.input_shape)
    if denominator is not None:
        how = (f"The pixels are stored as whole numbers k (uint8); k / {denominator} in float32 gives back\n"
               "    exactly the values the dashboard trained on.")
    elif dtype == "float16":
        how = ("The pixels are stored as float16, which holds every one of them exactly; widened back to\n"
               "    float32 they are the values the dashboard trained on.")
    else:
        how = "The pixels are stored as the float32 values the dashboard trained on."
    return f'''# --- Data ---------------------------------------------------------------------------------------


def load_data():
    """The dashboard's train/test split: (N, {shape}) images in [0, 1] and their class indices.

    {how}
    """
    with np.load(io.BytesIO(base64.b64decode(DATA))) as arrays:
        x_train, x_test = ({_decode_expression(storage)} for name in ("x_train", "x_test"))
        return x_train, arrays["y_train"], x_test, arrays["y_test"]'''


# --- Images: the network, layer for layer ---------------------------------------------------------


def _image_model_section(config: ExperimentConfig, dataset: Dataset) -> str:
    """`build_model(input_shape)`: a keras.Sequential with one line per layer of the dashboard's own model.

    The layers are read from the model the dashboard builds for this config, so the script cannot drift
    from the builder (which conv blocks are pooled, where batch norm sits); a comment names each one.
    """
    model = build_model(config, dataset.input_shape, dataset.n_classes)
    regularized = any(getattr(layer, "kernel_regularizer", None) is not None for layer in model.layers)
    lines = [
        "# --- Model " + "-" * 87,
        "",
        "",
        "def build_model(input_shape):",
        f'    """The dashboard\'s {config.architecture.upper()} for {config.dataset}, layer for layer (its '
        'layer names in the comments)."""',
    ]
    if regularized:
        lines.append(f"    regularizer = keras.regularizers.L1L2(l1={config.l1!r}, l2={config.l2!r})  # every kernel")
    lines += ["    return keras.Sequential([", "        keras.Input(shape=input_shape),"]
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            lines.append(f"        {_layer_code(layer)},  # {layer.name}")
    lines.append("    ])")
    return "\n".join(lines)


def _layer_code(layer: keras.layers.Layer) -> str:
    """The Keras call that makes a fresh copy of `layer`: its sizes and settings, not its seeds or weights.

    Raises:
        ValueError: a layer kind (or setting) the script writer does not know; the builder grew one.
    """
    c = layer.get_config()
    extra = "".join(_extra_arguments(layer, c))
    if isinstance(layer, keras.layers.Conv2D):
        _require(layer, c, strides=(1, 1), dilation_rate=(1, 1), groups=1)
        padding = json.dumps(c["padding"])
        return f"keras.layers.Conv2D({c['filters']}, {_side(c['kernel_size'])}, padding={padding}{extra})"
    if isinstance(layer, keras.layers.Dense):
        return f"keras.layers.Dense({c['units']}{extra})"
    if isinstance(layer, keras.layers.BatchNormalization):
        _require(layer, c, axis=-1, epsilon=1e-3, center=True, scale=True)
        return f"keras.layers.BatchNormalization(momentum={c['momentum']!r})"
    if isinstance(layer, keras.layers.Activation):
        return f"keras.layers.Activation({json.dumps(c['activation'])})"
    if isinstance(layer, keras.layers.Dropout):
        _require(layer, c, noise_shape=None)
        return f"keras.layers.Dropout({c['rate']!r})"
    if isinstance(layer, keras.layers.MaxPooling2D):
        _require(layer, c, padding="valid", strides=c["pool_size"])
        return f"keras.layers.MaxPooling2D({_side(c['pool_size'])})"
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        _require(layer, c, keepdims=False)
        return "keras.layers.GlobalAveragePooling2D()"
    if isinstance(layer, keras.layers.Flatten):
        return "keras.layers.Flatten()"
    raise ValueError(f"The standalone script cannot write layer {layer.name!r} ({type(layer).__name__}).")


def _extra_arguments(layer: keras.layers.Layer, c: dict):
    """A conv or dense layer's activation, bias and regulariser, where they are not Keras' defaults."""
    if "units" not in c and "filters" not in c:
        return
    if c["activation"] != "linear":
        yield f", activation={json.dumps(c['activation'])}"
    if not c["use_bias"]:
        yield ", use_bias=False"
    if layer.kernel_regularizer is not None:
        yield ", kernel_regularizer=regularizer"
    if c.get("bias_regularizer") or c.get("activity_regularizer") or c.get("kernel_constraint"):
        raise ValueError(f"The standalone script cannot write layer {layer.name!r}: it has a bias or activity "
                         "regulariser or a constraint.")


def _require(layer: keras.layers.Layer, c: dict, **expected) -> None:
    """Check settings the script's call leaves at Keras' defaults (lists compared as tuples)."""
    for key, value in expected.items():
        got, value = (tuple(v) if isinstance(v, list) else v for v in (c[key], value))
        if got != value:
            raise ValueError(f"The standalone script cannot write layer {layer.name!r}: {key}={got!r}, "
                             f"not {value!r}.")


def _side(size) -> str:
    """A square window's side, `3`, or the pair `(3, 5)`."""
    size = tuple(size)
    return str(size[0]) if len(set(size)) == 1 else repr(size)
