"""Playground: train a small network on a 2D problem live and see what every neuron draws."""

import streamlit as st

from models.engine import TrainResult, training_data_loss
from ui.charts import accuracy_chart, loss_chart
from ui.playground_views import (
    BOUNDARY_WIDTH,
    boundary_caption,
    boundary_chart,
    neuron_tiles_ui,
    show_metrics,
)
from ui.routing import require_router, stop_page
from ui.session import train_live
from ui.widgets import PLAYGROUND_PREFIX, experiment_ui, playground_settings, warn_if_not_learned

require_router("pages/playground.py")


st.title("Playground")
st.caption(
    "Pick a 2D problem and a network in the sidebar. It trains as soon as a setting changes; "
    "settings you have already trained in this session come back instantly."
)

with st.sidebar:
    config = experiment_ui(playground_settings(), PLAYGROUND_PREFIX)
if config is None:
    stop_page()
st.query_params.from_dict(config.to_query())  # the address bar now holds a shareable link to this run

metrics_row = st.container(horizontal=True, gap="medium")
# The boundary keeps its size; the curves take the rest of the row, or wrap under it on a narrow page.
charts_row = st.container(horizontal=True, gap="large")
boundary_col, curve_col = charts_row.container(width=BOUNDARY_WIDTH), charts_row.container(width="stretch")
boundary_slot, curve_slot = boundary_col.empty(), curve_col.empty()


drawn_epochs: list[int] = []  # how far the charts on screen have got


def draw_boundary(result: TrainResult) -> None:
    boundary_slot.altair_chart(boundary_chart(result), width="content")


def draw(result: TrainResult) -> None:
    """Redraw the boundary and the loss curve; called live during training and once after."""
    drawn_epochs.append(len(result.history))
    draw_boundary(result)
    curve_slot.altair_chart(loss_chart(result.history, result.config.epochs), width="stretch")


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
boundary_col.caption(boundary_caption(result))
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
    show_metrics(metrics_row, h, penalised)
    curve_col.altair_chart(accuracy_chart(h, config.epochs), width="stretch")

st.subheader("What every hidden neuron computes")
st.caption(
    "Each tile is one neuron's output over the same plane as the decision boundary (blue positive, grey zero, orange "
    "negative). Early neurons can only draw straight edges; later layers combine those edges into curves and "
    "closed shapes: the feature hierarchy in two dimensions."
)
neuron_tiles_ui(result, config.activation)
