"""Shared widget groups: each draws its widgets and returns plain values (an ExperimentConfig).

Widgets take their starting values from `st.session_state` (seeded once from a default config), so
a preset or an "open in Playground" button can set them with `apply_config` before they are drawn.
"""

from __future__ import annotations

import streamlit as st

from models.config import PLAYGROUND_DATASETS, POINT_DATASETS, ConfigError, ExperimentConfig
from models.registry import ACTIVATIONS, OPTIMIZERS, optimizer_defaults

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
BATCH_SIZES = (1, 2, 4, 8, 10, 16, 32, 64, 128, 256, 512)
PENALTIES = (0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1)
LOSS_LABELS = {"cross_entropy": "cross-entropy", "mse": "mean squared error"}

DATASET_LABELS = {
    "circle": "Circle",
    "xor": "XOR",
    "gaussians": "Two gaussians",
    "spiral": "Spiral",
    "moons": "Moons",
    "plane": "Plane (regression)",
    "multi_gaussian": "Multi-gaussian (regression)",
    "csv": "Your CSV (upload)",
    "digits": "Digits (8x8, scikit-learn)",
    "shapes": "Shapes (generated, 32x32 RGB)",
    "mnist": "MNIST (keras.datasets)",
    "fashion_mnist": "Fashion-MNIST (keras.datasets)",
    "cifar10": "CIFAR-10 (keras.datasets)",
}


def widget_state(config: ExperimentConfig, prefix: str) -> dict:
    """The widget values (by key) that describe `config`; the inverse of `experiment_ui`."""
    state = {
        "dataset": config.dataset, "n_samples": min(max(config.n_samples, 50), 2000), "noise": config.noise,
        "train_fraction": config.train_fraction, "seed": config.seed, "n_layers": len(config.hidden_layers),
        "activation": config.activation, "optimizer": config.optimizer, "lr": config.learning_rate,
        "batch": config.batch_size, "epochs": min(config.epochs, 500), "loss": config.loss, "l1": config.l1,
        "l2": config.l2, "dropout": min(config.dropout, 0.8),
    }
    state |= {f"units_{i}": units for i, units in enumerate(config.hidden_layers)}
    state |= {"features": list(config.input_features), "per_layer": bool(config.layer_activations)}
    state |= {f"act_{i}": activation for i, activation in enumerate(config.hidden_activations())}
    defaults = optimizer_defaults(config.optimizer) | dict(config.optimizer_options)
    state |= {f"{config.optimizer}_{name}": value for name, value in defaults.items()}
    return {prefix + key: value for key, value in state.items()}


def apply_config(config: ExperimentConfig, prefix: str) -> None:
    """Set the widgets with `prefix` to show `config` on their next draw."""
    st.session_state.update(widget_state(config, prefix))
    st.session_state[f"{prefix}config"] = config


PLAYGROUND_PREFIX = "pg_"  # the Playground's widget keys; other pages reach them only through open_in_playground


def playground_settings() -> ExperimentConfig:
    """The config the Playground starts from in this session: one handed over by another page, else its link's."""
    key = f"{PLAYGROUND_PREFIX}defaults"
    if key not in st.session_state:
        st.session_state[key] = config_from_link(PLAYGROUND_DATASETS)
    return st.session_state[key]


def open_in_playground(config: ExperimentConfig) -> None:
    """Go to the Playground with its widgets showing `config` (e.g. one column of the Activation Lab)."""
    apply_config(config, PLAYGROUND_PREFIX)
    st.session_state[f"{PLAYGROUND_PREFIX}defaults"] = config
    st.switch_page("pages/playground.py")


def seed_widgets(config: ExperimentConfig, prefix: str) -> None:
    """Give every widget without a value yet its value from `config` (first visit of a page)."""
    for key, value in widget_state(config, prefix).items():
        st.session_state.setdefault(key, value)


