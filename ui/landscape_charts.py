"""Charts of loss landscapes: 1D curves, log-coloured surface maps with contours, paths and markers, a 3D
view, and the Hessian's extreme eigenvalues per model and over training."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import contourpy
import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Path colours picked to stand out on viridis (purple, blue, green, yellow); each path also gets a dark halo.
# Path colours picked to stand out on viridis (purple, blue, green, yellow) and, in the legend, on both a light and
# a dark page; each path also gets a dark halo on the map.
PATH_COLOURS = ("#e41a1c", "#ff7f00", "#f781bf", "#17becf", "#a65628", "#9467bd", "#bcbd22", "#2ca02c", "#1f77b4",
                "#7f7f7f", "#ff9896", "#c49c94", "#8c564b")
HALO = "#111111"  # under each path and around each marker, so both read on light and dark map colours
# A five-pointed star reaching past the unit box, so it looks as big as a square of the same size.
STAR = ("M0,-1.25L0.281,-0.386L1.19,-0.386L0.454,0.148L0.735,1.01L0,0.478L-0.735,1.01L-0.454,0.148L-1.19,-0.386"
        "L-0.281,-0.386Z")
MARKER_SHAPES = {"start": "square", "trained weights": "diamond", "known minimum": STAR}
SURFACE_WIDTH = 520  # whole chart, legends included: fits the main column at a 1000 px window with the sidebar open
PLOT_SIDE = SURFACE_WIDTH - 60  # the map itself, the rest is the y axis


@dataclass(frozen=True)
class LogColours:
    """Losses ready for a log colour scale over their whole finite range."""

    values: np.ndarray  # the losses, NaN where not finite
    overflowed: np.ndarray  # mask of the cells that were NaN or infinite
    low: float  # smallest positive finite loss (zeros are drawn at this colour); NaN if none is finite
    high: float  # largest finite loss
    raised: int  # cells at or below 0 drawn at `low` (a log scale has no place for them)

    @property
    def note(self) -> str:
        """What the colours leave out, in words for the chart's subtitle ('' when nothing is)."""
        notes = []
        if self.overflowed.any():
            count = int(self.overflowed.sum())
            notes.append(f"{count} cell{'s' * (count != 1)} overflowed (NaN/inf), drawn red")
        if self.raised:
            notes.append(f"{self.raised} cells at loss 0 drawn at the lowest colour")
        return "; ".join(notes)


def log_colours(loss: np.ndarray) -> LogColours:
    """Prepare `loss` for a log colour scale: every finite value keeps its own colour."""
    finite = np.isfinite(loss)
    positive = finite & (loss > 0)
    if not positive.any():
        return LogColours(np.full(loss.shape, np.nan), ~finite, float("nan"), float("nan"), 0)
    low, high = float(np.min(loss[positive])), float(np.max(loss[finite]))
    raised = finite & ~positive
    values = np.where(finite, np.maximum(loss, low), np.nan)
    return LogColours(values, ~finite, low, high, int(raised.sum()))


def contour_levels(low: float, high: float, most: int = 12) -> np.ndarray:
    """Round values strictly between `low` and `high`, evenly spread on a log scale: 1-2-5 per decade, or 1-3,
    or every decade, or every few decades, the finest that gives at most `most`; a range narrower than that gets
    five levels at two significant figures."""
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low or low <= 0:
        return np.array([])
    decades = np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
    for mantissas, every in (((1, 2, 5), 1), ((1, 3), 1), ((1,), 1), ((1,), 2), ((1,), 3), ((1,), 5)):
        levels = np.array([m * 10.0**d for d in decades[:: every] for m in mantissas])
        levels = levels[(levels > low) & (levels < high)]
        if len(levels) <= most:
            break
    if len(levels) >= 3:
        return levels
    inner = np.geomspace(low, high, 7)[1:-1]
    return np.unique([float(f"{v:.2g}") for v in inner])


def contour_lines(a: np.ndarray, b: np.ndarray, z: np.ndarray, level: float) -> list[np.ndarray]:
    """The iso-lines of `z` at `level`, by contourpy (matplotlib's contouring engine).

    Args:
        a, b: axis values; z[i, j] is at (a[j], b[i]). Cells with a non-finite corner get no line.

    Returns:
        One (N, 2) array of (a, b) points per connected line.
    """
    generator = contourpy.contour_generator(a, b, np.ma.masked_invalid(z), line_type="Separate")
    return [line for line in generator.lines(level) if len(line) > 1]


