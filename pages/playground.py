"""Playground: train a small network on a 2D problem live and see what every neuron draws."""

import math

import pandas as pd
import streamlit as st

from models.datasets import Dataset
from models.engine import TrainResult, training_data_loss
from models.plane import class_probability, hidden_unit_maps, plane_grid
from ui.charts import accuracy_chart, decision_boundary_chart, loss_chart
from ui.images import unit_maps_image
from ui.routing import require_router, stop_page
from ui.session import train_live
from ui.widgets import config_from_link, experiment_ui, warn_if_not_learned

require_router("pages/playground.py")

PREFIX = "pg_"
GRID = plane_grid(40)

st.title("Playground")
st.caption(
    "Pick a 2D problem and a network in the sidebar. It trains as soon as a setting changes; "
    "settings you have already trained in this session come back instantly."
)

if f"{PREFIX}defaults" not in st.session_state:
    st.session_state[f"{PREFIX}defaults"] = config_from_link()
with st.sidebar:
    config = experiment_ui(st.session_state[f"{PREFIX}defaults"], PREFIX)
if config is None:
    stop_page()
st.query_params.from_dict(config.to_query())  # the address bar now holds a shareable link to this run


def points_frame(data: Dataset) -> pd.DataFrame:
    parts = []
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        labels = [data.class_names[i] for i in y]
        parts.append(pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": labels, "split": split}))
    return pd.concat(parts, ignore_index=True)


metrics_row = st.container()
boundary_col, curve_col = st.columns([1, 1], gap="large")
boundary_slot, curve_slot = boundary_col.empty(), curve_col.empty()


drawn_epochs: list[int] = []  # how far the charts on screen have got


def draw_boundary(result: TrainResult) -> None:
    data = result.dataset
    prob = class_probability(result.model, GRID)
    boundary_slot.altair_chart(
        decision_boundary_chart(GRID, prob, points_frame(data), data.class_names), width="content"
    )


def draw(result: TrainResult) -> None:
    """Redraw the boundary and the loss curve; called live during training and once after."""
    drawn_epochs.append(len(result.history))
    draw_boundary(result)
    curve_slot.altair_chart(loss_chart(result.history, result.config.epochs), width="stretch")


def show_metrics(h, penalised: bool) -> None:
    """The last epoch's losses and accuracies in the row above the charts."""
    cols = iter(metrics_row.columns(5 if penalised else 4))
    loss_name = "data loss" if penalised else "loss"  # without a penalty the data loss is the whole loss
    next(cols).metric(f"Train {loss_name}", f"{h.train_loss[-1]:.3g}")
    next(cols).metric(f"Test {loss_name}", f"{h.test_loss[-1]:.3g}")
    if penalised:
        next(cols).metric("L1/L2 penalty", f"{h.penalty[-1]:.3g}", help=(
            f"Added to the data loss: train total {h.train_loss[-1] + h.penalty[-1]:.3g}, "
            f"test total {h.test_loss[-1] + h.penalty[-1]:.3g} (what Keras' evaluate reports as the loss)."))
    next(cols).metric("Train accuracy", f"{h.train_acc[-1]:.0%}")
    next(cols).metric("Test accuracy", f"{h.test_acc[-1]:.0%}")


result = train_live(config, label="Training", on_update=draw, updates=10)
if result is None:
    stop_page()
h = result.history
if not len(h):  # diverged in epoch 1: result.model holds the initial weights, and no epoch has a loss to plot
    draw_boundary(result)
# A run that completed was drawn at its last epoch by the live updates; a cached, diverged or
# stopped run still needs its final state drawn.
live_final = result.status == "completed" and drawn_epochs[-1:] == [len(h)]
if len(h) and not live_final:
    draw(result)
boundary_col.caption(
    "Background: the network's probability of the blue class at every point. Circles are training "
    "points, diamonds are test points: a good model has each point on its own colour."
)
if result.status == "diverged":
    first_epoch = (f" The first epoch already overflowed: training started from a loss of "
                   f"{training_data_loss(result):.3g} and no epoch ended finite, so there is no curve to plot; the "
                   "boundary and neurons below are those of the initial weights.")
    st.warning(result.message + ("" if len(h) else first_epoch))
else:
    st.caption(result.message)
penalised = any(h.penalty)
if len(h):
    curve_col.caption(
        "Both curves falling together means learning; test loss rising while train loss falls means overfitting."
    )
    if penalised:
        curve_col.caption(
            "With L1/L2 regularisation the curves are the data loss (how wrong the predictions are); the grey "
            "curve is the penalty on large weights that the optimiser adds to it. Data loss + penalty is the total "
            "it minimises."
        )
    warn_if_not_learned(result)
    show_metrics(h, penalised)
    curve_col.altair_chart(accuracy_chart(h, config.epochs), width="stretch")

st.subheader("What every hidden neuron computes")
st.caption(
    "Each square is one neuron's output over the same plane as the decision boundary (blue positive, "
    "orange negative, each neuron on its own scale). Early neurons can only draw straight edges; later "
    "layers combine those edges into curves and closed shapes: the feature hierarchy in two dimensions."
)
maps = hidden_unit_maps(result.model, GRID)
if not maps:
    st.info("This network has no hidden layer: the boundary can only be a straight line.")
per_row = 5
for start in range(0, len(maps), per_row):
    cols = st.columns(per_row)
    for offset, layer_maps in enumerate(maps[start : start + per_row]):
        index = start + offset + 1
        image = unit_maps_image(layer_maps, columns=math.ceil(math.sqrt(len(layer_maps))))
        cols[offset].image(image, caption=f"Layer {index}: {len(layer_maps)} neurons", clamp=True)
