"""Activation Lab: the same network, data, seed and starting weights, one column per activation."""

import numpy as np
import pandas as pd
import streamlit as st

from models.activation_lab import (
    PRESETS,
    SATURATED_BELOW,
    activation_curve,
    confusion_on_test_set,
    layer_health,
    preset_figure,
)
from models.config import POINT_DATASETS, ExperimentConfig
from models.engine import TrainResult
from models.plane import class_probability, plane_grid
from models.registry import ACTIVATIONS
from ui.charts import decision_boundary_chart
from ui.compare_charts import activation_curve_chart, compared_gradient_chart, compared_loss_chart, confusion_chart
from ui.routing import require_router, stop_page
from ui.session import train_together
from ui.widgets import apply_config, experiment_ui, warn_if_not_learned

require_router("pages/activation_lab.py")

PREFIX = "al_"
CURVE_X = np.linspace(-5, 5, 201).astype("float32")
GRID = plane_grid(30)
DEFAULT = ExperimentConfig(epochs=60)

st.title("Activation Lab")
st.caption(
    "Pick two to six activations. Every network gets the same data split, the same starting weights and "
    "the same mini-batches, so the activation is the only difference between the columns."
)


def load_preset() -> None:
    """Widget callback: put a preset's settings into the sidebar widgets."""
    name = st.session_state[f"{PREFIX}preset"]
    if name in PRESETS:
        apply_config(PRESETS[name].config, PREFIX)
        st.session_state[f"{PREFIX}activations"] = list(PRESETS[name].activations)


with st.sidebar:
    preset_name = st.selectbox(
        "Preset", ["custom", *PRESETS], key=f"{PREFIX}preset", on_change=load_preset,
        format_func=lambda k: "Custom settings" if k == "custom" else PRESETS[k].title,
    )
    st.session_state.setdefault(f"{PREFIX}activations", ["linear", "tanh", "relu"])
    activations = st.multiselect("Activations (2-6)", list(ACTIVATIONS), key=f"{PREFIX}activations",
                                 max_selections=6)
    config = experiment_ui(DEFAULT, PREFIX, datasets=POINT_DATASETS + ("digits",), with_activation=False)

if len(activations) < 2:
    st.warning("Pick at least two activations to compare.")
    stop_page()
if config is None:
    stop_page()

results_list = train_together([config.replace(activation=a) for a in activations], label="Training")
if results_list is None:
    stop_page()
results: dict[str, TrainResult] = dict(zip(activations, results_list, strict=True))

preset = PRESETS.get(preset_name)
if preset is not None and set(preset.activations) <= set(results):
    figures = preset_figure(preset, {a: results[a] for a in preset.activations})
    unit = {"test_acc": "test accuracy", "gradient_ratio": "first/last layer gradient ratio",
            "dead": "dead-unit share"}[preset.measure]
    shown = ", ".join(f"{a}: {v:.2%}" if preset.measure != "gradient_ratio" else f"{a}: {v:.2e}"
                      for a, v in figures.items())
    st.info(f"**{preset.title}.** {preset.explanation}\n\nMeasured {unit}: {shown}.")


def column(name: str, result: TrainResult) -> None:
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
        st.altair_chart(confusion_chart(confusion_on_test_set(result), data.class_names), width="content")
    else:
        points = pd.DataFrame({"x1": data.x_test[:, 0], "x2": data.x_test[:, 1], "split": "test",
                               "label": [data.class_names[i] for i in data.y_test]})
        chart = decision_boundary_chart(GRID, class_probability(result.model, GRID), points, data.class_names,
                                        size=220, legend=False)
        st.altair_chart(chart, width="content")
    warn_if_not_learned(result)
    h = result.history
    left, right = st.columns(2)
    left.metric("Test accuracy", f"{h.test_acc[-1]:.0%}")
    right.metric("Test loss", f"{h.test_loss[-1]:.3g}")
    st.caption(f"Train accuracy {h.train_acc[-1]:.0%}, train loss {h.train_loss[-1]:.3g}. "
               f"{result.seconds_per_epoch * 1000:.1f} ms of training steps per epoch.")
    if not data.is_image and st.button("Open in Playground", key=f"{PREFIX}open_{name}"):
        apply_config(result.config, "pg_")
        st.session_state["pg_defaults"] = result.config
        st.switch_page("pages/playground.py")


st.caption(
    "Top: the activation (blue) and its slope (red, by autodiff); grey bands are where the slope is below "
    f"{SATURATED_BELOW}: inputs there pass almost no gradient back. Below: what each network learned."
)
for name, col in zip(results, st.columns(len(results)), strict=True):
    with col:
        column(name, results[name])

st.subheader("Across activations")
st.altair_chart(compared_loss_chart(results), width="stretch")
st.caption("Solid: training loss; dashed: test loss. Lower and earlier is better; a flat line never learned.")
st.altair_chart(compared_gradient_chart(results), width="content")
st.caption(
    "Each line is one layer's mean gradient norm per epoch. Lines that fan out by orders of magnitude, "
    "with the first layer lowest, are vanishing gradients: the early layers barely learn."
)

st.subheader("Layer health on the training set")
rows = [
    {"activation": name, "layer": h.layer, "units": h.units, "dead units": h.dead, "saturated units": h.saturated,
     "mean activation": h.mean_activation}
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
st.caption(
    "Dead: the unit's slope is zero for every training input, so it never learns again. Saturated: the slope "
    f"is below {SATURATED_BELOW} for most inputs. Both starve the layers below of gradient."
)
