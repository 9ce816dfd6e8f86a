"""The Playground's views: the decision boundary, the metric row and one labelled tile per hidden neuron.

They only draw what models.plane computes; pages/playground.py lays them out.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from models.datasets import Dataset
from models.engine import History, TrainResult
from models.plane import constant_units, hidden_unit_maps, model_output, plane_grid
from ui.charts import BOUNDARY_AXES_WIDTH, class_map_chart, decision_boundary_chart, regression_map_chart

GRID = plane_grid(100)  # 100 x 100 points: a smooth boundary and 100 px neuron tiles from one predict each
BOUNDARY_SIZE = 340  # side of the boundary's square plot area, px
BOUNDARY_WIDTH = BOUNDARY_SIZE + BOUNDARY_AXES_WIDTH  # the whole chart, axes included
# Neuron tiles: orange negative, blue positive and a mid-light grey zero, so a mostly-zero ReLU tile does
# not glare on a dark page; a neuron constant over the plane is hatched darker grey ("no picture").
TILE_NEGATIVE = np.array([245, 147, 34], dtype="float32")
TILE_ZERO = np.array([196, 201, 207], dtype="float32")
TILE_POSITIVE = np.array([8, 119, 189], dtype="float32")
FLAT_GREY = np.array([120, 126, 134], dtype="uint8")
FLAT_STRIPE = np.array([104, 110, 118], dtype="uint8")


def points_frame(data: Dataset, show_test: bool = True) -> pd.DataFrame:
    """Train (and test) points in the columns the plane charts take: x1, x2, split, and label (class name)
    or target (regression)."""
    parts = []
    splits = (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test))
    for split, x, y in splits[: 2 if show_test else 1]:
        xy = np.round(x.astype("float64"), 4)  # shorter JSON for the ~10 live redraws; far below a pixel
        frame = pd.DataFrame({"x1": xy[:, 0], "x2": xy[:, 1], "split": split})
        if data.task == "regression":
            frame["target"] = np.round(y.astype("float64"), 4)
        else:
            frame["label"] = [data.class_names[i] for i in y]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def boundary_chart(result: TrainResult, show_test: bool = True, discrete: bool = False) -> alt.LayerChart:
    """The model's output over the plane with the data on top: P(second class) for two classes (the
    predicted class when `discrete`), the predicted number for a regression (its sign when `discrete`)."""
    data = result.dataset
    output = model_output(result.model, GRID)
    points = points_frame(data, show_test)
    if data.task == "regression":
        return regression_map_chart(GRID, np.sign(output) if discrete else output, points, size=BOUNDARY_SIZE)
    if data.n_classes > 2:  # model_output is already the predicted class
        return class_map_chart(GRID, output, points, data.class_names, size=BOUNDARY_SIZE)
    shown = (output > 0.5).astype("float32") if discrete else output
    return decision_boundary_chart(GRID, shown, points, data.class_names, size=BOUNDARY_SIZE)


def boundary_caption(result: TrainResult) -> str:
    """What the background and the points mean, with how many test points this model gets right."""
    data, h = result.dataset, result.history
    if data.task == "regression":
        text = (f"Background: the network's prediction at each of {GRID.resolution} x {GRID.resolution} points "
                "(orange -1, white 0, blue +1); each point is filled with its target on the same colours.")
        if len(h):
            text += (f" Test mean squared error {h.test_loss[-1]:.3g}, against {np.var(data.y_test):.3g} for always "
                     "predicting the mean.")
        return text
    if data.n_classes > 2:
        text = (f"Background: the class the network predicts at each of {GRID.resolution} x {GRID.resolution} "
                "points, in the colour of that class's points.")
        if len(h):
            text += f" Test accuracy {h.test_acc[-1]:.0%} on {len(data.y_test)} points."
        return text
    text = (f"Background: the network's probability of {data.class_names[1]} (blue) at each of "
            f"{GRID.resolution} x {GRID.resolution} points. Circles are training points, diamonds test points: "
            "a good model has each point on its own colour.")
    if len(h):
        right = round(h.test_acc[-1] * len(data.y_test))
        text += f" Here {right} of {len(data.y_test)} test points ({h.test_acc[-1]:.0%}) are on their own colour."
    return text


def show_metrics(container, h: History, penalised: bool) -> None:
    """The last epoch's losses and accuracies in a row that wraps rather than cutting numbers short."""
    loss_name = "data loss" if penalised else "loss"  # without a penalty the data loss is the whole loss
    container.metric(f"Train {loss_name}", f"{h.train_loss[-1]:.3g}", width="content")
    container.metric(f"Test {loss_name}", f"{h.test_loss[-1]:.3g}", width="content")
    if penalised:
        container.metric("L1/L2 penalty", f"{h.penalty[-1]:.3g}", width="content", help=(
            f"Added to the data loss: train total {h.train_loss[-1] + h.penalty[-1]:.3g}, "
            f"test total {h.test_loss[-1] + h.penalty[-1]:.3g} (what Keras' evaluate reports as the loss)."))
    if np.isfinite(h.test_acc[-1]):  # a regression has no accuracy
        container.metric("Train accuracy", f"{h.train_acc[-1]:.0%}", width="content")
        container.metric("Test accuracy", f"{h.test_acc[-1]:.0%}", width="content")


