"""Altair chart builders: plain functions from arrays/frames to charts. They only draw."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from models.engine import History
from models.plane import PlaneGrid

# Playground colours: orange for class 0, blue for class 1; both read on light and dark themes.
CLASS_COLOURS = ("#f59322", "#0877bd")
SPLIT_COLOURS = alt.Scale(domain=["train", "test"], range=["#0877bd", "#e4572e"])
PENALTY = "L1/L2 penalty"  # the loss chart's name for the regularisers' share of the loss


def history_frame(history: History) -> pd.DataFrame:
    """Long-format per-epoch metrics: epoch, split, loss, accuracy."""
    epochs = np.arange(1, len(history) + 1)
    frames = [
        pd.DataFrame({"epoch": epochs, "split": split, "loss": loss, "accuracy": acc})
        for split, loss, acc in (
            ("train", history.train_loss, history.train_acc),
            ("test", history.test_loss, history.test_acc),
        )
    ]
    return pd.concat(frames, ignore_index=True)


def loss_chart(history: History, total_epochs: int, height: int = 320) -> alt.Chart | alt.LayerChart:
    """Train and test loss against epoch; the x axis spans the whole run so it grows while training.

    With L1/L2 regularisation the two curves are the data loss, and a grey curve shows the penalty the
    optimiser adds to it (data loss + penalty is the total that Keras' `evaluate` reports).
    """
    regularised = any(history.penalty)
    colours = SPLIT_COLOURS
    if regularised:
        colours = alt.Scale(domain=["train", "test", PENALTY], range=[*SPLIT_COLOURS.range, "#8c8c8c"])
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[1, max(total_epochs, 2)]))
    color = alt.Color("split:N", title="curve" if regularised else "data", scale=colours)
    chart = (
        alt.Chart(history_frame(history))
        .mark_line(point=len(history) < 30)
        .encode(
            x=x, y=alt.Y("loss:Q", title="mean data loss, and penalty" if regularised else "mean loss"), color=color,
            tooltip=["epoch", "split", alt.Tooltip("loss:Q", format=".4f"), alt.Tooltip("accuracy:Q", format=".1%")],
        )
    )
    if not regularised:
        return chart.properties(title="Loss per epoch", height=height)
    penalty = pd.DataFrame({"epoch": np.arange(1, len(history.penalty) + 1), "split": PENALTY,
                            "loss": history.penalty})
    line = alt.Chart(penalty).mark_line(point=len(history) < 30, strokeDash=[4, 3]).encode(
        x=x, y="loss:Q", color=color, tooltip=["epoch", alt.Tooltip("loss:Q", title=PENALTY, format=".4f")])
    return alt.layer(chart, line).properties(title="Loss per epoch", height=height)


def accuracy_chart(history: History, total_epochs: int, height: int = 260) -> alt.Chart:
    """Train and test accuracy against epoch."""
    data = history_frame(history)
    return (
        alt.Chart(data, title="Accuracy per epoch")
        .mark_line()
        .encode(
            x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[1, max(total_epochs, 2)])),
            y=alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("split:N", title="data", scale=SPLIT_COLOURS),
            tooltip=["epoch", "split", alt.Tooltip("accuracy:Q", format=".1%")],
        )
        .properties(height=height)
    )


def decision_boundary_chart(
    grid: PlaneGrid,
    probability: np.ndarray,
    points: pd.DataFrame,
    class_names: tuple[str, str],
    size: int = 340,
    legend: bool = True,
) -> alt.LayerChart:
    """Heatmap of P(class 1) over the plane with the data points on top.

    Args:
        grid: the plane grid the probabilities were computed on.
        probability: (R, R) probability of class 1, rows = x2.
        points: columns x1, x2, label (class name), split ("train"/"test").
        class_names: names of class 0 and class 1, for the legend.
        size: side of the square plot area in pixels.
        legend: draw the legends (off for small multiples).
    """
    step = float(grid.xs[1] - grid.xs[0])
    gx, gy = np.meshgrid(grid.xs, grid.ys)
    cells = pd.DataFrame({"x1": gx.ravel() - step / 2, "x2": gy.ravel() - step / 2, "p": probability.ravel()}).assign(
        x1_end=lambda d: d.x1 + step, x2_end=lambda d: d.x2 + step
    )
    domain = [float(grid.xs[0] - step / 2), float(grid.xs[-1] + step / 2)]
    x = alt.X("x1:Q", title="x1", scale=alt.Scale(domain=domain, nice=False))
    y = alt.Y("x2:Q", title="x2", scale=alt.Scale(domain=domain, nice=False))
    shown = alt.Legend(titleOrient="left") if legend else None
    heat = (
        alt.Chart(cells)
        .mark_rect(opacity=0.6, strokeWidth=0)
        .encode(
            x=x,
            x2="x1_end:Q",
            y=y,
            y2="x2_end:Q",
            color=alt.Color(
                "p:Q",
                title=f"P({class_names[1]})",
                scale=alt.Scale(
                    domain=[0, 0.5, 1], range=[CLASS_COLOURS[0], "#e8eaed", CLASS_COLOURS[1]], interpolate="rgb"
                ),
                legend=shown,
            ),
            tooltip=[alt.Tooltip("p:Q", title=f"P({class_names[1]})", format=".2f")],
        )
    )
    dots = (
        alt.Chart(points)
        .mark_point(filled=True, size=36, strokeWidth=1, opacity=1)
        .encode(
            x=x,
            y=y,
            fill=alt.Fill(
                "label:N", title="class", scale=alt.Scale(domain=list(class_names), range=list(CLASS_COLOURS)),
                legend=shown,
            ),
            stroke=alt.Stroke(
                "split:N", title="points", scale=alt.Scale(domain=["train", "test"], range=["white", "black"]),
                legend=shown,
            ),
            shape=alt.Shape(
                "split:N", scale=alt.Scale(domain=["train", "test"], range=["circle", "diamond"]), legend=shown
            ),
            tooltip=["label", "split", alt.Tooltip("x1:Q", format=".2f"), alt.Tooltip("x2:Q", format=".2f")],
        )
    )
    # Streamlit gives the whole chart (title, axes and legends included) the width and height set
    # here, so add their room to keep the plot area square.
    chart = alt.layer(heat, dots).properties(
        width=size + 50, height=size + (150 if legend else 70), title="Decision boundary"
    )
    return chart.configure_legend(orient="bottom", direction="horizontal") if legend else chart


def gradient_norm_chart(history: History, layer_names: list[str], height: int = 300) -> alt.Chart:
    """Per-layer gradient L2 norm against epoch on a log scale (vanishing gradients sit low)."""
    norms = np.asarray(history.grad_norms)  # (epochs, layers)
    epochs = np.arange(1, len(norms) + 1)
    data = pd.DataFrame(
        [
            {"epoch": int(e), "layer": name, "gradient norm": float(max(norms[i, j], 1e-12))}
            for j, name in enumerate(layer_names)
            for i, e in enumerate(epochs)
        ]
    )
    return (
        alt.Chart(data, title="Gradient norm per layer")
        .mark_line()
        .encode(
            x=alt.X("epoch:Q", title="epoch"),
            y=alt.Y("gradient norm:Q", title="mean gradient L2 norm (log)", scale=alt.Scale(type="log")),
            color=alt.Color("layer:N", title="layer", sort=layer_names),
            tooltip=["epoch", "layer", alt.Tooltip("gradient norm:Q", format=".2e")],
        )
        .properties(height=height)
    )
