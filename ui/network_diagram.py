"""The Playground's network diagram: every node a small map of what it computes, links coloured by weight.

One Altair layer chart, drawn in pixel coordinates (x and y scales map pixels to pixels): links under
the tiles, an invisible wider copy of every link to click on, the tiles (PNG data URLs in mark_image),
a frame per tile that carries the "node" selection, and the labels. It only draws; the maps and the
weights come from `models.network_weights`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from models.plane import constant_units
from ui.charts import BOUNDARY_TINTS, CLASS_COLOURS

MAX_NODES = 12  # nodes drawn per column; a larger layer shows its first 11 and a "+k more" label
TILE_SIZE = (16, 36)  # smallest and largest tile side, px: tiles shrink to fit the columns into the width
LABEL_HEIGHT = 12  # px under a tile for its label
ROW_GAP = 6  # px between a label and the next tile
HEADER_HEIGHT = 18  # px above the columns for "inputs", "L1" ... "output"
LABEL_CHARS = 14  # input and output names longer than this are cut ("…"); the tooltip has them whole
CHAR_WIDTH = 6  # px per character of a label, a little over the theme font's average at 10 px
LEGEND_HEIGHT = 34  # px under the columns for the link colour legend (inside the view, so no autosize squeezes it)
LINK_WIDTH = (0.3, 4.0)  # stroke width, px, of a zero weight and of a weight at the clip quantile or above
TILE_SHARE = 0.42  # of the distance between columns: the rest is left for the links to fan out
LINK_CLIP_QUANTILE = 0.95  # weights above this quantile of |w| all get the widest stroke
HIT_WIDTH = 7  # px, the invisible stroke that catches a click on a link
HIGHLIGHT = "#d81b60"  # the selected node's frame and the selected link: a magenta apart from both weight colours
TEXT = "#8a8d93"  # labels: a grey that reads on the light and on the dark theme (Streamlit themes only axes)
FRAME = "#9aa0a6"  # a mid grey tile frame, visible on white and on a dark page
# Tile colours: TensorFlow Playground's orange and blue around the boundary chart's near-white, all
# opaque, so tiles read the same on light and dark pages; a flat node is hatched grey ("no picture").
TILE_NEGATIVE, TILE_ZERO, TILE_POSITIVE = (np.array(c, dtype="float32") for c in
                                           ((245, 147, 34), BOUNDARY_TINTS[1], (8, 119, 189)))
FLAT_GREY = np.array([120, 126, 134], dtype="uint8")
FLAT_STRIPE = np.array([104, 110, 118], dtype="uint8")
NODE_FIELDS = ("layer", "index")  # the "node" selection's fields
LINK_FIELDS = ("source_layer", "source_index", "target_layer", "target_index")  # the "link" selection's fields
LINK_COLOURS = alt.Scale(domain=["negative", "positive"], range=list(CLASS_COLOURS))


def signed_map_rgb(values: np.ndarray, centre: float = 0.0, scale: float | None = None) -> np.ndarray:
    """One node's (R, R) map (rows = x2) as an (R, R, 3) uint8 picture with x2 pointing up.

    Orange below `centre`, near-white at it, blue above, full colour at `scale` away (None: the map's
    own largest distance from the centre). A map constant over the plane is hatched grey.
    """
    r = values.shape[0]
    if constant_units(values[None])[0]:
        stripes = ((np.arange(r)[:, None] + np.arange(r)[None, :]) // max(2, r // 6)) % 2 == 0  # diagonal bands
        return np.where(stripes[..., None], FLAT_STRIPE, FLAT_GREY)
    shifted = values[::-1] - centre  # top row = largest x2
    scale = float(np.max(np.abs(shifted))) if scale is None else scale
    t = np.clip(shifted / max(scale, 1e-12), -1, 1)[..., None]  # (R, R, 1)
    rgb = np.where(t < 0, TILE_ZERO + (TILE_NEGATIVE - TILE_ZERO) * -t, TILE_ZERO + (TILE_POSITIVE - TILE_ZERO) * t)
    return np.round(rgb).astype("uint8")


def png_data_url(rgb: np.ndarray) -> str:
    """An (H, W, 3) uint8 picture as a PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def node_picture(values: np.ndarray, output_units: int | None = None) -> np.ndarray:
    """The picture of one node as the diagram draws it (also for showing a selected node large).

    Inputs and hidden units are each on their own scale, to show their shape. An output node has a
    fixed scale: a softmax probability (`output_units` > 1) is white at 0.5, orange towards 0 and blue
    towards 1, like the boundary chart; a regression output (`output_units` == 1) is white at 0 with
    full colour at +-1, the range of the targets.
    """
    if output_units is None:
        return signed_map_rgb(values)
    return signed_map_rgb(values, 0.5, 0.5) if output_units > 1 else signed_map_rgb(values, 0.0, 1.0)