def interpolation_chart(alphas: np.ndarray, loss: np.ndarray, accuracy: np.ndarray, height: int = 340) -> alt.Chart:
    """Loss (log) and accuracy along the straight line from the initial (0) to the final (1) weights."""
    data = pd.DataFrame({"alpha": alphas, "loss": np.where(np.isfinite(loss), loss, np.nan), "accuracy": accuracy})
    base = alt.Chart(data).encode(x=alt.X("alpha:Q", title="alpha (0 = initial weights, 1 = trained weights)"))
    loss_line = base.mark_line(color="#3b8fd9", strokeWidth=2.5).encode(
        y=alt.Y("loss:Q", title="loss (log)", scale=alt.Scale(type="log"), axis=alt.Axis(titleColor="#3b8fd9")),
        tooltip=[alt.Tooltip("alpha:Q", format=".2f"), alt.Tooltip("loss:Q", format=".4g"),
                 alt.Tooltip("accuracy:Q", format=".1%")],
    )
    acc_line = base.mark_line(color="#e4572e", strokeDash=[4, 3], strokeWidth=2).encode(
        y=alt.Y("accuracy:Q", title="accuracy (dashed)", axis=alt.Axis(format="%", titleColor="#e4572e"),
                scale=alt.Scale(domain=[0, 1])),
    )
    marks = pd.DataFrame({"alpha": [0.0, 1.0], "label": ["initial", "trained"]})
    rules = alt.Chart(marks).mark_rule(strokeDash=[2, 2], color="#888888").encode(x="alpha:Q", tooltip=["label"])
    return (
        alt.layer(rules, loss_line, acc_line)
        .resolve_scale(y="independent")
        .properties(height=height, title="Loss along the line from initial to trained weights")
    )


def _cells(a: np.ndarray, b: np.ndarray, loss: np.ndarray, colours: LogColours) -> pd.DataFrame:
    """One rectangle per grid point, centred on it."""
    ga, gb = np.meshgrid(a, b)
    step_a = float(a[1] - a[0]) if len(a) > 1 else 1.0
    step_b = float(b[1] - b[0]) if len(b) > 1 else 1.0
    cells = pd.DataFrame({"a": ga.ravel() - step_a / 2, "b": gb.ravel() - step_b / 2,
                          "loss": colours.values.ravel(), "raw": loss.ravel(), "diverged": colours.overflowed.ravel()})
    cells["a2"], cells["b2"] = cells.a + step_a, cells.b + step_b
    return cells


def _contour_layer(a, b, colours: LogColours, x, y) -> tuple[alt.Chart | None, np.ndarray]:
    levels = contour_levels(colours.low, colours.high)
    log_z = np.log10(colours.values)
    rows = [pd.DataFrame(line, columns=["a", "b"]).assign(level=level, line=f"{k}-{n}", i=np.arange(len(line)))
            for k, level in enumerate(levels) for n, line in enumerate(contour_lines(a, b, log_z, np.log10(level)))]
    if not rows:
        return None, levels
    lines = pd.concat(rows, ignore_index=True)
    layer = alt.Chart(lines).mark_line(color="white", strokeWidth=1, opacity=0.55).encode(
        x=x, y=y, detail="line:N", order="i:Q",
        tooltip=[alt.Tooltip("level:Q", title="contour: loss", format=".3g")])
    return layer, levels


def _path_layers(paths: dict[str, np.ndarray], x, y) -> list[alt.Chart]:
    rows = [{"path": name, "step": i, "a": float(p[i, 0]), "b": float(p[i, 1])}
            for name, p in paths.items() for i in range(len(p))]
    data = pd.DataFrame(rows)
    colour = alt.Color("path:N", title="path", sort=list(paths),
                       scale=alt.Scale(domain=list(paths), range=list(PATH_COLOURS[: len(paths)])),
                       legend=alt.Legend(orient="bottom", columns=2 if len(paths) > 2 else 1, symbolType="stroke",
                                         symbolStrokeWidth=3, labelLimit=150))
    # clip: a path that ran off the map (e.g. before it diverged) stops at the map's edge
    halo = alt.Chart(data).mark_line(color=HALO, strokeWidth=4.5, opacity=0.7, clip=True).encode(
        x=x, y=y, order="step:Q", detail="path:N")
    line = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=16), strokeWidth=2, clip=True).encode(
        x=x, y=y, order="step:Q", color=colour, tooltip=["path", "step"])
    return [halo, line]