def neuron_tile(values: np.ndarray, flat: bool, scale: float | None) -> np.ndarray:
    """One neuron's (R, R) map (rows = x2) as an (R, R, 3) picture with x2 pointing up.

    Blue positive, orange negative, grey zero on `scale` (None: the neuron's own largest |value|); a
    flat neuron is hatched grey instead of a blank, glaring square.
    """
    if flat:
        r = values.shape[0]
        stripes = ((np.arange(r)[:, None] + np.arange(r)[None, :]) // 6) % 2 == 0  # (R, R) diagonal bands
        return np.where(stripes[..., None], FLAT_STRIPE, FLAT_GREY)
    scale = float(np.max(np.abs(values))) if scale is None else scale
    t = np.clip(values[::-1] / max(scale, 1e-12), -1, 1)[..., None]  # (R, R, 1), top row = largest x2
    rgb = np.where(t < 0, TILE_ZERO + (TILE_NEGATIVE - TILE_ZERO) * -t, TILE_ZERO + (TILE_POSITIVE - TILE_ZERO) * t)
    return np.round(rgb).astype("uint8")


def neuron_tiles_ui(result: TrainResult, activations: tuple[str, ...]) -> None:
    """A row of labelled 100 px tiles per hidden layer ("L2 · n5"), on per-neuron or one shared colour scale."""
    maps = hidden_unit_maps(result.model, GRID)
    if not maps:
        st.info("This network has no hidden layer: the boundary can only be a straight line.")
        return
    shared = st.checkbox("One colour scale for all neurons", key="pg_shared_scale",
                         help="Off: each neuron uses its full colour range, to show its shape. On: colours compare "
                              "the size of outputs across neurons and layers.")
    scale = max(float(np.max(np.abs(m))) for m in maps) if shared else None
    flat = [constant_units(m) for m in maps]
    n_flat, n_units = sum(int(f.sum()) for f in flat), sum(len(m) for m in maps)
    st.caption(
        (f"One scale for all: full colour at |output| = {scale:.3g}. " if shared else
         "Each neuron on its own scale (full colour at its own largest |output|). ")
        + f"{n_flat} of {n_units} neurons are flat (hatched grey): they output one value over the whole plane."
    )
    for layer, (layer_maps, layer_flat) in enumerate(zip(maps, flat, strict=True), start=1):
        st.markdown(f"**Layer {layer}** · {len(layer_maps)} {activations[layer - 1]} neurons"
                    + (f" · {int(layer_flat.sum())} flat" if layer_flat.any() else ""))
        row = st.container(horizontal=True, gap="small")
        for unit, (values, is_flat) in enumerate(zip(layer_maps, layer_flat, strict=True), start=1):
            label = f"L{layer} · n{unit}" + (" · flat" if is_flat else "")
            row.image(neuron_tile(values, bool(is_flat), scale), caption=label, width=GRID.resolution,
                      output_format="PNG")
