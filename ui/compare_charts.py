"""Altair charts that compare several trained models (one per activation, optimiser, ...)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from models.engine import TrainResult
from ui.charts import history_frame

# Ten mid-lightness hues (d3's category10): every one reads on a white and on a dark page, unlike the pale or
# yellow members of other palettes.
MODEL_COLOURS = alt.Scale(scheme="category10")
CURVE_COLOURS = ("#2f86d6", "#e4572e")  # f(x) blue, f'(x) red: mid tones that read in both themes


def curve_domain(y: np.ndarray, dy: np.ndarray, pad: float = 0.05) -> list[float]:
    """The y-range of an activation chart: every value of f and f' with `pad` of the span to spare, so no curve is
    cut off into a false flat end."""
    low, high = float(min(np.min(y), np.min(dy))), float(max(np.max(y), np.max(dy)))
    margin = pad * max(high - low, 1e-6)
    return [low - margin, high + margin]


def activation_curve_chart(name: str, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saturated_below: float,
                           height: int = 260) -> alt.LayerChart:
    """f(x) and f'(x) on one axis fitted to both curves, with the ranges where |f'| < `saturated_below` shaded."""
    curves = pd.concat([
        pd.DataFrame({"x": x, "value": y, "curve": "f(x)"}),
        pd.DataFrame({"x": x, "value": dy, "curve": "f'(x) (autodiff)"}),
    ])
    lines = (
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("x:Q", title="input z", scale=alt.Scale(domain=[float(x[0]), float(x[-1])], nice=False)),
            y=alt.Y("value:Q", title="value", scale=alt.Scale(domain=curve_domain(y, dy), nice=False)),
            color=alt.Color("curve:N", title=None,
                            scale=alt.Scale(domain=["f(x)", "f'(x) (autodiff)"], range=list(CURVE_COLOURS)),
                            legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("x:Q", format=".2f"), "curve", alt.Tooltip("value:Q", format=".3f")],
        )
    )
    flat = pd.DataFrame(_runs(x, np.abs(dy) < saturated_below), columns=["start", "end"])
    shade = alt.Chart(flat).mark_rect(opacity=0.25, color="#888888").encode(x="start:Q", x2="end:Q")
    return alt.layer(shade, lines).properties(height=height, title=f"{name} and its slope")


def _runs(x: np.ndarray, flags: np.ndarray) -> list[tuple[float, float]]:
    """Contiguous x-intervals where `flags` is true."""
    out, start = [], None
    for xi, flag in zip(x, flags, strict=True):
        if flag and start is None:
            start = xi
        if not flag and start is not None:
            out.append((float(start), float(xi)))
            start = None
    if start is not None:
        out.append((float(start), float(x[-1])))
    return out


def confusion_chart(matrix: np.ndarray, class_names: tuple[str, ...], size: int = 300) -> alt.LayerChart:
    """Test-set confusion matrix: true class down, predicted class across, counts in the cells."""
    rows = [{"true": class_names[i], "predicted": class_names[j], "count": int(matrix[i, j])}
            for i in range(matrix.shape[0]) for j in range(matrix.shape[1])]
    data = pd.DataFrame(rows)
    order = list(class_names)
    base = alt.Chart(data).encode(
        x=alt.X("predicted:N", sort=order, title="predicted"),
        y=alt.Y("true:N", sort=order, title="true class"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), legend=None),
        tooltip=["true", "predicted", "count"],
    )
    labels = base.mark_text(fontSize=9).encode(
        text="count:Q",
        color=alt.condition(alt.datum.count > matrix.max() / 2, alt.value("white"), alt.value("#333333")),
    )
    return alt.layer(cells, labels).properties(width=size, height=size, title="Confusion matrix (test)")


def compared_loss_chart(results: dict[str, TrainResult], what: str = "activation", height: int = 360) -> alt.Chart:
    """Train (solid) and test (dashed) loss of every model on shared axes."""
    frames = [history_frame(r.history).assign(model=name) for name, r in results.items() if len(r.history)]
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["epoch", "loss", "split", "model"])
    return (
        alt.Chart(data, title="Loss per epoch")
        .mark_line()
        .encode(
            x=alt.X("epoch:Q", title="epoch"),
            y=alt.Y("loss:Q", title="mean loss (log)", scale=alt.Scale(type="log")),
            color=alt.Color("model:N", title=what, sort=list(results), scale=MODEL_COLOURS),
            strokeDash=alt.StrokeDash("split:N", title="data", sort=["train", "test"]),
            tooltip=["model", "split", "epoch", alt.Tooltip("loss:Q", format=".4f")],
        )
        .properties(height=height)
    )


def compared_gradient_chart(results: dict[str, TrainResult], what: str = "activation", height: int = 160,
                            panel_width: int = 140, columns: int = 3) -> alt.FacetChart:
    """Per-layer gradient norm over training, one panel per model, one shared log-scale y axis.

    The panels wrap `columns` to a row and the legend sits below them, so the chart stays under about 520 pixels
    wide for any number of models.
    """
    rows = []
    for name, r in results.items():
        norms = np.asarray(r.history.grad_norms)
        for j, layer in enumerate(r.layer_names):
            rows += [{"model": name, "layer": layer, "epoch": i + 1, "norm": float(max(norms[i, j], 1e-12))}
                     for i in range(len(norms))]
    data = pd.DataFrame(rows, columns=["model", "layer", "epoch", "norm"])
    layer_order = list(next(iter(results.values())).layer_names) if results else []
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("epoch:Q", title="epoch"),
            y=alt.Y("norm:Q", title="gradient L2 norm (log)", scale=alt.Scale(type="log")),
            color=alt.Color("layer:N", title="layer", sort=layer_order, scale=MODEL_COLOURS,
                            legend=alt.Legend(orient="bottom", columns=4)),
            tooltip=["model", "layer", "epoch", alt.Tooltip("norm:Q", format=".2e")],
        )
        .properties(height=height, width=panel_width)
        .facet(facet=alt.Facet("model:N", title=what, sort=list(results)), columns=max(1, min(columns, len(results))),
               spacing=12)
        .properties(title="Gradient norm per layer (input layer first)")
    )