def _marker_layer(markers: dict[str, np.ndarray], x, y) -> alt.Chart:
    rows = [{"marker": kind, "a": float(pt[0]), "b": float(pt[1])}
            for kind, points in markers.items() for pt in np.atleast_2d(points)]
    kinds = list(markers)
    # Shape, fill and outline all come from the same field, so the one legend they share draws each symbol
    # exactly as the marks are drawn: white, dark outline, its own shape.
    legend = alt.Legend(title="marker", orient="bottom", symbolSize=130, symbolStrokeWidth=1.5, symbolOpacity=1,
                        labelOffset=6)

    def channel(kind, values):
        return kind("marker:N", sort=kinds, scale=alt.Scale(domain=kinds, range=values), legend=legend)

    return alt.Chart(pd.DataFrame(rows)).mark_point(filled=True, strokeWidth=1.5, size=130, opacity=1,
                                                    clip=True).encode(
        x=x, y=y, shape=channel(alt.Shape, [MARKER_SHAPES[k] for k in kinds]),
        fill=channel(alt.Fill, ["white"] * len(kinds)), stroke=channel(alt.Stroke, [HALO] * len(kinds)),
        tooltip=["marker", alt.Tooltip("a:Q", format=".3g"), alt.Tooltip("b:Q", format=".3g")])