@dataclass(frozen=True)
class _Layout:
    """Where things go, in px: column centres, tile side, row pitch and each column's top tile centre."""

    xs: np.ndarray  # (C,) column centres
    tile: int
    pitch: int  # vertical distance between tile centres
    tops: np.ndarray  # (C,) centre y of each column's first drawn tile
    height: int
    short_labels: bool  # columns too close for "L2 · n3" under a tile: "n3", the header names the layer


def _layout(rows: Sequence[int], width: int, left_chars: int, right_chars: int) -> _Layout:
    """Columns spread over the width, less the input names left of the inputs and the output names right
    of the outputs."""
    columns = len(rows)
    left, right = (TILE_SIZE[1] / 2 + 6 + CHAR_WIDTH * n for n in (left_chars, right_chars))
    gap = (width - left - right) / max(columns - 1, 1)
    tile = int(np.clip(gap * TILE_SHARE, *TILE_SIZE))
    pitch = tile + LABEL_HEIGHT + ROW_GAP
    tallest = max(rows) * pitch
    xs = np.round(left + gap * np.arange(columns) if columns > 1 else np.array([width / 2]))  # whole px: crisp
    tops = np.round(HEADER_HEIGHT + tile / 2 + (tallest - np.asarray(rows) * pitch) / 2)  # columns centred vertically
    return _Layout(xs, tile, pitch, tops, int(HEADER_HEIGHT + tallest + LEGEND_HEIGHT), gap < 58)


def _drawn_units(units: int, keep: Sequence[int] = ()) -> list[int]:
    """The units a column draws: all up to MAX_NODES, else the first MAX_NODES - 1 (one row is "+k more").

    A unit in `keep` (the selected node or an end of the selected link) is drawn in place of the last one.
    """
    if units <= MAX_NODES:
        return list(range(units))
    shown = list(range(MAX_NODES - 1))
    for unit in keep:
        if unit not in shown and 0 <= unit < units:
            shown[-1] = unit
    return sorted(shown)


def network_diagram_chart(
    feature_names: Sequence[str],
    layer_sizes: Sequence[int],
    links: pd.DataFrame,
    maps: Sequence[np.ndarray],
    selected: Mapping | tuple[int, int] | None = None,
    width: int = 720,
    selected_link: Mapping | None = None,
    output_names: Sequence[str] | None = None,
) -> alt.LayerChart:
    """The network as a graph: inputs, every hidden unit and the outputs as map tiles, links between them.

    A column with more than MAX_NODES units draws its first MAX_NODES - 1 (and the selected node, if
    it is further down) and a "+k more" label ("+k" between crowded columns); the links of the units
    left out are not drawn. Tiles shrink from 36 to 16 px as columns crowd, so 10 hidden layers of 128
    still fit 540 px.

    Args:
        feature_names: the input nodes' names (column 0).
        layer_sizes: the hidden layers' units (config.hidden_layers); the sizes of all columns (inputs,
            hidden layers, outputs) are accepted too.
        links: `models.network_weights.network_links(model)`.
        maps: `models.network_weights.node_maps(model, grid)`: (units, R, R) per column; a grid of
            20-40 points per side is plenty for tiles (each tile is a PNG of the grid's size).
        selected: the selected node, {"layer": column, "index": unit} (as Streamlit returns the "node"
            selection) or (column, unit); framed in red.
        width: the chart's width in px (540-900 fit); the height follows from the tallest column.
        selected_link: the link being edited ({"source_layer", "source_index", "target_layer",
            "target_index"}), drawn in red over the others.
        output_names: names of the output nodes (class names); default "output" or "class k".

    Returns:
        A chart with two point-selection params for `st.altair_chart(chart, on_select="rerun",
        selection_mode=["node", "link"], key=...)`: "node" (fields `layer`, `index`; 0-based column and
        unit) and "link" (fields `source_layer`, `source_index`, `target_layer`, `target_index`).

    Raises:
        ValueError: the maps, names and sizes describe different networks.
    """
    sizes = _column_sizes(feature_names, layer_sizes, maps)
    selected = _node_key(selected)
    keep = [[] for _ in sizes]
    if selected is not None and 0 <= selected[0] < len(sizes):
        keep[selected[0]].append(selected[1])
    if selected_link is not None:
        keep[int(selected_link["source_layer"])].append(int(selected_link["source_index"]))
        keep[int(selected_link["target_layer"])].append(int(selected_link["target_index"]))
    drawn = [_drawn_units(n, k) for n, k in zip(sizes, keep, strict=True)]
    names = [[_cut(_node_name(c, u, len(sizes), sizes[c], feature_names, output_names)) for u in units]
             for c, units in enumerate(drawn)]
    layout = _layout([len(d) + (len(d) < n) for d, n in zip(drawn, sizes, strict=True)], width,
                     max(map(len, names[0])), max(map(len, names[-1])))
    nodes = _nodes_frame(feature_names, maps, drawn, layout, selected, output_names)
    edges = _links_frame(links, drawn, layout, selected_link)
    line, hits = _link_layers(edges, width, layout)
    return alt.layer(line, hits, *_node_layers(nodes, _texts_frame(sizes, drawn, layout), width, layout)).properties(
        width=width, height=layout.height, autosize=alt.AutoSizeParams(type="pad"), padding=0)


