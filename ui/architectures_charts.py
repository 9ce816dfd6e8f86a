"""Altair charts of the Architectures page. They only draw."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from models.architectures import KINDS

# d3's category10 hues: mid-lightness, so every one reads on a white and on a dark page.
KIND_COLOURS = alt.Scale(domain=list(KINDS), range=["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"])
CURVE_COLOURS = alt.Scale(domain=["MLP", "CNN"], range=["#1f77b4", "#ff7f0e"])
SUBTITLE_GREY = "#8a8d93"  # reads on both the light and the dark theme


def _legend() -> alt.Legend:
    # Below the plot in two columns: never clipped, whatever the chart's width.
    return alt.Legend(orient="bottom", columns=2, labelLimit=260)


def loss_curves_chart(curves: pd.DataFrame, height: int = 380) -> alt.Chart:
    """Test (solid) and train (dashed) loss per epoch, one colour per architecture.

    `curves` columns: architecture, epoch, split ("train"/"test"), loss.
    """
    return alt.Chart(curves, title="Loss per epoch").mark_line().encode(
        x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y("loss:Q", title="mean cross-entropy", scale=alt.Scale(zero=False)),
        color=alt.Color("architecture:N", title="architecture", scale=KIND_COLOURS, legend=_legend()),
        strokeDash=alt.StrokeDash("split:N", title="data", legend=_legend(),
                                  scale=alt.Scale(domain=["test", "train"], range=[[1, 0], [5, 3]])),
        tooltip=["architecture", "split", "epoch", alt.Tooltip("loss:Q", format=".4f")],
    ).properties(height=height)


def params_accuracy_chart(table: pd.DataFrame, height: int = 380) -> alt.Chart:
    """Test accuracy against parameter count (log), one point per architecture run (several seeds: several points).

    `table` columns: architecture, parameters, test accuracy, seed.
    """
    base = alt.Chart(table, title=alt.Title("Test accuracy against parameters",
                                            subtitle=["each point is one trained network"],
                                            subtitleColor=SUBTITLE_GREY))
    x = alt.X("parameters:Q", title="parameters (log)", scale=alt.Scale(type="log"))
    y = alt.Y("test accuracy:Q", title="test accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    points = base.mark_point(size=110, filled=True).encode(
        x=x, y=y, color=alt.Color("architecture:N", scale=KIND_COLOURS, legend=_legend()),
        tooltip=["architecture", "seed", alt.Tooltip("parameters:Q", format=","),
                 alt.Tooltip("test accuracy:Q", format=".1%")])
    return points.properties(height=height)


def learning_curve_chart(points: pd.DataFrame, crossover: float | None, height: int = 340) -> alt.LayerChart:
    """Mean test accuracy per training-set size (log x), with the band from the worst to the best seed.

    `points` columns: architecture, size, seed, test accuracy.
    """
    summary = points.groupby(["architecture", "size"], as_index=False)["test accuracy"].agg(["mean", "min", "max"])
    x = alt.X("size:Q", title="training images (log)", scale=alt.Scale(type="log"))
    colour = alt.Color("architecture:N", scale=CURVE_COLOURS, legend=_legend())
    band = alt.Chart(summary).mark_area(opacity=0.25).encode(
        x=x, y=alt.Y("min:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        y2="max:Q", color=colour)
    line = alt.Chart(summary).mark_line(point=True).encode(
        x=x, y="mean:Q", color=colour,
        tooltip=["architecture", "size", alt.Tooltip("mean:Q", title="mean accuracy", format=".1%"),
                 alt.Tooltip("min:Q", title="worst seed", format=".1%"),
                 alt.Tooltip("max:Q", title="best seed", format=".1%")])
    layers = [band, line]
    subtitle = ["line: mean over seeds; band: worst to best seed"]
    if crossover is not None:
        rule = pd.DataFrame({"size": [crossover], "note": [f"CNN ahead from about {crossover:,.0f} images"]})
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[4, 4], color="#8a8d93").encode(x=x, tooltip=["note"]))
        subtitle.append(f"dashed line: the CNN overtakes the MLP at about {crossover:,.0f} images")
    return alt.layer(*layers).properties(
        height=height, title=alt.Title("Test accuracy against training-set size", subtitle=subtitle,
                                       subtitleColor=SUBTITLE_GREY))


def depth_width_charts(table: pd.DataFrame, height: int = 380) -> tuple[alt.Chart, alt.Chart]:
    """Test accuracy and first/last gradient ratio (log) against depth, shallow-wide to deep-narrow, one line per
    variant (plain CNN, CNN + batch norm, MLP).

    `table` columns: network, variant, layers, width, parameters, test accuracy, gradient ratio.
    """
    x = alt.X("layers:Q", title="layers (width solved for the budget)", axis=alt.Axis(tickMinStep=1))
    colour = alt.Color("variant:N", title="network", legend=_legend(),
                       scale=alt.Scale(domain=["plain CNN", "CNN + batch norm", "MLP"],
                                       range=["#ff7f0e", "#2ca02c", "#1f77b4"]))
    tooltip = ["network", "variant", alt.Tooltip("parameters:Q", format=","),
               alt.Tooltip("test accuracy:Q", format=".1%"), alt.Tooltip("gradient ratio:Q", format=".3g")]
    accuracy = alt.Chart(table, title="Test accuracy at one parameter budget").mark_line(point=True).encode(
        x=x, color=colour, tooltip=tooltip,
        y=alt.Y("test accuracy:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])))
    ratio = alt.Chart(table, title="Gradient flow: first / last layer").mark_line(point=True).encode(
        x=x, color=colour, tooltip=tooltip,
        y=alt.Y("gradient ratio:Q", title="mean gradient-norm ratio (log)", scale=alt.Scale(type="log")))
    return accuracy.properties(height=height), ratio.properties(height=height)


def ratio_map_chart(a: np.ndarray, b: np.ndarray, ratio: np.ndarray, threshold: float, title: str,
                    size: int = 300) -> alt.Chart:
    """Li et al.'s convexity map: |lambda_min / lambda_max| on a grid; cells above `threshold` are the non-convex
    ones. `ratio[i, j]` is at (a[j], b[i])."""
    step_a, step_b = (a[1] - a[0]) if len(a) > 1 else 1.0, (b[1] - b[0]) if len(b) > 1 else 1.0
    ga, gb = np.meshgrid(a, b)
    cells = pd.DataFrame({"a": ga.ravel() - step_a / 2, "a2": ga.ravel() + step_a / 2, "b": gb.ravel() - step_b / 2,
                          "b2": gb.ravel() + step_b / 2, "ratio": np.minimum(ratio.ravel(), 1.0),
                          "raw": ratio.ravel()})
    return alt.Chart(cells, title=alt.Title(title, subtitle=[f"|min / max eigenvalue|, capped at 1; threshold "
                                                             f"{threshold:g}"], subtitleColor=SUBTITLE_GREY)).mark_rect(
        strokeWidth=0).encode(
        x=alt.X("a:Q", title="filter-normalised direction 1", scale=alt.Scale(nice=False)), x2="a2:Q",
        y=alt.Y("b:Q", title="filter-normalised direction 2", scale=alt.Scale(nice=False)), y2="b2:Q",
        color=alt.Color("ratio:Q", title="ratio", scale=alt.Scale(scheme="viridis", domain=[0, 1]),
                        legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=220)),
        tooltip=[alt.Tooltip("a:Q", format=".2f"), alt.Tooltip("b:Q", format=".2f"),
                 alt.Tooltip("raw:Q", title="ratio", format=".3g")],
    ).properties(width=size, height=size)