def config_from_link(datasets=POINT_DATASETS) -> ExperimentConfig:
    """The config in the page URL (a shared link); each field this page cannot use falls back to its default.

    The link's other fields are kept, and one st.warning names every field that was dropped and why.
    """
    config, problems = ExperimentConfig.from_query_lenient(dict(st.query_params), datasets)
    if problems:
        st.warning("Some of the link's settings could not be used, so they start from their defaults:\n\n"
                   + "\n".join(f"- {_literal(p)}" for p in problems))
    return config


def _literal(text: str) -> str:
    """`text` from a URL as a code span, shown literally: a link cannot inject headings, links or images."""
    return "`" + text.replace("`", "'") + "`"


def _options_with_current(options: tuple, key: str) -> list:
    """`options` plus the widget's current value, so a value from a link or preset still shows."""
    return sorted(set(options) | {st.session_state[key]})


def data_ui(prefix: str, datasets=POINT_DATASETS) -> dict:
    """Dataset, size, noise, split and seed controls; returns the matching config fields."""
    st.subheader("Data")
    if st.session_state.get(f"{prefix}dataset") not in datasets:
        st.session_state[f"{prefix}dataset"] = datasets[0]
    dataset = st.selectbox("Dataset", datasets, format_func=DATASET_LABELS.get, key=f"{prefix}dataset")
    n_samples = st.slider("Samples", 50, 2000, step=50, key=f"{prefix}n_samples")
    noise = st.slider("Noise", 0.0, 0.5, step=0.05, key=f"{prefix}noise")
    train_fraction = st.slider("Training share", 0.1, 0.9, step=0.1, key=f"{prefix}train_fraction")
    st.button("Regenerate data", key=f"{prefix}regenerate", on_click=_bump, args=(f"{prefix}seed",),
              help="New random data and new initial weights (increments the seed).")
    seed = st.number_input("Seed", 0, 2**31 - 1, key=f"{prefix}seed")
    return dict(dataset=dataset, n_samples=n_samples, noise=noise, train_fraction=train_fraction, seed=int(seed))


def _bump(key: str) -> None:
    st.session_state[key] = int(st.session_state[key]) + 1


def network_ui(prefix: str, with_activation: bool = True) -> dict:
    """Hidden layers, units per layer and (optionally) the activation."""
    st.subheader("Network")
    n_layers = st.slider("Hidden layers", 0, 10, key=f"{prefix}n_layers")
    units = []
    for i in range(n_layers):
        key = f"{prefix}units_{i}"
        st.session_state.setdefault(key, st.session_state.get(f"{prefix}units_{i - 1}", 8))
        units.append(st.slider(f"Units in layer {i + 1}", 1, 128, key=key))
    fields = dict(hidden_layers=tuple(units))
    if with_activation:
        activation = st.selectbox(
            "Activation", list(ACTIVATIONS), key=f"{prefix}activation",
            help="\n\n".join(f"**{k}**: {v}" for k, v in ACTIVATIONS.items()),
        )
        st.caption(ACTIVATIONS[activation])
        fields["activation"] = activation
    return fields


def training_ui(prefix: str, regression: bool = False) -> dict:
    """Optimiser with its own parameters, learning rate, batch size, epochs, loss and regularisation."""
    st.subheader("Training")
    optimizer = st.selectbox("Optimiser", list(OPTIMIZERS), key=f"{prefix}optimizer")
    st.caption(OPTIMIZERS[optimizer].description)
    options = {}
    defaults = optimizer_defaults(optimizer)
    if OPTIMIZERS[optimizer].tunable:
        with st.expander(f"{optimizer} parameters"):
            for name, low, high in OPTIMIZERS[optimizer].tunable:
                key = f"{prefix}{optimizer}_{name}"
                st.session_state.setdefault(key, float(min(max(defaults[name], low), high)))
                picked = st.slider(name, float(low), float(high), key=key, format="%.4f")
                if abs(picked - defaults[name]) > 1e-12:
                    options[name] = picked
    lr = st.select_slider("Learning rate", _options_with_current(LEARNING_RATES, f"{prefix}lr"), key=f"{prefix}lr")
    batch = st.select_slider("Batch size", _options_with_current(BATCH_SIZES, f"{prefix}batch"), key=f"{prefix}batch")
    epochs = st.slider("Epochs", 1, 500, key=f"{prefix}epochs")
    if regression:  # a number to predict: the squared error is the only loss that fits
        loss = "mse"
    else:
        loss = st.selectbox("Loss", list(LOSS_LABELS), format_func=LOSS_LABELS.get, key=f"{prefix}loss")
    with st.expander("Regularisation"):
        l1 = st.select_slider("L1", _options_with_current(PENALTIES, f"{prefix}l1"), key=f"{prefix}l1")
        l2 = st.select_slider("L2", _options_with_current(PENALTIES, f"{prefix}l2"), key=f"{prefix}l2")
        dropout = st.slider("Dropout", 0.0, 0.8, step=0.05, key=f"{prefix}dropout")
    return dict(optimizer=optimizer, optimizer_options=tuple(options.items()), learning_rate=lr,
                batch_size=batch, epochs=epochs, loss=loss, l1=l1, l2=l2, dropout=dropout)


