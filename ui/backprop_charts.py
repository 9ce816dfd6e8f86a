"""Charts for the forward-pass and backpropagation pages."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ui.charts import LAYER_COLOURS

# A mid blue with contrast against white and against Streamlit's dark background (#0e1117) alike.
LINE_BLUE = "#2f86d6"
ORANGE = "#f59322"


def value_strip_chart(values: np.ndarray, title: str, height: int = 230) -> alt.Chart:
    """One dense layer's output: a bar per unit, blue positive and orange negative."""
    data = pd.DataFrame({"unit": np.arange(len(values)), "value": values.astype("float64")})
    return (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X("unit:O", title="unit", axis=alt.Axis(labels=len(values) <= 40, labelAngle=0)),
            y=alt.Y("value:Q", title="output"),
            color=alt.condition(alt.datum.value >= 0, alt.value(LINE_BLUE), alt.value(ORANGE)),
            tooltip=["unit", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=height)
    )


def probability_chart(names: list[str], probabilities: np.ndarray, height: int = 280) -> alt.Chart:
    """The softmax output: one bar per class, the predicted class highlighted."""
    data = pd.DataFrame({"class": names, "probability": probabilities.astype("float64")})
    best = names[int(np.argmax(probabilities))]
    return (
        alt.Chart(data, title="Softmax: probability of each class")
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=names, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.condition(alt.datum["class"] == best, alt.value(LINE_BLUE), alt.value("#9aa5b1")),
            tooltip=["class", alt.Tooltip("probability:Q", format=".2%")],
        )
        .properties(height=height)
    )


LEGEND_ROW_PX, LEGEND_TITLE_PX = 16, 50  # a right-hand key's row (Vega-Lite's default symbols) and its title + margins


def series_chart(x: list | np.ndarray, series: dict[str, np.ndarray], title: str, y_title: str,
                 log: bool = False, x_title: str = "epoch", height: int = 280) -> alt.Chart:
    """Several named series over a shared x axis (e.g. one line per layer). A long key (a deep residual CNN
    has 20-odd weight layers) makes the chart taller rather than run past its foot, and more than ten
    lines take a 20-colour scheme so no two share a colour."""
    height = max(height, LEGEND_ROW_PX * len(series) + LEGEND_TITLE_PX)
    scheme = LAYER_COLOURS if len(series) <= 10 else "tableau20"
    rows = [{"x": float(xi), "series": name, "y": float(max(v, 1e-12) if log else v)}
            for name, values in series.items() for xi, v in zip(x, values, strict=False)]
    return (
        alt.Chart(pd.DataFrame(rows, columns=["x", "series", "y"]), title=title)
        .mark_line(point=len(x) < 25)
        .encode(
            x=alt.X("x:Q", title=x_title),
            y=alt.Y("y:Q", title=y_title, scale=alt.Scale(type="log") if log else alt.Scale()),
            color=alt.Color("series:N", title="layer", sort=list(series), scale=alt.Scale(scheme=scheme),
                            legend=None if len(series) == 1 else alt.Legend()),  # one line needs no key
            tooltip=["series", alt.Tooltip("x:Q", title=x_title), alt.Tooltip("y:Q", format=".3g")],
        )
        .properties(height=height)
    )


# Opaque blues from the outer (100%) band to the inner (38%) one: each band shows against the page in light and
# dark themes alike (translucent dark blue vanished on a dark page), and the orange median stands out on all four.
BAND_COLOURS = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd")
MEDIAN_COLOUR = "#f58518"


