"""Altair charts that compare several trained models (one per activation, optimiser, ...)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from models.engine import TrainResult
from ui.charts import history_frame


def activation_curve_chart(name: str, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saturated_below: float,
                           height: int = 300) -> alt.LayerChart:
    """f(x) and f'(x) on one axis, with the ranges where |f'| < `saturated_below` shaded."""
    curves = pd.concat([
        pd.DataFrame({"x": x, "value": y, "curve": "f(x)"}),
        pd.DataFrame({"x": x, "value": dy, "curve": "f'(x) (autodiff)"}),
    ])
    lines = (
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("x:Q", title="input z"),
            y=alt.Y("value:Q", title="value", scale=alt.Scale(domain=[-2, 4], clamp=True)),
            color=alt.Color("curve:N", title=None,
                            scale=alt.Scale(domain=["f(x)", "f'(x) (autodiff)"], range=["#0877bd", "#e4572e"]),
                            legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("x:Q", format=".2f"), "curve", alt.Tooltip("value:Q", format=".3f")],
        )
    )
    flat = pd.DataFrame(_runs(x, np.abs(dy) < saturated_below), columns=["start", "end"])
    shade = alt.Chart(flat).mark_rect(opacity=0.18, color="#888888").encode(x="start:Q", x2="end:Q")
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
            color=alt.Color("model:N", title=what, sort=list(results), scale=alt.Scale(scheme="tableau10")),
            strokeDash=alt.StrokeDash("split:N", title="data", sort=["train", "test"]),
            tooltip=["model", "split", "epoch", alt.Tooltip("loss:Q", format=".4f")],
        )
        .properties(height=height)
    )


def compared_gradient_chart(results: dict[str, TrainResult], what: str = "activation",
                            height: int = 200) -> alt.FacetChart:
    """Per-layer gradient norm over training, one panel per model, one shared log-scale y axis."""
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
            color=alt.Color("layer:N", title="layer", sort=layer_order, scale=alt.Scale(scheme="viridis")),
            tooltip=["model", "layer", "epoch", alt.Tooltip("norm:Q", format=".2e")],
        )
        .properties(height=height, width=220)
        .facet(column=alt.Column("model:N", title=what, sort=list(results)))
        .properties(title="Gradient norm per layer (input layer first)")
    )
