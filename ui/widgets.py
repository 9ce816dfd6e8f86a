"""Shared widget groups: each draws its widgets and returns plain values (an ExperimentConfig)."""

from __future__ import annotations

import streamlit as st

from models.config import POINT_DATASETS, ConfigError, ExperimentConfig
from models.registry import ACTIVATIONS, OPTIMIZERS, optimizer_defaults

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
BATCH_SIZES = (1, 2, 4, 8, 10, 16, 32, 64, 128, 256, 512)
PENALTIES = (0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1)

DATASET_LABELS = {
    "circle": "Circle",
    "xor": "XOR",
    "gaussians": "Two gaussians",
    "spiral": "Spiral",
    "moons": "Moons",
    "digits": "Digits (8x8, scikit-learn)",
    "shapes": "Shapes (generated, 32x32 RGB)",
    "mnist": "MNIST (keras.datasets)",
    "fashion_mnist": "Fashion-MNIST (keras.datasets)",
    "cifar10": "CIFAR-10 (keras.datasets)",
}


def _with_value(options: tuple, value) -> list:
    """The option list with `value` added in order, so a shared link's odd value still shows."""
    return sorted(set(options) | {value})


def seed_from_query(prefix: str) -> ExperimentConfig:
    """The config in the page URL (a shared link), or the default when the URL has none or a bad one."""
    try:
        return ExperimentConfig.from_query(dict(st.query_params))
    except (ConfigError, TypeError) as err:
        st.warning(f"The link's settings could not be used ({err}); starting from the defaults.")
        return ExperimentConfig()


def data_ui(d: ExperimentConfig, prefix: str, datasets=POINT_DATASETS) -> dict:
    """Dataset, size, noise, split and seed controls; returns the matching config fields."""
    st.subheader("Data")
    dataset = st.selectbox(
        "Dataset",
        datasets,
        index=datasets.index(d.dataset) if d.dataset in datasets else 0,
        format_func=DATASET_LABELS.get,
        key=f"{prefix}dataset",
    )
    n_samples = st.slider("Samples", 50, 2000, min(max(d.n_samples, 50), 2000), 50, key=f"{prefix}n_samples")
    noise = st.slider("Noise", 0.0, 0.5, d.noise, 0.05, key=f"{prefix}noise")
    train_fraction = st.slider("Training share", 0.1, 0.9, d.train_fraction, 0.1, key=f"{prefix}train_fraction")
    seed_key = f"{prefix}seed"
    if seed_key not in st.session_state:
        st.session_state[seed_key] = d.seed
    st.button(
        "Regenerate data",
        key=f"{prefix}regenerate",
        on_click=_bump,
        args=(seed_key,),
        help="New random data and new initial weights (increments the seed).",
    )
    seed = st.number_input("Seed", 0, 2**31 - 1, key=seed_key)
    return dict(dataset=dataset, n_samples=n_samples, noise=noise, train_fraction=train_fraction, seed=int(seed))


def _bump(key: str) -> None:
    st.session_state[key] = int(st.session_state[key]) + 1


def network_ui(d: ExperimentConfig, prefix: str) -> dict:
    """Hidden layers, units per layer and activation."""
    st.subheader("Network")
    n_layers = st.slider("Hidden layers", 0, 10, len(d.hidden_layers), key=f"{prefix}n_layers")
    units = []
    for i in range(n_layers):
        default = d.hidden_layers[i] if i < len(d.hidden_layers) else (d.hidden_layers[-1] if d.hidden_layers else 8)
        units.append(st.slider(f"Units in layer {i + 1}", 1, 128, default, key=f"{prefix}units_{i}"))
    names = list(ACTIVATIONS)
    activation = st.selectbox(
        "Activation",
        names,
        index=names.index(d.activation),
        key=f"{prefix}activation",
        help="\n\n".join(f"**{k}**: {v}" for k, v in ACTIVATIONS.items()),
    )
    st.caption(ACTIVATIONS[activation])
    return dict(hidden_layers=tuple(units), activation=activation)


def training_ui(d: ExperimentConfig, prefix: str) -> dict:
    """Optimiser with its own parameters, learning rate, batch size, epochs, loss and regularisation."""
    st.subheader("Training")
    names = list(OPTIMIZERS)
    optimizer = st.selectbox("Optimiser", names, index=names.index(d.optimizer), key=f"{prefix}optimizer")
    st.caption(OPTIMIZERS[optimizer].description)
    options = {}
    chosen = dict(d.optimizer_options) if optimizer == d.optimizer else {}
    defaults = optimizer_defaults(optimizer)
    if OPTIMIZERS[optimizer].tunable:
        with st.expander(f"{optimizer} parameters"):
            for name, low, high in OPTIMIZERS[optimizer].tunable:
                value = float(min(max(chosen.get(name, defaults[name]), low), high))
                picked = st.slider(
                    name, float(low), float(high), value, key=f"{prefix}{optimizer}_{name}", format="%.4f"
                )
                if abs(picked - defaults[name]) > 1e-12:
                    options[name] = picked
    lr = st.select_slider(
        "Learning rate", _with_value(LEARNING_RATES, d.learning_rate), d.learning_rate, key=f"{prefix}lr"
    )
    batch = st.select_slider("Batch size", _with_value(BATCH_SIZES, d.batch_size), d.batch_size, key=f"{prefix}batch")
    epochs = st.slider("Epochs", 1, 500, min(d.epochs, 500), key=f"{prefix}epochs")
    loss = st.selectbox(
        "Loss",
        ("cross_entropy", "mse"),
        index=("cross_entropy", "mse").index(d.loss),
        key=f"{prefix}loss",
        format_func={"cross_entropy": "cross-entropy", "mse": "mean squared error"}.get,
    )
    with st.expander("Regularisation"):
        l1 = st.select_slider("L1", _with_value(PENALTIES, d.l1), d.l1, key=f"{prefix}l1")
        l2 = st.select_slider("L2", _with_value(PENALTIES, d.l2), d.l2, key=f"{prefix}l2")
        dropout = st.slider("Dropout", 0.0, 0.8, min(d.dropout, 0.8), 0.05, key=f"{prefix}dropout")
    return dict(
        optimizer=optimizer,
        optimizer_options=tuple(options.items()),
        learning_rate=lr,
        batch_size=batch,
        epochs=epochs,
        loss=loss,
        l1=l1,
        l2=l2,
        dropout=dropout,
    )


def experiment_ui(defaults: ExperimentConfig, prefix: str, datasets=POINT_DATASETS) -> ExperimentConfig | None:
    """All experiment controls; the config they describe, or None after showing why it is invalid."""
    fields = {**data_ui(defaults, prefix, datasets), **network_ui(defaults, prefix), **training_ui(defaults, prefix)}
    try:
        return defaults.replace(**fields)
    except ConfigError as err:
        st.error(f"These settings cannot be trained: {err}")
        return None
