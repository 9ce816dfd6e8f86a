"""The Backpropagation page's three views: one step by hand, gradient flow during training, the LR range test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from models.activation_lab import gradient_ratio
from models.backprop import (
    FLAT_DROP,
    activation_distributions,
    finite_difference,
    hand_step,
    layer_weight_norms,
    lr_range_test,
    tiny_weights,
    update_ratios,
    weight_distributions,
)
from models.config import ExperimentConfig
from models.engine import TrainResult
from models.registry import ACTIVATIONS
from ui.backprop_charts import distribution_chart, lr_range_chart, series_chart, weight_step_chart
from ui.charts import gradient_norm_chart
from ui.session import memo, model_picker
from ui.widgets import warn_if_not_learned

# What the gradient-flow and range-test views train on a first visit: four tanh hidden layers, so several layers'
# gradients, weights and activations can be compared. Measured on the 2-core development machine: about 0.6 s,
# 100% test accuracy, and the range test (100 steps, 1e-5 to 10) suggests about 0.005 to 0.011.
DEFAULT = ExperimentConfig(dataset="circle", n_samples=400, hidden_layers=(8, 8, 8, 8), activation="tanh",
                           learning_rate=0.01, batch_size=32, epochs=60)
DEFAULT_NOTE = "a 4-layer tanh network on the circle data (4 hidden layers of 8 units, 60 epochs, under a second)"


def view_hand_step() -> None:
    c = st.columns(4)
    hidden = c[0].slider("Hidden units", 1, 5, 3, key="bp_hidden")
    activation = c[1].selectbox("Activation", list(ACTIVATIONS), index=list(ACTIVATIONS).index("tanh"),
                                key="bp_act")
    lr = c[2].select_slider("Learning rate", [0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 30.0], 0.5, key="bp_lr")
    seed = c[3].number_input("Weight seed", 0, 999, 0, key="bp_seed")
    c = st.columns(3)
    x = np.array([c[0].slider("x1", -2.0, 2.0, 0.5, 0.1, key="bp_x1"),
                  c[1].slider("x2", -2.0, 2.0, -1.0, 0.1, key="bp_x2")])
    y = float(c[2].radio("Target y", [0, 1], index=1, horizontal=True, key="bp_y"))
    weights = tiny_weights(2, hidden, int(seed))
    step = hand_step(weights, x, y, activation, lr)
    check = finite_difference(weights, x, y, activation)
    f = step.forward
    st.markdown(f"Network 2-{hidden}-1: z1 = W1·x + b1, a1 = {activation}(z1), z2 = W2·a1 + b2, "
                f"ŷ = sigmoid(z2), loss L = (ŷ − y)².")
    st.dataframe(pd.DataFrame([{"value": k, "numbers": np.array2string(np.atleast_1d(v), precision=4)}
                               for k, v in f.items()]), hide_index=True, width="stretch")
    st.markdown("**Local derivatives** " + ", ".join(
        f"{k} = {np.array2string(np.atleast_1d(v), precision=4)}" for k, v in step.local.items()))
    rows = []
    for name in ("W2", "b2", "W1", "b1"):
        for index in np.ndindex(weights[name].shape):
            rows.append({"weight": f"{name}{list(index)}", "value": weights[name][index],
                         "chain rule": step.chain[name][index], "autodiff": step.autodiff[name][index],
                         "finite difference": check[name][index], "after step": step.updated[name][index]})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3,
                 column_config={k: st.column_config.NumberColumn(format="%.8f") for k in
                                ("value", "chain rule", "autodiff", "finite difference", "after step")})
    st.altair_chart(weight_step_chart(rows), width="stretch")
    worst = max(float(np.max(np.abs(step.chain[k] - step.autodiff[k]))) for k in step.chain)
    st.caption(f"Chain rule: dL/dW2 = dL/dŷ · dŷ/dz2 · a1; dL/dW1 = (W2ᵀ · dL/dz2) · da1/dz1 · x. Largest difference "
               f"between chain rule and TensorFlow autodiff: {worst:.1e}.")
    before, after = float(f["loss"]), step.loss_after
    if after < before:
        st.success(f"Loss {before:.5f} → {after:.5f} after w ← w − {lr:g}·g: the step went downhill.")
    else:
        st.warning(f"Loss {before:.5f} → {after:.5f}: the step overshot. The gradient only says which way is "
                   f"downhill right here; a learning rate of {lr:g} jumps past the valley. Try a smaller one.")


def pick_run() -> TrainResult | None:
    return model_picker("bp_model", DEFAULT, DEFAULT_NOTE, label="Trained model")


def _update_summary(ratios: dict[str, np.ndarray], steps: int) -> str:
    """The last snapshot interval's update-to-weight ratios in words: the smallest and the largest layer."""
    last = {name: float(values[-1]) for name, values in ratios.items() if len(values)}
    if not last:
        return ""
    low, high = min(last, key=last.get), max(last, key=last.get)
    return (f" Over the last {steps} steps they run from {last[low]:.1e} ({low}) to {last[high]:.1e} ({high}), "
            f"against about {1e-3 * steps:.1e} by that rule.")


