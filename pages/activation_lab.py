"""Activation Lab: the same network, data, seed and starting weights, one column per activation."""

import streamlit as st

from models.activation_lab import PRESETS, SATURATED_BELOW, gradient_ratio, preset_figure
from models.config import ExperimentConfig
from models.engine import TrainResult
from models.registry import ACTIVATIONS
from ui.activation_lab_views import DATASETS, MOST_ACTIVATIONS, PREFIX, activation_cards, layer_health_table
from ui.compare_charts import compared_gradient_chart, compared_loss_chart
from ui.routing import require_router, stop_page
from ui.session import train_together
from ui.widgets import apply_config, experiment_ui

require_router("pages/activation_lab.py")

DEFAULT = ExperimentConfig(epochs=60)

st.title("Activation Lab")
st.caption(
    "Pick two to six activations. Every network gets the same data split, the same starting weights and "
    "the same mini-batches, so the activation is the only difference between the cards."
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
                                 max_selections=MOST_ACTIVATIONS)
    config = experiment_ui(DEFAULT, PREFIX, datasets=DATASETS, with_activation=False)

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

st.caption(
    "Top: the activation (blue) and its slope (red, by autodiff); grey bands are where the slope is below "
    f"{SATURATED_BELOW}: inputs there pass almost no gradient back. Below: what each network learned."
)
activation_cards(results, PREFIX)

st.subheader("Across activations")
st.altair_chart(compared_loss_chart(results), width="stretch")
learned = {name: r for name, r in results.items() if len(r.history)}
final_loss = ", ".join(f"{name} {r.history.test_loss[-1]:.3g}" for name, r in learned.items())
st.caption("Solid: training loss; dashed: test loss. Lower and earlier is better; a flat line never learned. "
           f"Final test loss: {final_loss}.")
st.altair_chart(compared_gradient_chart(results), width="content")
ratios = ", ".join(f"{name} {gradient_ratio(r):.2g}" for name, r in learned.items())
st.caption(
    "Each line is one layer's mean gradient norm per epoch. Lines that fan out by orders of magnitude, "
    "with the first layer lowest, are vanishing gradients: the early layers barely learn. "
    f"Mean first/last layer gradient ratio: {ratios}."
)

st.subheader("Layer health on the training set")
layer_health_table(results)
st.caption(
    "Dead: the unit's slope is zero for every training input, so it never learns again. Saturated: the slope "
    f"is below {SATURATED_BELOW} for most inputs. Both starve the layers below of gradient."
)
