"""Altair chart builders: plain functions from arrays/frames to charts. They only draw."""

from __future__ import annotations

import base64
import io

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from models.engine import History
from models.plane import PlaneGrid

# Playground colours: orange for class 0, blue for class 1; both read on light and dark themes.
CLASS_COLOURS = ("#f59322", "#0877bd")
# The decision boundary's background: opaque light tints of the class colours around a near-white
# "undecided", as in TensorFlow Playground. Opaque, so a dark page does not show through.
BOUNDARY_TINTS = ((250, 205, 150), (244, 245, 247), (150, 196, 228))  # P = 0, 0.5, 1
SPLIT_OUTLINES = ("#ffffff", "#1f1f1f")  # train points ringed white, test points ringed near-black
TOOLTIP_CELLS = 25  # tooltip cells per side of the boundary chart: cheap to send, fine enough to point at
LEGEND_ROW = 28  # pixels per legend row under the boundary chart
# What the boundary chart's y axis and padding add to its plot side, at most (73 px measured in Chromium):
# a container of `size + BOUNDARY_AXES_WIDTH` pixels holds the whole chart.
BOUNDARY_AXES_WIDTH = 80
SPLIT_COLOURS = alt.Scale(domain=["train", "test"], range=["#0877bd", "#e4572e"])
PENALTY = "L1/L2 penalty"  # the loss chart's name for the regularisers' share of the loss
# One line per layer: Tableau's ten colours are saturated enough for white and for the dark theme
# (Streamlit's default palette has pale blues and pinks that vanish on white).
LAYER_COLOURS = "tableau10"


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


