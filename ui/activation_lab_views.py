"""Activation Lab views: one card per activation, wrapped into rows, and the layer-health table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from models.activation_lab import SATURATED_BELOW, activation_curve, confusion_on_test_set, layer_health
from models.config import POINT_DATASETS
from models.engine import TrainResult
from models.plane import class_probability, plane_grid
from ui.charts import BOUNDARY_AXES_WIDTH, decision_boundary_chart
from ui.compare_charts import activation_curve_chart, confusion_chart
from ui.widgets import open_in_playground, warn_if_not_learned

PREFIX = "al_"  # the Activation Lab's widget keys (the Runs page's "Open in" sets them too)
DATASETS = (*POINT_DATASETS, "digits")  # the lab's data choices
MOST_ACTIVATIONS = 6  # activations compared at once
CURVE_X = np.linspace(-5, 5, 201).astype("float32")
GRID = plane_grid(100)  # as fine as the Playground's: six models evaluate 10,000 points each in one predict
# Cards are this wide and wrap onto new rows: three to a row in a 1400-pixel window, two at 1000 pixels.
CARD_WIDTH = 250
BOUNDARY_SIZE = CARD_WIDTH - BOUNDARY_AXES_WIDTH  # plot side: with the axes the boundary chart fills the card
CONFUSION_SIZE = 240


def activation_cards(results: dict[str, TrainResult], prefix: str) -> None:
    """One fixed-width card per activation in a row that wraps, so six activations never squeeze or crop."""
    with st.container(horizontal=True, gap="medium"):
        for name, result in results.items():
            with st.container(width=CARD_WIDTH):
                activation_card(name, result, prefix)


def activation_card(name: str, result: TrainResult, prefix: str) -> None:
    """One activation: its curve, what it learned, and its numbers."""
    st.markdown(f"#### {name}")
    y, dy = activation_curve(name, CURVE_X)
    st.altair_chart(activation_curve_chart(name, CURVE_X, y, dy, SATURATED_BELOW), width="stretch")
    if result.status == "diverged":
        st.warning(f"Diverged at epoch {result.diverged_epoch}.")
    if not len(result.history):
        return
    data = result.dataset
    if data.is_image:
        st.altair_chart(confusion_chart(confusion_on_test_set(result), data.class_names, size=CONFUSION_SIZE),
                        width="content")
    else:
        points = pd.DataFrame({"x1": data.x_test[:, 0], "x2": data.x_test[:, 1], "split": "test",
                               "label": [data.class_names[i] for i in data.y_test]})
        chart = decision_boundary_chart(GRID, class_probability(result.model, GRID), points, data.class_names,
                                        size=BOUNDARY_SIZE, legend=False)
        st.altair_chart(chart, width="content")
    warn_if_not_learned(result)
    h = result.history
    with st.container(horizontal=True):
        st.metric("Test accuracy", f"{h.test_acc[-1]:.0%}", width="content")
        st.metric("Test loss", f"{h.test_loss[-1]:.2g}", width="content")
    st.caption(f"Train accuracy {h.train_acc[-1]:.0%}, train loss {h.train_loss[-1]:.3g}. "
               f"{result.seconds_per_epoch * 1000:.1f} ms of training steps per epoch.")
    if not data.is_image and st.button("Open in Playground", key=f"{prefix}open_{name}"):
        open_in_playground(result.config)


def layer_health_table(results: dict[str, TrainResult]) -> None:
    """Dead and saturated units per layer and activation, on the training set."""
    rows = [
        {"activation": name, "layer": h.layer, "units": h.units, "dead units": h.dead,
         "saturated units": h.saturated, "mean activation": h.mean_activation}
        for name, r in results.items() if len(r.history) for h in layer_health(r)
    ]
    st.dataframe(
        pd.DataFrame(rows),
        column_config={
            "dead units": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
            "saturated units": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
            "mean activation": st.column_config.NumberColumn(format="%.3f"),
        },
        hide_index=True,
        width="stretch",
    )
