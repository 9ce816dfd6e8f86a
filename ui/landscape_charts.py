"""Charts of loss landscapes: 1D curves, log-scaled surface heatmaps with paths, a 3D view."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go

CLIP_FACTOR = 1e3  # losses above CLIP_FACTOR x the smallest finite loss on the map are clipped


def clip_losses(loss: np.ndarray, factor: float | None = CLIP_FACTOR) -> tuple[np.ndarray, np.ndarray, float]:
    """Clip exploding values (above `factor` x the smallest) so the colour scale stays readable.

    Returns:
        clipped losses (NaN where not finite), a mask of the cells that were not finite, the clip value.
    """
    finite = np.isfinite(loss)
    if not finite.any():
        return np.full_like(loss, np.nan), ~finite, float("nan")
    floor = max(float(np.min(loss[finite])), 1e-6)
    top = float(np.max(loss[finite]))
    ceiling = top if factor is None else min(top, floor * factor)
    clipped = np.where(finite, np.clip(loss, floor, ceiling), np.nan)
    return clipped, ~finite, ceiling


def interpolation_chart(alphas: np.ndarray, loss: np.ndarray, accuracy: np.ndarray, height: int = 340) -> alt.Chart:
    """Loss (log) and accuracy along the straight line from the initial (0) to the final (1) weights."""
    data = pd.DataFrame({"alpha": alphas, "loss": np.where(np.isfinite(loss), loss, np.nan), "accuracy": accuracy})
    base = alt.Chart(data).encode(x=alt.X("alpha:Q", title="alpha (0 = initial weights, 1 = trained weights)"))
    loss_line = base.mark_line(color="#0877bd").encode(
        y=alt.Y("loss:Q", title="loss (log)", scale=alt.Scale(type="log"), axis=alt.Axis(titleColor="#0877bd")),
        tooltip=[alt.Tooltip("alpha:Q", format=".2f"), alt.Tooltip("loss:Q", format=".4g"),
                 alt.Tooltip("accuracy:Q", format=".1%")],
    )
    acc_line = base.mark_line(color="#e4572e", strokeDash=[4, 3]).encode(
        y=alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format="%", titleColor="#e4572e"),
                scale=alt.Scale(domain=[0, 1])),
    )
    marks = pd.DataFrame({"alpha": [0.0, 1.0], "label": ["initial", "trained"]})
    rules = alt.Chart(marks).mark_rule(strokeDash=[2, 2], color="#888888").encode(x="alpha:Q", tooltip=["label"])
    return (
        alt.layer(rules, loss_line, acc_line)
        .resolve_scale(y="independent")
        .properties(height=height, title="Loss along the line from initial to trained weights")
    )


def surface_chart(a: np.ndarray, b: np.ndarray, loss: np.ndarray, paths: dict[str, np.ndarray] | None = None,
                  axis_titles: tuple[str, str] = ("direction 1", "direction 2"), size: int = 420,
                  title: str = "Loss surface", clip_factor: float | None = CLIP_FACTOR) -> alt.LayerChart:
    """Log-scaled heatmap of a (len(b), len(a)) loss grid; non-finite cells are drawn dark and named.

    Args:
        a, b: axis values; loss[i, j] is at (a[j], b[i]).
        paths: label -> (T, 2) coordinates of trajectories to draw on top, start marked.
        clip_factor: see `clip_losses`; None keeps every finite value.
    """
    clipped, bad, _ = clip_losses(loss, clip_factor)
    ga, gb = np.meshgrid(a, b)
    step_a = float(a[1] - a[0]) if len(a) > 1 else 1.0
    step_b = float(b[1] - b[0]) if len(b) > 1 else 1.0
    cells = pd.DataFrame({"a": ga.ravel() - step_a / 2, "b": gb.ravel() - step_b / 2, "loss": clipped.ravel(),
                          "raw": loss.ravel(), "diverged": bad.ravel()})
    cells["a2"], cells["b2"] = cells.a + step_a, cells.b + step_b
    x = alt.X("a:Q", title=axis_titles[0], scale=alt.Scale(domain=[float(a[0]), float(a[-1])], nice=False))
    y = alt.Y("b:Q", title=axis_titles[1], scale=alt.Scale(domain=[float(b[0]), float(b[-1])], nice=False))
    heat = alt.Chart(cells[~cells.diverged]).mark_rect(strokeWidth=0).encode(
        x=x, x2="a2:Q", y=y, y2="b2:Q",
        color=alt.Color("loss:Q", title="loss (log)", scale=alt.Scale(type="log", scheme="viridis")),
        tooltip=[alt.Tooltip("a:Q", format=".3f"), alt.Tooltip("b:Q", format=".3f"),
                 alt.Tooltip("raw:Q", title="loss", format=".4g")],
    )
    layers = [heat]
    if bad.any():
        layers.append(alt.Chart(cells[cells.diverged].assign(note="diverged (NaN/inf)")).mark_rect(
            color="#d62728", opacity=0.8).encode(x=x, x2="a2:Q", y=y, y2="b2:Q", tooltip=["note"]))
    if paths:
        rows = [{"path": name, "step": i, "a": float(p[i, 0]), "b": float(p[i, 1])}
                for name, p in paths.items() for i in range(len(p))]
        path_data = pd.DataFrame(rows)
        colour = alt.Color("path:N", title="path", scale=alt.Scale(scheme="set1"))
        # clip: a path that ran off the map (e.g. before it diverged) stops at the map's edge
        layers.append(alt.Chart(path_data).mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=2, clip=True)
                      .encode(x="a:Q", y="b:Q", order="step:Q", color=colour, tooltip=["path", "step"]))
        layers.append(alt.Chart(path_data[path_data.step == 0]).mark_point(shape="square", size=90, filled=True,
                                                                            color="white", clip=True)
                      .encode(x="a:Q", y="b:Q"))
    # Streamlit sizes the whole chart, legends included: leave room beside the square plot.
    return alt.layer(*layers).properties(width=size + 160, height=size + 60, title=title)


def surface_3d(a: np.ndarray, b: np.ndarray, loss: np.ndarray, title: str = "Loss surface (3D, log10)") -> go.Figure:
    """An interactive 3D view of log10(loss); non-finite cells are left as holes."""
    clipped, _, _ = clip_losses(loss)
    figure = go.Figure(go.Surface(x=a, y=b, z=np.log10(clipped), colorscale="Viridis",
                                  colorbar=dict(title="log10 loss")))
    figure.update_layout(title=title, height=520, margin=dict(l=0, r=0, t=40, b=0),
                         scene=dict(xaxis_title="direction 1", yaxis_title="direction 2", zaxis_title="log10 loss"))
    return figure