# The layers below are built from channel objects (alt.X, alt.StrokeValue), not shorthand strings or
# alt.value dicts: Altair parses each of those against its whole schema, which made one diagram take
# 100 ms to build instead of a few.


def _position(width: int, height: int, x: str = "x", y: str = "y") -> dict:
    """x and y channels that put data in px: a field value v is drawn v px from the left / top."""
    return {"x": alt.X(x, type="quantitative", scale=alt.Scale(domain=[0, width]), axis=None),
            "y": alt.Y(y, type="quantitative", scale=alt.Scale(domain=[0, height], reverse=True), axis=None)}


def _link_layers(edges: pd.DataFrame, width: int, layout: _Layout) -> tuple[alt.Chart, alt.Chart]:
    """The links, and an invisible wide copy of them that carries the "link" selection and the tooltip."""
    height = layout.height
    widest = float(np.clip(layout.tile / 10, 1.5, LINK_WIDTH[1]))  # thinner links between crowded columns
    link = alt.selection_point(name="link", fields=list(LINK_FIELDS), toggle=False)
    ends = {**_position(width, height), "x2": alt.X2("x2"), "y2": alt.Y2("y2")}
    chosen = {"test": "datum.chosen"}
    line = alt.Chart(edges).mark_rule(strokeCap="round").encode(
        **ends,
        color=alt.Color("sign", type="nominal", title="link weight", scale=LINK_COLOURS,
                        legend=alt.Legend(orient="none", direction="horizontal", titleOrient="left", legendX=0,
                                          legendY=height - LEGEND_HEIGHT + 10),
                        condition={**chosen, "value": HIGHLIGHT}),
        strokeWidth=alt.StrokeWidth("magnitude", type="quantitative", legend=None, scale=alt.Scale(
            domain=[0, _clip(edges.magnitude)], range=[LINK_WIDTH[0], widest], clamp=True),
            condition={**chosen, "value": max(widest, 2.5)}),
        opacity=alt.OpacityValue(0.75, condition=chosen | {"value": 1}),
        order=alt.Order("chosen", type="quantitative"),  # the selected link on top
    )
    # Vega does not pick a stroke of opacity 0, hence the nearly transparent stroke.
    hits = alt.Chart(edges).mark_rule(strokeWidth=HIT_WIDTH, strokeOpacity=0.01, color=FRAME).encode(
        **ends, tooltip=[alt.Tooltip("link", type="nominal", title="link"),
                         alt.Tooltip("weight", type="quantitative", title="weight", format=".4f")],
    ).add_params(link)
    return line, hits