def experiment_ui(
    defaults: ExperimentConfig, prefix: str, datasets=POINT_DATASETS, with_activation: bool = True,
    playground: bool = False,
) -> ExperimentConfig | None:
    """All experiment controls; the config they describe, or None after showing why it is invalid.

    With `playground`, also the Playground's own: input features, an activation per layer, your CSV.
    The last valid config is remembered under `{prefix}config`: Streamlit forgets the values of
    widgets on pages not shown, so coming back to a page restores them from it.
    """
    seed_widgets(st.session_state.get(f"{prefix}config", defaults), prefix)
    fields = data_ui(prefix, datasets)
    regression = False
    if playground:
        from ui.playground_widgets import csv_ui, features_ui, layer_activations_ui, regression_loss_note

        if fields["dataset"] == "csv":
            table = csv_ui(prefix)
            if table is None:
                return None
            fields |= table
        regression = regression_loss_note(fields["dataset"], fields.get("csv_task", "classification"))
        fields |= features_ui(prefix)
    network = network_ui(prefix, with_activation)
    if playground:
        network |= layer_activations_ui(prefix, network["hidden_layers"], network.get("activation", "tanh"))
    fields |= network | training_ui(prefix, regression)
    try:
        config = defaults.replace(**fields)
        st.session_state[f"{prefix}config"] = config
        return config
    except ConfigError as err:
        st.error(f"These settings cannot be trained: {err}")
        return None


IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]


def image_upload_ui(container, shape: tuple[int, int, int], prefix: str, label: str = "Upload an image"):
    """An image uploader that returns the upload fitted to a model input, or None.

    The file is decoded defensively; a refused file shows `st.error` with the reason and gives None.
    The preprocessing steps (colour mode, resize, scaling, inversion for ink-on-paper digits) are
    listed under the uploader.

    Returns:
        (H, W, C) float32 in [0, 1], or None when nothing usable was uploaded.
    """
    from models.image_io import ImageRejected, decode_image, fit_to_input

    upload = container.file_uploader(label, type=IMAGE_TYPES, key=f"{prefix}upload")
    if upload is None:
        return None
    try:
        decoded = decode_image(upload.getvalue())
    except ImageRejected as err:
        st.error(str(err))
        return None
    invert = shape[-1] == 1 and container.checkbox("Invert (dark ink on light paper)", True, key=f"{prefix}invert")
    image, steps = fit_to_input(decoded.pixels, shape, invert)
    container.markdown("**Preprocessing:** " + " → ".join(list(decoded.steps) + steps))
    return image


def warn_if_not_learned(result, container=st) -> bool:
    """A plain st.warning, with what to try, when `result` did not learn.

    That is: its test accuracy stayed within 10 points of chance, every unit of a hidden layer died, or
    its training loss never got below the loss of a constant guess (models.diagnosis.learning_warning).
    Returns True when it warned, so a page can skip captions that describe what a trained network shows.
    """
    from models.diagnosis import learning_warning

    if not len(result.history):
        return False
    message = learning_warning(result)
    if message:
        container.warning(message)
    return message is not None
