"""Take a Playground run away: the trained model file, the training curves as CSV, and a standalone script.

The script is the one a reader can study and run without this dashboard: plain numpy and Keras, the
run's own train/test split embedded in it, and the same features, layers, optimiser, schedule, loss and
regularisation. Its weights start from other random draws than the dashboard's (Keras' global seed
instead of the builders' per-layer seeds), so it reaches the page's accuracy closely, not to the digit.
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

from models.config import ExperimentConfig
from models.datasets import Dataset
from models.engine import History
from models.registry import OPTIMIZERS

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

    The last line it prints is `test_accuracy=0.9760` for classification or `test_mse=0.0123` for regression.

    Raises:
        ValueError: the run is not on 2D points (image datasets are too large to embed).
    """
    if dataset.x_train.ndim != 2 or dataset.x_train.shape[1] != 2:
        raise ValueError(
            f"A standalone script covers the Playground's 2D problems; {config.dataset!r} has inputs of shape "
            f"{dataset.x_train.shape[1:]}."
        )
    regression = config.task == "regression"
    parts = [
        _header(config, dataset) + "\n\n" + _DATA_SECTION.format(expand=_expand_function(config.input_features)),
        _model_section(config, dataset, regression),
        _training_section(config, regression),
        f'DATA = """\n{_encode_data(dataset)}\n"""\n\nif __name__ == "__main__":\n    main()\n',
    ]
    return "\n\n\n".join(parts)


def _header(config: ExperimentConfig, dataset: Dataset) -> str:
    fields = ",\n".join(f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in config.to_dict().items())
    settings = "    {\n" + fields + "\n    }"
    # An uploaded table's column names go in escaped as JSON strings: quotes or newlines in them stay text.
    x1, x2 = (json.dumps(name, ensure_ascii=False) for name in dataset.feature_names)
    columns = "" if dataset.feature_names == ("x1", "x2") else f"\nHere x1 is the table's column {x1} and x2 is {x2}.\n"
    return f'''"""Retrain a Playground run of the Inside Neural Networks dashboard with plain numpy and Keras.

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


def _training_section(config: ExperimentConfig, regression: bool) -> str:
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
        "    x_train, x_test = expand_features(x_train), expand_features(x_test)",
        "    model = build_model(x_train.shape[1])",
        "    steps_per_epoch = math.ceil(len(y_train) / BATCH_SIZE)",
        f"    model.compile(optimizer=make_optimizer(steps_per_epoch), loss={loss})",
        f"    targets = {targets}",
        "    model.fit(x_train, targets, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=0)",
        *score,
    ]
    return "\n".join(lines)


def _encode_data(dataset: Dataset) -> str:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=dataset.x_train, y_train=dataset.y_train,
                        x_test=dataset.x_test, y_test=dataset.y_test)
    text = base64.b64encode(buffer.getvalue()).decode("ascii")
    return "\n".join(textwrap.wrap(text, 96))