def _node_layers(nodes: pd.DataFrame, texts: pd.DataFrame, width: int, layout: _Layout) -> list[alt.Chart]:
    """Tiles, their frames (which carry the "node" selection and the tooltip), labels and column notes."""
    node = alt.selection_point(name="node", fields=list(NODE_FIELDS), toggle=False)
    at = _position(width, layout.height)
    # Corners, not a centre and a size: Vega's SVG and canvas renderers (Streamlit picks one by spec size)
    # then agree on where an image goes.
    square = {**_position(width, layout.height, "x0", "y0"), "x2": alt.X2("x1"), "y2": alt.Y2("y1")}
    tiles = alt.Chart(nodes).mark_image(aspect=False).encode(**square, url=alt.Url("url", type="nominal"))
    picked = [{"param": "node", "empty": False}, {"test": "datum.selected"}]
    frames = alt.Chart(nodes).mark_rect(fill="transparent").encode(
        **square,
        stroke=alt.StrokeValue(FRAME, condition=[p | {"value": HIGHLIGHT} for p in picked]),
        strokeWidth=alt.StrokeWidthValue(1, condition=[p | {"value": 3} for p in picked]),
        tooltip=[alt.Tooltip("name", type="nominal", title="node"),
                 alt.Tooltip("low", type="quantitative", title="lowest output", format=".3f"),
                 alt.Tooltip("high", type="quantitative", title="highest output", format=".3f")],
    ).add_params(node)
    font = 9 if layout.tile < 28 else 10
    labels = alt.Chart(nodes).encode(**_position(width, layout.height, "label_x", "label_y"),
                                     text=alt.Text("label", type="nominal"))
    # Input names left of their tiles and output names right of theirs (as in TensorFlow Playground), hidden
    # units' names under their tiles.
    places = (("left", "right", "middle"), ("below", "center", "top"), ("right", "left", "middle"))
    sides = [labels.transform_filter(f"datum.side == '{side}'").mark_text(
        align=align, baseline=baseline, fontSize=font, color=TEXT) for side, align, baseline in places]
    notes = alt.Chart(texts).mark_text(baseline="middle", fontSize=font + 1, color=TEXT).encode(
        **at, text=alt.Text("text", type="nominal"))
    return [tiles, frames, *sides, notes]


def diagram_selection(state: Mapping | None) -> tuple[dict | None, dict | None]:
    """The clicked node and link from the chart's Streamlit selection state (None where nothing is picked).

    `state` is what `st.altair_chart(..., on_select="rerun", key=...)` returns or `st.session_state[key]`.
    A click on a node leaves `[{}]` in the "link" selection (Vega-Lite records a click on a mark without
    the link fields) and the other way round; those come back as None.
    """
    selection = (state or {}).get("selection", {})

    def complete(name: str, fields: tuple[str, ...]) -> dict | None:
        picked = (selection.get(name) or [{}])[0]
        return {f: int(picked[f]) for f in fields} if all(picked.get(f) is not None for f in fields) else None

    return complete("node", NODE_FIELDS), complete("link", LINK_FIELDS)


def _column_sizes(feature_names: Sequence[str], layer_sizes: Sequence[int], maps: Sequence[np.ndarray]) -> list[int]:
    sizes = [int(m.shape[0]) for m in maps]
    given = [int(n) for n in layer_sizes]
    if len(given) == len(sizes) - 2:
        given = [len(feature_names), *given, sizes[-1]]
    if given != sizes or sizes[0] != len(feature_names):
        raise ValueError(f"The node maps have {sizes} units per column, which does not match "
                         f"{len(feature_names)} input features and layer sizes {list(layer_sizes)}.")
    return sizes


def _node_key(selected: Mapping | tuple[int, int] | None) -> tuple[int, int] | None:
    if selected is None:
        return None
    if isinstance(selected, Mapping):
        return int(selected["layer"]), int(selected["index"])
    return int(selected[0]), int(selected[1])


def _node_name(column: int, unit: int, columns: int, units: int, feature_names, output_names) -> str:
    """A node's name: its feature, "L2 · n3" (units counted from 1, as the page's tiles), or its class."""
    if column == 0:
        return str(feature_names[unit])
    if column < columns - 1:
        return f"L{column} · n{unit + 1}"
    if output_names is not None:
        return str(output_names[unit])
    return "output" if units == 1 else f"class {unit}"


