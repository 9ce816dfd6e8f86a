"""Playground: train a small network on a 2D problem live and see what every neuron draws."""

import streamlit as st

from models.config import PLAYGROUND_DATASETS
from models.engine import TrainResult, training_data_loss
from ui.charts import accuracy_chart, loss_chart
from ui.playground_diagram import diagram_chart, diagram_ui
from ui.playground_export import export_ui
from ui.playground_live import advance, controls_ui, epochs_to_train, live_state
from ui.playground_views import BOUNDARY_WIDTH, boundary_caption, boundary_chart, neuron_tiles_ui, show_metrics
from ui.playground_widgets import display_ui
from ui.routing import require_router, stop_page
from ui.session import dataset_or_error
from ui.widgets import PLAYGROUND_PREFIX, experiment_ui, playground_settings, warn_if_not_learned

require_router("pages/playground.py")

st.title("Playground")
st.caption(
    "Pick a 2D problem, the input features and a network in the sidebar. A new setting starts a new network "
    "that trains at once; pause, step one epoch at a time, or click a link of the network to set its weight."
)

with st.sidebar:
    config = experiment_ui(playground_settings(), PLAYGROUND_PREFIX, datasets=PLAYGROUND_DATASETS, playground=True)
if config is None:
    st.info("The sidebar says what the settings need before a network can train.")
    stop_page()
st.query_params.from_dict(config.to_query())  # the address bar now holds a shareable link to this run
dataset = dataset_or_error(config)
if dataset is None:
    stop_page()

state = live_state(config, dataset)
controls = st.empty()
training = epochs_to_train(state, config.epochs) > 0
controls_ui(controls, state, config.epochs, training)
show_test, discrete = display_ui(PLAYGROUND_PREFIX)
metrics_row = st.container(horizontal=True, gap="medium")
diagram_slot = st.empty()
# The boundary keeps its size; the curves take the rest of the row, or wrap under it on a narrow page.
charts_row = st.container(horizontal=True, gap="large")
boundary_col, curve_col = charts_row.container(width=BOUNDARY_WIDTH), charts_row.container(width="stretch")
boundary_slot, curve_slot = boundary_col.empty(), curve_col.empty()


def draw(result: TrainResult) -> None:
    """The live redraw during training: the boundary, then (once an epoch is done) the network and the curve."""
    boundary_slot.altair_chart(boundary_chart(result, show_test, discrete), width="content")
    if len(result.history):  # at epoch 0 the new data and random boundary come first, fast
        diagram_slot.altair_chart(diagram_chart(result), width="content")  # tiles and links are placed in px
        curve_slot.altair_chart(loss_chart(result.history, config.epochs), width="stretch")


advance(state, config.epochs, draw)
if training:
    controls_ui(controls, state, config.epochs)  # as the run ended: Play again, and the epoch reached
result = state.run.result
h = result.history
with diagram_slot.container():
    diagram_ui(state)  # the final diagram takes clicks: a neuron shows its map, a link its weight to edit
boundary_slot.altair_chart(boundary_chart(result, show_test, discrete), width="content")
if len(h):
    curve_slot.altair_chart(loss_chart(h, config.epochs), width="stretch")
boundary_col.caption(boundary_caption(result))
if result.status == "diverged":
    first_epoch = (f" The first epoch already overflowed: training started from a loss of "
                   f"{training_data_loss(result):.3g} and no epoch ended finite, so there is no curve to plot; the "
                   "boundary and neurons below are those of the initial weights.")
    st.warning(result.message + ("" if len(h) else first_epoch))
elif len(h):
    st.caption(f"Epoch {len(h)}: {h.seconds[-1]:.2f} s of training so far.")
else:
    st.caption("Epoch 0: the untrained network's random start. Press Play or Step.")
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
    if len(h) >= min(config.epochs, 5):  # a network a few epochs in has not had its chance to learn yet
        warn_if_not_learned(result)
    show_metrics(metrics_row, h, penalised)
    if dataset.task == "classification":
        curve_col.altair_chart(accuracy_chart(h, config.epochs), width="stretch")

st.subheader("What every hidden neuron computes")
st.caption(
    "Each tile is one neuron's output over the same plane as the decision boundary (blue positive, grey zero, orange "
    "negative). Early neurons can only draw straight edges; later layers combine those edges into curves and "
    "closed shapes: the feature hierarchy in two dimensions."
)
neuron_tiles_ui(result, config.hidden_activations())
export_ui(result)