def probability_image(probability: np.ndarray) -> str:
    """(R, R) probabilities of class 1 (rows = x2) as a PNG data URL with x2 pointing up.

    Opaque light tints of the class colours (TensorFlow Playground's look): the plane looks the same on
    light and dark pages, and the saturated points on top keep their contrast.
    """
    t = np.clip(probability[::-1], 0, 1)[..., None]  # (R, R, 1), top row = largest x2
    low, middle, high = (np.asarray(c, dtype="float32") for c in BOUNDARY_TINTS)
    rgb = np.where(t < 0.5, low + (middle - low) * (2 * t), middle + (high - middle) * (2 * t - 1))
    buffer = io.BytesIO()
    Image.fromarray(np.round(rgb).astype("uint8")).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _tooltip_cells(grid: PlaneGrid, probability: np.ndarray, per_side: int = TOOLTIP_CELLS) -> pd.DataFrame:
    """A coarse grid of cells (x1, x2, x1_end, x2_end, p) under the pointer, for tooltips only."""
    every = max(1, grid.resolution // per_side)
    step = float(grid.xs[1] - grid.xs[0]) * every
    xs, ys = grid.xs[every // 2 :: every], grid.ys[every // 2 :: every]
    gx, gy = np.meshgrid(xs, ys)
    p = probability[every // 2 :: every, every // 2 :: every]
    cells = pd.DataFrame({"x1": gx.ravel() - step / 2, "x2": gy.ravel() - step / 2, "p": p.ravel()}).assign(
        x1_end=lambda d: d.x1 + step, x2_end=lambda d: d.x2 + step
    )
    return cells.astype("float64").round(4)  # shorter JSON: the chart is resent ~10 times while training


def decision_boundary_chart(
    grid: PlaneGrid,
    probability: np.ndarray,
    points: pd.DataFrame,
    class_names: tuple[str, str],
    size: int = 340,
    legend: bool = True,
) -> alt.LayerChart:
    """P(class 1) over the plane as a smooth picture, with the data points on top.

    Args:
        grid: the plane grid the probabilities were computed on (100 x 100 or finer looks smooth).
        probability: (R, R) probability of class 1, rows = x2.
        points: columns x1, x2, label (class name), split ("train"/"test").
        class_names: names of class 0 and class 1, for the legend.
        size: side of the square plot area in pixels.
        legend: draw the legends, stacked under the plot (off for small multiples).

    Returns:
        A chart whose width and height hold the plot, axes and legends (Streamlit sizes the whole chart).
    """
    step = float(grid.xs[1] - grid.xs[0])
    domain = [float(grid.xs[0] - step / 2), float(grid.xs[-1] + step / 2)]
    x = alt.X("x1:Q", title="x1", scale=alt.Scale(domain=domain, nice=False))
    y = alt.Y("x2:Q", title="x2", scale=alt.Scale(domain=domain, nice=False))
    def legend_row(row: int, **style) -> alt.Legend | None:
        """A one-line legend in row `row` under the x axis (Vega stacks bottom legends side by side)."""
        return alt.Legend(orient="none", legendX=0, legendY=size + 52 + LEGEND_ROW * row, direction="horizontal",
                          titleOrient="left", **style) if legend else None

    p_title = f"P({class_names[1]})"
    picture = alt.Chart(pd.DataFrame({"url": [probability_image(probability)], "x1": [domain[0]], "x2": [domain[0]],
                                      "x1_end": [domain[1]], "x2_end": [domain[1]]}))
    picture = picture.mark_image(aspect=False).encode(x=x, x2="x1_end:Q", y=y, y2="x2_end:Q", url="url:N")
    # Invisible coarse cells: they give the pointer a tooltip and the picture its colour legend.
    tips = alt.Chart(_tooltip_cells(grid, probability)).mark_rect(opacity=0).encode(
        x=x, x2="x1_end:Q", y=y, y2="x2_end:Q",
        color=alt.Color("p:Q", title=p_title, legend=legend_row(0, gradientLength=140, gradientThickness=10),
                        scale=alt.Scale(domain=[0, 0.5, 1], range=[_hex(c) for c in BOUNDARY_TINTS],
                                        interpolate="rgb")),
        tooltip=[alt.Tooltip("p:Q", title=p_title, format=".2f")],
    )
    dots = (
        alt.Chart(points)
        .mark_point(filled=True, size=40, strokeWidth=1.2, opacity=1)
        .encode(
            x=x,
            y=y,
            fill=alt.Fill(
                "label:N", title="class", scale=alt.Scale(domain=list(class_names), range=list(CLASS_COLOURS)),
                legend=legend_row(1),
            ),
            stroke=alt.Stroke("split:N", title="points", legend=legend_row(2, symbolFillColor="#9aa0a6", symbolSize=70),
                              scale=alt.Scale(domain=["train", "test"], range=list(SPLIT_OUTLINES))),
            shape=alt.Shape("split:N", title="points", legend=legend_row(2, symbolFillColor="#9aa0a6", symbolSize=70),
                            scale=alt.Scale(domain=["train", "test"], range=["circle", "diamond"])),
            tooltip=["label", "split", alt.Tooltip("x1:Q", format=".2f"), alt.Tooltip("x2:Q", format=".2f")],
        )
    )
    # The plot area is exactly size x size: "pad" grows the chart by its title, axes and legends instead
    # of squeezing the plot to fit the width and height (Streamlit's default "fit").
    return alt.layer(picture, tips, dots).properties(
        width=size, height=size, title="Decision boundary", autosize=alt.AutoSizeParams(type="pad")
    )


def regression_map_chart(grid: PlaneGrid, values: np.ndarray, points: pd.DataFrame, size: int = 340) -> alt.LayerChart:
    """The network's prediction over the plane (orange -1, white 0, blue +1) with the points, filled by their
    target on the same colours: a good fit has every point the colour of the ground under it.

    Args:
        grid: the plane grid the predictions were computed on.
        values: (R, R) predictions, rows = x2; the targets are scaled to [-1, 1], so is this scale.
        points: columns x1, x2, target, split ("train"/"test").
        size: side of the square plot area in pixels.
    """
    step = float(grid.xs[1] - grid.xs[0])
    domain = [float(grid.xs[0] - step / 2), float(grid.xs[-1] + step / 2)]
    x = alt.X("x1:Q", title="x1", scale=alt.Scale(domain=domain, nice=False))
    y = alt.Y("x2:Q", title="x2", scale=alt.Scale(domain=domain, nice=False))
    frame = pd.DataFrame({"url": [probability_image((values + 1) / 2)], "x1": [domain[0]], "x2": [domain[0]],
                          "x1_end": [domain[1]], "x2_end": [domain[1]]})
    picture = alt.Chart(frame).mark_image(aspect=False).encode(x=x, x2="x1_end:Q", y=y, y2="x2_end:Q", url="url:N")
    tips = alt.Chart(_tooltip_cells(grid, values)).mark_rect(opacity=0).encode(
        x=x, x2="x1_end:Q", y=y, y2="x2_end:Q", tooltip=[alt.Tooltip("p:Q", title="prediction", format=".2f")])
    dots = alt.Chart(points).mark_point(filled=True, size=40, strokeWidth=1.2, opacity=1).encode(
        x=x, y=y,
        fill=alt.Fill("target:Q", title="target", scale=alt.Scale(domain=[-1, 0, 1], range=["#f59322", "#e8eaed",
                                                                                          "#0877bd"],
                                                                   interpolate="rgb", clamp=True),
                      legend=alt.Legend(orient="bottom", direction="horizontal", titleOrient="left",
                                        gradientLength=140, gradientThickness=10)),
        stroke=alt.Stroke("split:N", title="points", scale=alt.Scale(domain=["train", "test"],
                                                                     range=list(SPLIT_OUTLINES)),
                          legend=alt.Legend(orient="bottom", titleOrient="left", symbolFillColor="#9aa0a6")),
        shape=alt.Shape("split:N", title="points", scale=alt.Scale(domain=["train", "test"],
                                                                   range=["circle", "diamond"])),
        tooltip=[alt.Tooltip("target:Q", format=".2f"), "split"],
    )
    return alt.layer(picture, tips, dots).properties(width=size, height=size, title="Prediction over the plane",
                                                     autosize=alt.AutoSizeParams(type="pad"))


# More than two classes (an uploaded table): Tableau's 20 categorical colours, light tints on the plane.
MANY_CLASS_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                      "#9c755f", "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                      "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def class_map_chart(grid: PlaneGrid, classes: np.ndarray, points: pd.DataFrame, class_names: tuple[str, ...],
                    size: int = 340) -> alt.LayerChart:
    """The predicted class at every point of the plane (for three or more classes), points on top.

    Args:
        classes: (R, R) index of the most probable class, rows = x2.
        points: columns x1, x2, label (class name), split.
    """
    step = float(grid.xs[1] - grid.xs[0])
    domain = [float(grid.xs[0] - step / 2), float(grid.xs[-1] + step / 2)]
    x = alt.X("x1:Q", title="x1", scale=alt.Scale(domain=domain, nice=False))
    y = alt.Y("x2:Q", title="x2", scale=alt.Scale(domain=domain, nice=False))
    palette = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in MANY_CLASS_COLOURS], dtype="float32")
    tints = palette * 0.45 + 255 * 0.55  # light, opaque: the same on light and dark pages
    rgb = tints[classes[::-1].astype("int64") % len(tints)]
    buffer = io.BytesIO()
    Image.fromarray(np.round(rgb).astype("uint8")).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    picture = alt.Chart(pd.DataFrame({"url": [url], "x1": [domain[0]], "x2": [domain[0]], "x1_end": [domain[1]],
                                      "x2_end": [domain[1]]}))
    picture = picture.mark_image(aspect=False).encode(x=x, x2="x1_end:Q", y=y, y2="x2_end:Q", url="url:N")
    names = list(class_names)
    dots = alt.Chart(points).mark_point(filled=True, size=40, strokeWidth=1.2, opacity=1).encode(
        x=x, y=y,
        fill=alt.Fill("label:N", title="class", scale=alt.Scale(domain=names,
                                                               range=list(MANY_CLASS_COLOURS[: len(names)])),
                      legend=alt.Legend(orient="bottom", columns=4, titleOrient="left")),
        stroke=alt.Stroke("split:N", scale=alt.Scale(domain=["train", "test"], range=list(SPLIT_OUTLINES)),
                          legend=None),
        shape=alt.Shape("split:N", scale=alt.Scale(domain=["train", "test"], range=["circle", "diamond"]),
                        legend=None),
        tooltip=["label", "split"],
    )
    return alt.layer(picture, dots).properties(width=size, height=size, title="Predicted class over the plane",
                                               autosize=alt.AutoSizeParams(type="pad"))


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


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
            color=alt.Color("layer:N", title="layer", sort=layer_names, scale=alt.Scale(scheme=LAYER_COLOURS)),
            tooltip=["epoch", "layer", alt.Tooltip("gradient norm:Q", format=".2e")],
        )
        .properties(height=height)
    )