def _nodes_frame(feature_names, maps, drawn, layout: _Layout, selected, output_names) -> pd.DataFrame:
    """One row per drawn node: position, frame corners, tile URL, label and tooltip values."""
    rows = []
    last, half = len(maps) - 1, layout.tile / 2
    for column, (column_maps, units) in enumerate(zip(maps, drawn, strict=True)):
        for row, unit in enumerate(units):
            values = column_maps[unit]
            picture = node_picture(values, len(column_maps) if column == last else None)
            name = _node_name(column, unit, len(maps), len(column_maps), feature_names, output_names)
            x, y = float(layout.xs[column]), float(layout.tops[column] + row * layout.pitch)
            if column == 0:
                label = {"side": "left", "label": _cut(name), "label_x": x - half - 4, "label_y": y}
            elif column == last:
                label = {"side": "right", "label": _cut(name), "label_x": x + half + 4, "label_y": y}
            else:
                label = {"side": "below", "label": f"n{unit + 1}" if layout.short_labels else name, "label_x": x,
                         "label_y": y + half + 2}
            rows.append({"layer": column, "index": unit, "x": x, "y": y, "url": png_data_url(picture), "name": name,
                         **label, "selected": selected == (column, unit), "low": float(values.min()),
                         "high": float(values.max())})
    nodes = pd.DataFrame(rows)
    return nodes.assign(x0=nodes.x - half, x1=nodes.x + half, y0=nodes.y - half, y1=nodes.y + half).round(
        {"x": 1, "y": 1, "x0": 1, "x1": 1, "y0": 1, "y1": 1, "label_x": 1, "label_y": 1, "low": 4, "high": 4})


def _links_frame(links: pd.DataFrame, drawn, layout: _Layout, selected_link: Mapping | None) -> pd.DataFrame:
    """The links between drawn nodes, with their end points (tile edges) and sign, magnitude and label."""
    rows = {column: {unit: row for row, unit in enumerate(units)} for column, units in enumerate(drawn)}
    source_row = [rows[c].get(u) for c, u in zip(links.source_layer, links.source_index, strict=True)]
    target_row = [rows[c].get(u) for c, u in zip(links.target_layer, links.target_index, strict=True)]
    keep = np.array([s is not None and t is not None for s, t in zip(source_row, target_row, strict=True)], bool)
    edges = links.loc[keep, [*LINK_FIELDS, "weight"]].copy()
    source_row = np.array([r for r, k in zip(source_row, keep, strict=True) if k], dtype="float64")
    target_row = np.array([r for r, k in zip(target_row, keep, strict=True) if k], dtype="float64")
    half = layout.tile / 2
    edges["x"] = (layout.xs[edges.source_layer.to_numpy()] + half).round(1)
    edges["y"] = (layout.tops[edges.source_layer.to_numpy()] + source_row * layout.pitch).round(1)
    edges["x2"] = (layout.xs[edges.target_layer.to_numpy()] - half).round(1)
    edges["y2"] = (layout.tops[edges.target_layer.to_numpy()] + target_row * layout.pitch).round(1)
    edges["weight"] = edges.weight.round(4)
    edges["magnitude"] = edges.weight.abs()
    edges["sign"] = np.where(edges.weight < 0, "negative", "positive")
    edges["link"] = [f"{a}:{b + 1} → {c}:{d + 1}" for a, b, c, d in
                     edges[list(LINK_FIELDS)].itertuples(index=False)]
    edges["chosen"] = False
    if selected_link is not None:
        edges["chosen"] = np.logical_and.reduce(
            [edges[f].to_numpy() == int(selected_link[f]) for f in LINK_FIELDS])
    return edges.reset_index(drop=True)


def _texts_frame(sizes: Sequence[int], drawn, layout: _Layout) -> pd.DataFrame:
    """Column headers ("inputs", "L1", ..., "output") and the "+k more" labels of long columns."""
    last = len(sizes) - 1
    rows = [{"x": float(x), "y": HEADER_HEIGHT / 2, "text": "inputs" if c == 0 else "output" if c == last else f"L{c}"}
            for c, x in enumerate(layout.xs)]
    for column, (units, n) in enumerate(zip(drawn, sizes, strict=True)):
        if len(units) < n:
            rows.append({"x": float(layout.xs[column]), "y": float(layout.tops[column] + len(units) * layout.pitch),
                         "text": f"+{n - len(units)}" if layout.short_labels else f"+{n - len(units)} more"})
    return pd.DataFrame(rows).round({"x": 1, "y": 1})


def _cut(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def _clip(magnitude: pd.Series) -> float:
    """The |weight| that gets the widest stroke: a high quantile, so one big weight leaves the rest visible."""
    if magnitude.empty:
        return 1.0
    return max(float(np.quantile(magnitude, LINK_CLIP_QUANTILE)), 1e-6)
