"""Altair charts for the Runs page: stored runs overlaid like TensorBoard's scalar dashboard. They only draw."""

from __future__ import annotations

import io

import altair as alt
import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from models.run_compare import differs_from_first

# Tableau's ten colours: saturated mid tones that read on a white and on a dark page (one per run, up to 8).
RUN_COLOURS = "tableau10"
SPLIT_DASHES = alt.Scale(domain=["train", "test"], range=[[6, 4], [1, 0]])  # train dashed, test solid
X_TITLES = {"epoch": "epoch", "seconds": "wall time (s)"}
HEIGHT = 320
LABEL_LIMIT = 480  # pixels: a 60-character run label at the legend's 10 px font, unclipped, with room for wide letters
EXPORT_WIDTH = 900  # vl-convert has no page to fill, so a container-wide chart is exported this wide
# Both legends under the plot, where long run names have room. Line symbols at full opacity: the layers' own marks
# (faint raw lines, hover points) would otherwise decide the symbols and show faint lines or dots.
LEGEND_STYLE = {"orient": "bottom", "direction": "vertical", "symbolType": "stroke", "symbolOpacity": 1,
                "symbolStrokeWidth": 2, "symbolSize": 400}
# Changed cells in the config table: a translucent amber that reads under dark text on white and light text on dark.
DIFFERENT_CELL = "background-color: rgba(255, 171, 0, 0.28)"


def comparison_chart(frame: pd.DataFrame, metric: str, x_axis: str, log_y: bool,
                     width: int | None = None) -> alt.LayerChart:
    """Every run's train (dashed) and test (solid) curve on shared axes, one colour per run.

    Args:
        frame: `models.run_compare.curves_frame` output.
        metric: "loss" or "accuracy", for the y title and number format.
        x_axis: "epoch" or "seconds", for the x title.
        log_y: a log-scale y axis (meant for the loss).
        width: plot width in pixels; None leaves it to the page (`use_container_width=True` fits the column).

    Returns:
        When the frame is smoothed, the raw curves are drawn faint and thin behind the smoothed ones, as TensorBoard
        does, so the noise stays visible. Hovering highlights the points of every curve at that x with a tooltip.
    """
    runs = list(pd.unique(frame["run"]))
    percent = metric == "accuracy"
    data, y_title, raw_y, smooth_y = frame, metric, "value", "smoothed"
    if log_y:
        data, y_title, raw_y, smooth_y = _log_safe(frame), f"{metric} (log)", "value_plot", "smoothed_plot"
    number = ".2%" if percent else ".4f"
    axis = alt.Axis(format="%") if percent else alt.Axis()
    y_scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    x = alt.X("x:Q", title=X_TITLES.get(x_axis, x_axis))
    colour = alt.Color("run:N", title="run", sort=runs, scale=alt.Scale(scheme=RUN_COLOURS),
                       legend=alt.Legend(columns=1 if _long(runs) else 2, labelLimit=LABEL_LIMIT, **LEGEND_STYLE))
    dash = alt.StrokeDash("split:N", title="data", scale=SPLIT_DASHES,
                          legend=alt.Legend(symbolStrokeColor="#888888", **LEGEND_STYLE))
    base = alt.Chart(data).encode(x=x, color=colour)
    lines = base.encode(strokeDash=dash)  # not the hover points: their filled dots would blank the dash legend
    smoothed = lines.mark_line(strokeWidth=2).encode(y=alt.Y(f"{smooth_y}:Q", title=y_title, axis=axis, scale=y_scale))
    hover = alt.selection_point(fields=["x"], nearest=True, on="pointerover", clear="pointerout", empty=False)
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("split:N"), alt.Tooltip("epoch:Q"),
               alt.Tooltip("seconds:Q", title="seconds", format=".1f"),
               alt.Tooltip("value:Q", format=number), alt.Tooltip("smoothed:Q", format=number)]
    points = base.mark_point(filled=True, size=45).encode(
        y=f"{smooth_y}:Q", opacity=alt.condition(hover, alt.value(1), alt.value(0)), tooltip=tooltip,
    ).add_params(hover)
    layers = [smoothed, points]
    if _is_smoothed(frame):
        raw = lines.mark_line(strokeWidth=1, opacity=0.3).encode(y=f"{raw_y}:Q")
        layers.insert(0, raw)
    title = f"{metric.capitalize()} per epoch" if x_axis == "epoch" else f"{metric.capitalize()} against wall time"
    # "fit-x": the width follows the page while HEIGHT stays the plot's own height; with Streamlit's default
    # "fit" the legends below would be taken out of HEIGHT and squash the plot to a strip.
    chart = alt.layer(*layers).properties(height=HEIGHT, title=title,
                                          autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    return chart.properties(width=width) if width is not None else chart


def _long(labels: list[str]) -> bool:
    """Labels too long for two legend columns side by side in a ~700 px column."""
    return any(len(str(label)) > 28 for label in labels)


def _is_smoothed(frame: pd.DataFrame) -> bool:
    """Smoothing weight 0 returns the raw values exactly, so any difference means the frame was smoothed."""
    both = np.isfinite(frame["value"]) & np.isfinite(frame["smoothed"])
    return bool((frame.loc[both, "value"] != frame.loc[both, "smoothed"]).any())


def _log_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with plotted copies of value and smoothed that a log axis can draw.

    A loss can be exactly 0 (a perfect fit under MSE), which a log axis puts at minus infinity. Values <= 0 are
    drawn at the smallest positive value in the chart, the bottom of the axis: a symlog axis would instead turn
    everything below 1, where losses usually live, nearly linear, and a tiny fixed floor such as 1e-12 would
    stretch the axis over decades no curve reaches. Tooltips keep the true values.
    """
    plotted = frame[["value", "smoothed"]].to_numpy(dtype="float64")
    positive = plotted[np.isfinite(plotted) & (plotted > 0)]
    floor = positive.min() if positive.size else 1.0
    clipped = {f"{c}_plot": frame[c].where(~(frame[c] <= 0), floor) for c in ("value", "smoothed")}
    return frame.assign(**clipped)


def chart_png(chart: alt.TopLevelMixin) -> bytes:
    """The chart as a PNG at twice the pixel density, on white, for reports and slides."""
    buffer = io.BytesIO()
    _for_export(chart).save(buffer, format="png", scale_factor=2)
    return buffer.getvalue()


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as a standalone SVG on white."""
    buffer = io.StringIO()
    _for_export(chart).save(buffer, format="svg")
    return buffer.getvalue()


def _for_export(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """A fixed width in place of the container's, and a white background: a transparent file shows black text on
    black in a dark-mode image viewer."""
    if chart.width is alt.Undefined or chart.width == "container":
        chart = chart.properties(width=EXPORT_WIDTH)
    return chart.properties(background="white")


def highlight_differences(table: pd.DataFrame) -> Styler:
    """`config_differences` output styled for `st.dataframe`: cells that differ from the first run are tinted."""
    changed = differs_from_first(table)
    return table.style.apply(lambda _: np.where(changed, DIFFERENT_CELL, ""), axis=None)