def distribution_chart(epochs: list[int], quantiles: dict[str, np.ndarray], title: str, height: int = 150,
                       panel_width: int = 190, columns: int = 2) -> alt.FacetChart:
    """TensorBoard-style distributions: nested bands between quantile pairs over epochs, one panel per layer.

    The panels wrap `columns` to a row so the chart stays about 520 pixels wide, whatever the number of layers.
    """
    rows = []
    for name, q in quantiles.items():  # q: (epochs, 9) quantiles 0, 7, 16, 31, 50, 69, 84, 93, 100 %
        for i, epoch in enumerate(epochs):
            for band, (lo, hi) in enumerate(((0, 8), (1, 7), (2, 6), (3, 5))):
                rows.append({"layer": name, "epoch": epoch, "band": band, "low": q[i, lo], "high": q[i, hi],
                             "median": q[i, 4]})
    data = pd.DataFrame(rows)
    bands = alt.Chart().mark_area().encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("low:Q", title="value"), y2="high:Q",
        color=alt.Color("band:O", scale=alt.Scale(domain=[0, 1, 2, 3], range=list(BAND_COLOURS)), legend=None))
    median = alt.Chart().mark_line(color=MEDIAN_COLOUR, strokeWidth=2).encode(
        x="epoch:Q", y="median:Q", tooltip=["layer:N", "epoch:Q", alt.Tooltip("median:Q", format=".3g")])
    return (
        alt.layer(bands, median, data=data)
        .properties(width=panel_width, height=height)
        .facet(facet=alt.Facet("layer:N", title=None, sort=list(quantiles)), columns=min(columns, len(quantiles)))
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def lr_range_chart(rates: np.ndarray, losses: np.ndarray, suggested: tuple[float, float] | None, height: int = 320):
    """Smoothed loss against an exponentially growing learning rate: the suggested range shaded, or, when the
    test found none, the words "no clear range" over the curve."""
    data = pd.DataFrame({"learning rate": rates, "loss": losses})
    line = alt.Chart(data).mark_line(color=LINE_BLUE).encode(
        x=alt.X("learning rate:Q", scale=alt.Scale(type="log"), title="learning rate (log)"),
        y=alt.Y("loss:Q", title="smoothed training loss", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("learning rate:Q", format=".2e"), alt.Tooltip("loss:Q", format=".4f")],
    )
    if suggested is None:
        middle = float(np.sqrt(rates[0] * rates[-1])) if len(rates) else 1.0
        top = float(np.max(losses)) if len(losses) else 1.0
        mark = alt.Chart(pd.DataFrame({"row": [0]})).mark_text(
            text="no clear range", fontSize=16, baseline="top", color="#888888").encode(x=alt.datum(middle),
                                                                                        y=alt.datum(top))
    else:
        mark = alt.Chart(pd.DataFrame({"low": [suggested[0]], "high": [suggested[1]]})).mark_rect(
            opacity=0.3, color="#2ca02c").encode(x="low:Q", x2="high:Q",
                                                  tooltip=[alt.Tooltip("low:Q", format=".2e", title="from"),
                                                           alt.Tooltip("high:Q", format=".2e", title="to")])
    return alt.layer(mark, line).properties(height=height, title="Learning-rate range test")


def weight_step_chart(rows: list[dict], height: int = 260) -> alt.LayerChart:
    """Each weight before (grey) and after (blue) one gradient step, joined by the step -lr*g itself.

    Args:
        rows: one per weight, with "weight" (name), "value" (before) and "after step".
    """
    data = pd.DataFrame(rows)[["weight", "value", "after step"]].rename(columns={"value": "before"})
    order = list(data.weight)
    x = alt.X("weight:N", sort=order, title=None, axis=alt.Axis(labelAngle=0 if len(order) <= 12 else -45))
    step = alt.Chart(data).mark_rule(color="#9aa0a6", strokeWidth=2).encode(
        x=x, y=alt.Y("before:Q", title="weight value"), y2="after step:Q")
    long = data.melt("weight", var_name="when", value_name="value")
    dots = alt.Chart(long).mark_point(filled=True, size=70).encode(
        x=x, y="value:Q",
        color=alt.Color("when:N", title=None, scale=alt.Scale(domain=["before", "after step"],
                                                              range=["#9aa0a6", "#2f86d6"]),
                        legend=alt.Legend(orient="top")),
        tooltip=["weight", "when", alt.Tooltip("value:Q", format=".5f")])
    return alt.layer(step, dots).properties(height=height, title="Every weight before and after the step")