def surface_chart(a: np.ndarray, b: np.ndarray, loss: np.ndarray, paths: dict[str, np.ndarray] | None = None,
                  markers: dict[str, np.ndarray] | None = None,
                  axis_titles: tuple[str, str] = ("direction 1", "direction 2"), title: str = "Loss surface",
                  colour_title: str = "loss") -> alt.LayerChart:
    """A (len(b), len(a)) loss grid on a log colour scale over its whole finite range, with contour lines.

    Non-finite cells are drawn red and counted in the subtitle.

    Args:
        a, b: axis values; loss[i, j] is at (a[j], b[i]).
        paths: label -> (T, 2) coordinates of trajectories drawn on top, each in its own colour.
        markers: kind (a key of MARKER_SHAPES) -> (N, 2) points, drawn white with a dark outline.
        colour_title: what the colours measure.
    """
    colours = log_colours(loss)
    cells = _cells(a, b, loss, colours)
    x = alt.X("a:Q", title=axis_titles[0], scale=alt.Scale(domain=[float(a[0]), float(a[-1])], nice=False))
    y = alt.Y("b:Q", title=axis_titles[1], scale=alt.Scale(domain=[float(b[0]), float(b[-1])], nice=False))
    domain = [colours.low, colours.high] if np.isfinite(colours.low) else alt.Undefined
    heat = alt.Chart(cells[~cells.diverged]).mark_rect(strokeWidth=0).encode(
        x=x, x2="a2:Q", y=y, y2="b2:Q",
        color=alt.Color("loss:Q", title=f"{colour_title} (log)",
                        scale=alt.Scale(type="log", scheme="viridis", domain=domain, nice=False),
                        legend=alt.Legend(orient="top", direction="horizontal", gradientLength=260,
                                          format=".2g", tickCount=5)),
        tooltip=[alt.Tooltip("a:Q", format=".3f"), alt.Tooltip("b:Q", format=".3f"),
                 alt.Tooltip("raw:Q", title=colour_title, format=".4g")],
    )
    layers = [heat]
    if colours.overflowed.any():
        layers.append(alt.Chart(cells[cells.diverged].assign(note="diverged (NaN/inf)")).mark_rect(
            color="#d62728", opacity=0.85).encode(x=x, x2="a2:Q", y=y, y2="b2:Q", tooltip=["note"]))
    contours, levels = _contour_layer(a, b, colours, x, y)
    if contours is not None:
        layers.append(contours)
    if paths:
        layers += _path_layers(paths, x, y)
    if markers:
        layers.append(_marker_layer(markers, x, y))
    subtitle = [f"colour: log {colour_title} from {colours.low:.3g} to {colours.high:.3g}"
                if np.isfinite(colours.low) else "no finite value to colour"]
    if len(levels):
        subtitle.append("white lines: " + colour_title + " = " + ", ".join(f"{v:.3g}" for v in levels))
    if colours.note:
        subtitle.append(colours.note)
    path_rows = (len(paths) if len(paths) <= 2 else (len(paths) + 1) // 2) if paths else 0
    legend_rows = max(path_rows, 1 if markers else 0)
    # Heights outside the plot (measured in Chromium): title, subtitle lines, colour bar, x axis, legends below.
    height = PLOT_SIDE + 220 + 15 * len(subtitle) + (25 + 18 * legend_rows if legend_rows else 0)
    # The subtitle's grey is chosen to read on both the light and the dark theme (Streamlit themes only the title).
    return alt.layer(*layers).properties(
        width=SURFACE_WIDTH, height=height,
        title=alt.Title(title, subtitle=subtitle, subtitleFontSize=11, subtitleLineHeight=15, subtitleColor="#8a8d93"))


def surface_3d(a: np.ndarray, b: np.ndarray, loss: np.ndarray, title: str = "Loss surface (3D, log10)") -> go.Figure:
    """An interactive 3D view of log10(loss); non-finite cells are left as holes."""
    colours = log_colours(loss)
    figure = go.Figure(go.Surface(x=a, y=b, z=np.log10(colours.values), colorscale="Viridis",
                                  colorbar=dict(title="log10 loss")))
    figure.update_layout(title=title, height=520, margin=dict(l=0, r=0, t=40, b=0),
                         scene=dict(xaxis_title="direction 1", yaxis_title="direction 2", zaxis_title="log10 loss"))
    return figure


EIGEN_COLOURS = alt.Scale(domain=["top (sharpness)", "bottom (most negative)"], range=["#e4572e", "#3b8fd9"])


def sharpness_chart(rows: list[dict]) -> alt.LayerChart:
    """Top and bottom Hessian eigenvalue per model: a dot for each, joined by a rule.

    Args:
        rows: one per model, with "model", "top" and "bottom".
    """
    data = pd.DataFrame(rows)
    long = data.melt(id_vars=["model"], value_vars=["top", "bottom"], var_name="end", value_name="eigenvalue")
    long["end"] = long["end"].map({"top": "top (sharpness)", "bottom": "bottom (most negative)"})
    y = alt.Y("model:N", title=None, sort=list(data.model), axis=alt.Axis(labelLimit=260))
    rule = alt.Chart(data).mark_rule(color="#888888", strokeWidth=2).encode(
        x=alt.X("bottom:Q", title="Hessian eigenvalue"), x2="top:Q", y=y)
    dots = alt.Chart(long).mark_point(filled=True, size=120, opacity=1).encode(
        x="eigenvalue:Q", y=y, color=alt.Color("end:N", title=None, scale=EIGEN_COLOURS,
                                               legend=alt.Legend(orient="bottom")),
        tooltip=["model", "end", alt.Tooltip("eigenvalue:Q", format=".4g")])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[2, 2], color="#888888").encode(x="x:Q")
    # Heights outside the plot: title, x axis and legend, about 130 px.
    return alt.layer(zero, rule, dots).properties(height=130 + 36 * len(data),
                                                  title="Both ends of the Hessian's spectrum, per model")


def sharpness_over_training_chart(epochs: list[int], tops: list[float], bottoms: list[float],
                                  title: str) -> alt.LayerChart:
    """Top and bottom Hessian eigenvalue at snapshots taken during training."""
    data = pd.DataFrame({"epoch": epochs, "top (sharpness)": tops, "bottom (most negative)": bottoms})
    long = data.melt(id_vars=["epoch"], var_name="end", value_name="eigenvalue")
    base = alt.Chart(long).encode(
        x=alt.X("epoch:Q", title="epoch (0 = initial weights)"),
        y=alt.Y("eigenvalue:Q", title="Hessian eigenvalue"),
        color=alt.Color("end:N", title=None, scale=EIGEN_COLOURS, legend=alt.Legend(orient="bottom")),
        tooltip=["epoch", "end", alt.Tooltip("eigenvalue:Q", format=".4g")])
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(strokeDash=[2, 2], color="#888888").encode(y="y:Q")
    return alt.layer(zero, base.mark_line(strokeWidth=2.5, point=alt.OverlayMarkDef(size=50))).properties(
        height=320, title=title)
