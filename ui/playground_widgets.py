"""The Playground's own controls, beyond the shared experiment widgets: its input features, one activation
per hidden layer, your own CSV as the data, and the display toggles. Each returns plain config fields.
"""

from __future__ import annotations

import streamlit as st

from models.config import DEFAULT_FEATURES, PLANE_FEATURES, REGRESSION_DATASETS
from models.registry import ACTIVATIONS

FEATURE_LABELS = {"x1": "X₁", "x2": "X₂", "x1^2": "X₁²", "x2^2": "X₂²", "x1*x2": "X₁·X₂", "sin(x1)": "sin(X₁)",
                  "sin(x2)": "sin(X₂)"}


def features_ui(prefix: str) -> dict:
    """Which functions of the point the first layer sees (TensorFlow Playground's FEATURES column)."""
    key = f"{prefix}features"
    st.session_state.setdefault(key, list(DEFAULT_FEATURES))
    chosen = st.multiselect("Input features", list(PLANE_FEATURES), format_func=FEATURE_LABELS.get, key=key,
                            help="The circle is separable by X₁² + X₂² alone: with those two features a network "
                                 "needs no hidden layer at all.")
    if not chosen:
        st.caption("Pick at least one feature; until then the network sees X₁ and X₂.")
    return dict(input_features=tuple(chosen) or DEFAULT_FEATURES)


def layer_activations_ui(prefix: str, units: tuple[int, ...], activation: str) -> dict:
    """An activation per hidden layer when asked for; else every layer uses the network's one activation."""
    if not units:
        return dict(layer_activations=())
    if not st.toggle("An activation per layer", key=f"{prefix}per_layer"):
        return dict(layer_activations=())
    chosen = []
    for i in range(len(units)):
        key = f"{prefix}act_{i}"
        if st.session_state.get(key) not in ACTIVATIONS:
            st.session_state[key] = activation
        chosen.append(st.selectbox(f"Layer {i + 1} activation", list(ACTIVATIONS), key=key))
    return dict(layer_activations=tuple(chosen))


def csv_ui(prefix: str) -> dict | None:
    """An uploader for your own table: two numeric feature columns and a label or target column.

    Returns the config fields naming the parsed table, or None (after saying why) when there is none yet.
    """
    from models.csv_data import CsvRejected, parse_csv, remember

    upload = st.file_uploader("Your CSV (two feature columns, then a label or a number)", type=["csv"],
                              key=f"{prefix}csv", help="A header row; at most 20,000 rows and 5 MB; 2-20 classes "
                                                       "for a label column. Features are rescaled to about [-1, 1].")
    if upload is None:
        return None
    try:
        table = parse_csv(upload.getvalue())
    except CsvRejected as err:
        st.error(f"{upload.name} cannot be used. {err}")
        return None
    remember(table)
    kind = (f"{len(table.class_names)} classes" if table.task == "classification" else f"a number, {table.target_name}")
    st.caption(f"{table.rows:,} rows: {table.feature_names[0]}, {table.feature_names[1]} → {kind}.")
    return dict(data_id=table.data_id, csv_task=table.task)


def regression_loss_note(dataset: str, csv_task: str) -> bool:
    """True (after a caption) when the problem is a regression, whose only loss here is the squared error."""
    regression = dataset in REGRESSION_DATASETS or (dataset == "csv" and csv_task == "regression")
    if regression:
        st.caption("A regression: the network predicts a number at each point and is scored by the mean squared "
                   "error.")
    return regression


def display_ui(prefix: str) -> tuple[bool, bool]:
    """TensorFlow Playground's "show test data" and "discretize output" toggles."""
    with st.container(horizontal=True):
        show_test = st.toggle("Show test data", value=True, key=f"{prefix}show_test")
        discrete = st.toggle("Discretise output", value=False, key=f"{prefix}discrete",
                             help="Colour each point of the plane by the predicted class (or the sign of the "
                                  "prediction) instead of the probability.")
    return show_test, discrete