def view_flow() -> None:
    result = pick_run()
    if result is None:
        return
    warn_if_not_learned(result)
    h = result.history
    st.altair_chart(gradient_norm_chart(h, result.layer_names), width="stretch")
    norms = np.asarray(h.grad_norms)
    ratio = norms[:, 0] / np.maximum(norms[:, -1], 1e-30)
    st.altair_chart(series_chart(range(1, len(h) + 1), {"first / last layer": ratio}, "Gradient ratio", "ratio (log)",
                                 log=True), width="stretch")
    st.caption(f"Mean first/last gradient ratio of this model: {gradient_ratio(result):.2e}. Far below 1 means "
               "vanishing gradients (early layers barely learn), far above 1 exploding ones.")
    epochs, weight_norms = layer_weight_norms(result)
    st.altair_chart(series_chart(epochs, weight_norms, "Weight norm per layer", "L2 norm"), width="stretch")
    epochs_r, ratios = update_ratios(result)
    st.altair_chart(series_chart(epochs_r, ratios, "Update-to-weight ratio per layer", "‖Δw‖ / ‖w‖ (log)", log=True),
                    width="stretch")
    epochs_apart = result.snapshot_epochs[-1] - result.snapshot_epochs[-2] if len(result.snapshot_epochs) > 1 else 0
    steps = epochs_apart * math.ceil(len(result.dataset.y_train) / result.config.batch_size)
    st.caption("How much each layer's weights change from one snapshot (epoch) to the next, relative to their size. "
               "The usual rule of thumb is about 1e-3 per gradient step, so roughly 1e-3 x steps per epoch here; "
               "far smaller and the layer is frozen, far larger and training is unstable."
               + _update_summary(ratios, steps))
    st.altair_chart(distribution_chart(result.snapshot_epochs, weight_distributions(result),
                                       "Weight distributions over training (kernels)"), width="content")
    act_epochs, acts = memo(("acts", result.config.key()), lambda: activation_distributions(result))
    if acts:
        st.altair_chart(distribution_chart(act_epochs, acts, "Activation distributions over training"),
                        width="content")
    st.caption("Bands hold 100%, 86%, 68% and 38% of the values around the median line, as in TensorBoard. "
               "Activations piling up at a bound (0 for ReLU, ±1 for tanh) mean dead or saturated units.")


def view_range_test() -> None:
    result = pick_run()
    if result is None:
        return
    c1, c2 = st.columns(2)
    low, high = c1.select_slider("Learning rates", [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0],
                                 (1e-5, 10.0), key="bp_range")
    steps = c2.slider("Steps", 20, 400, 100, 10, key="bp_steps")
    with st.spinner("Training with a growing learning rate..."):
        test = memo(("range", result.config.key(), low, high, steps),
                    lambda: lr_range_test(result.config, result.dataset, low, high, steps))
    st.altair_chart(lr_range_chart(test.learning_rates, test.losses, test.suggested), width="stretch")
    st.caption(f"A fresh copy of the model is trained while the learning rate grows from {low:g} to {high:g}. "
               "Where the loss falls fastest the rate is useful; where it shoots up it is too large.")
    if test.suggested is None:
        st.info(f"No clear range: the smoothed loss never fell {FLAT_DROP:.0%} below where it started, so no rate "
                f"tried made this model learn in {steps} steps. Try more steps, a wider range of rates, or a model "
                "that learns.")
    else:
        st.caption(f"Suggested range (shaded): up to {test.suggested[1]:.2g}, a tenth of the rate at the lowest "
                   "loss (the smoothed curve lags the rate, so its lowest point is already too large to train "
                   f"with), from {test.suggested[0]:.2g}, where the loss falls fastest below that. This model used "
                   f"{result.config.learning_rate:g}.")


VIEWS = {"One step by hand": view_hand_step, "Gradient flow during training": view_flow,
         "Learning-rate range test": view_range_test}
