"""network_diagram_chart: one tile per node, one rule per link, sign colours, selections, layout and size."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ui.charts import CLASS_COLOURS
from ui.network_diagram import (
    CHAR_WIDTH,
    HIGHLIGHT,
    LINK_FIELDS,
    MAX_NODES,
    NODE_FIELDS,
    TILE_NEGATIVE,
    TILE_POSITIVE,
    TILE_ZERO,
    diagram_selection,
    network_diagram_chart,
    node_picture,
    signed_map_rgb,
)

R = 12  # grid points per side of the test maps
SPIRAL_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")


def network(n_inputs: int, hidden: tuple[int, ...], n_out: int = 2, seed: int = 0):
    """Links and maps in the shapes models.network_weights returns, for a network of these sizes."""
    rng = np.random.default_rng(seed)
    sizes = [n_inputs, *hidden, n_out]
    frames = []
    for column, (n_in, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        s, t = np.meshgrid(np.arange(n_in), np.arange(n), indexing="ij")
        frames.append(pd.DataFrame({"source_layer": column - 1, "source_index": s.ravel(), "target_layer": column,
                                    "target_index": t.ravel(), "weight": rng.normal(size=s.size),
                                    "layer_name": f"dense_{column}"}))
    maps = [rng.uniform(-1, 1, (n, R, R)).astype("float32") for n in sizes[:-1]]
    maps.append(rng.uniform(0, 1, (n_out, R, R)).astype("float32"))
    return pd.concat(frames, ignore_index=True), maps


def chart_spec(**kwargs) -> dict:
    hidden = kwargs.pop("hidden", (8, 8))
    features = kwargs.pop("features", ("x1", "x2"))
    links, maps = network(len(features), hidden)
    return network_diagram_chart(features, hidden, links, maps, **kwargs).to_dict()


def layer(spec: dict, mark: str, with_params: bool = False) -> tuple[dict, list[dict]]:
    """The one layer of this mark type (with or without selection params) and its data rows."""
    selecting = {view for p in spec.get("params", []) for view in p.get("views", [])}
    found = [v for v in spec["layer"] if v["mark"]["type"] == mark and (v.get("name") in selecting) == with_params]
    assert len(found) == 1, f"{len(found)} {mark} layers"
    return found[0], spec["datasets"][found[0]["data"]["name"]]


def test_one_image_per_node_and_one_rule_per_link():
    links, maps = network(2, (8, 8))
    spec = network_diagram_chart(["x1", "x2"], (8, 8), links, maps).to_dict()
    _, tiles = layer(spec, "image")
    assert len(tiles) == 2 + 8 + 8 + 2 and all(t["url"].startswith("data:image/png;base64,") for t in tiles)
    assert {(t["layer"], t["index"]) for t in tiles} == {(c, i) for c, n in enumerate((2, 8, 8, 2)) for i in range(n)}
    _, rules = layer(spec, "rule")
    assert len(rules) == len(links) == 2 * 8 + 8 * 8 + 8 * 2
    by_key = {tuple(r[f] for f in LINK_FIELDS): r["weight"] for r in rules}
    for row in links.itertuples():
        assert by_key[(row.source_layer, row.source_index, row.target_layer, row.target_index)] == round(row.weight, 4)


def test_links_are_coloured_by_sign_and_thickened_by_magnitude_clipped_at_a_quantile():
    links, maps = network(2, (8, 8))
    links.loc[0, "weight"] = 50.0  # one huge weight must not make every other link a hairline
    spec = network_diagram_chart(["x1", "x2"], (8, 8), links, maps).to_dict()
    line, rules = layer(spec, "rule")
    colour = line["encoding"]["color"]
    assert colour["field"] == "sign"
    assert colour["scale"] == {"domain": ["negative", "positive"], "range": list(CLASS_COLOURS)}
    assert all(r["sign"] == ("negative" if r["weight"] < 0 else "positive") for r in rules)
    width = line["encoding"]["strokeWidth"]
    assert width["field"] == "magnitude" and width["scale"]["clamp"] is True
    clip = width["scale"]["domain"][1]
    magnitudes = np.abs(links.weight.round(4))
    assert clip == pytest.approx(np.quantile(magnitudes, 0.95)) and clip < 5
    assert np.mean(magnitudes >= clip) <= 0.06


def test_node_and_link_selection_params():
    spec = chart_spec()
    frame, _ = layer(spec, "rect", with_params=True)
    hits, _ = layer(spec, "rule", with_params=True)
    params = {p["name"]: p for p in spec["params"]}
    node, link = params.pop("node"), params.pop("link")
    assert not params and node["views"] == [frame["name"]] and link["views"] == [hits["name"]]
    assert node["name"] == "node" and node["select"]["type"] == "point"
    assert node["select"]["fields"] == list(NODE_FIELDS) == ["layer", "index"]
    assert link["name"] == "link" and link["select"]["type"] == "point"
    assert link["select"]["fields"] == list(LINK_FIELDS)
    assert {t["title"] for t in hits["encoding"]["tooltip"]} == {"link", "weight"}


def test_the_selected_node_and_link_are_highlighted():
    spec = chart_spec(selected={"layer": 1, "index": 3},
                      selected_link={"source_layer": 1, "source_index": 2, "target_layer": 2, "target_index": 5})
    frame, nodes = layer(spec, "rect", with_params=True)
    assert [(n["layer"], n["index"]) for n in nodes if n["selected"]] == [(1, 3)]
    assert {"test": "datum.selected", "value": HIGHLIGHT} in frame["encoding"]["stroke"]["condition"]
    line, rules = layer(spec, "rule")
    assert [tuple(r[f] for f in LINK_FIELDS) for r in rules if r["chosen"]] == [(1, 2, 2, 5)]
    assert line["encoding"]["color"]["condition"] == {"test": "datum.chosen", "value": HIGHLIGHT}


def test_selection_from_streamlit_state():
    state = {"selection": {"node": [{"layer": 2, "index": 4}], "link": [{}]}}
    assert diagram_selection(state) == ({"layer": 2, "index": 4}, None)
    link = {"source_layer": 0, "source_index": 1, "target_layer": 1, "target_index": 0}
    assert diagram_selection({"selection": {"node": [{}], "link": [link]}}) == (None, link)
    assert diagram_selection(None) == (None, None)
    assert diagram_selection({"selection": {}}) == (None, None)


def test_labels_name_features_units_and_classes_and_long_names_are_cut():
    spec = chart_spec(features=("x1", "x2", "x1*x2"), output_names=("arm A", "a rather long class name"))
    labels = [v for v in spec["layer"] if v["mark"]["type"] == "text"][0]  # node labels, then column notes
    nodes = spec["datasets"][labels["data"]["name"]]
    names = {(n["layer"], n["index"]): n["name"] for n in nodes}
    assert names[(0, 2)] == "x1*x2" and names[(2, 2)] == "L2 · n3" and names[(3, 0)] == "arm A"
    assert names[(3, 1)] == "a rather long class name"
    assert [n["label"] for n in nodes if (n["layer"], n["index"]) == (3, 1)] == ["a rather long…"]
    sides = {(n["layer"], n["side"]) for n in nodes}
    assert {side for layer, side in sides if layer == 0} == {"left"}
    assert {side for layer, side in sides if layer == 3} == {"right"}


@pytest.mark.parametrize("width", [540, 720, 900])
@pytest.mark.parametrize("hidden", [(8, 8), (32,) * 6, (128,) * 10])
def test_layout_fits_the_width_and_large_layers_are_cut_with_a_more_label(width, hidden):
    spec = chart_spec(hidden=hidden, width=width)
    assert spec["width"] == width
    _, nodes = layer(spec, "rect", with_params=True)
    assert min(n["x0"] for n in nodes) >= 0 and max(n["x1"] for n in nodes) <= width
    assert min(n["y0"] for n in nodes) >= 0 and max(n["label_y"] for n in nodes) <= spec["height"]
    assert min(n["label_x"] - CHAR_WIDTH * len(n["label"]) for n in nodes if n["side"] == "left") >= 0
    assert max(n["label_x"] + CHAR_WIDTH * len(n["label"]) for n in nodes if n["side"] == "right") <= width
    columns = [sum(n["layer"] == c for n in nodes) for c in range(len(hidden) + 2)]
    assert columns == [2, *[min(h, MAX_NODES - 1) if h > MAX_NODES else h for h in hidden], 2]
    notes = [t["text"] for t in spec["datasets"][[v for v in spec["layer"] if v["mark"]["type"] == "text"][-1]
                                                  ["data"]["name"]]]
    cut = [h for h in hidden if h > MAX_NODES]
    assert sum(t.startswith("+") for t in notes) == len(cut)
    tiles = {n["x1"] - n["x0"] for n in nodes}
    assert len(tiles) == 1 and 16 <= tiles.pop() <= 36


def test_links_of_units_left_out_are_not_drawn_and_a_selected_unit_is_kept():
    spec = chart_spec(hidden=(32,), selected={"layer": 1, "index": 30})
    _, nodes = layer(spec, "rect", with_params=True)
    drawn = sorted(n["index"] for n in nodes if n["layer"] == 1)
    assert len(drawn) == MAX_NODES - 1 and 30 in drawn
    _, rules = layer(spec, "rule")
    assert {r["target_index"] for r in rules if r["target_layer"] == 1} == set(drawn)
    assert len(rules) == 2 * len(drawn) + len(drawn) * 2


def test_four_layer_spiral_network_size():
    """TensorFlow Playground's spiral set-up: all seven features, four hidden layers of 8."""
    links, maps = network(7, (8, 8, 8, 8))
    chart = network_diagram_chart(SPIRAL_FEATURES, (8, 8, 8, 8), links, maps, width=540)
    spec = chart.to_dict()
    assert len(layer(spec, "image")[1]) == 7 + 32 + 2
    assert len(layer(spec, "rule")[1]) == 7 * 8 + 3 * 64 + 16
    assert spec["height"] <= 520
    assert len(json.dumps(spec)) < 150_000


def test_all_column_sizes_are_accepted_and_mismatches_are_refused():
    links, maps = network(2, (4,))
    full = network_diagram_chart(["x1", "x2"], (2, 4, 2), links, maps).to_dict()
    hidden = network_diagram_chart(["x1", "x2"], (4,), links, maps).to_dict()
    assert full == hidden
    with pytest.raises(ValueError, match=r"\[2, 4, 2\] units per column"):
        network_diagram_chart(["x1", "x2"], (5,), links, maps)
    with pytest.raises(ValueError, match="3 input features"):
        network_diagram_chart(["x1", "x2", "x1^2"], (4,), links, maps)


def test_tile_colours_orange_negative_white_zero_blue_positive_x2_up():
    values = np.tile(np.linspace(-1, 1, 5, dtype="float32"), (5, 1))  # (R, R), x1 runs along a row
    rgb = signed_map_rgb(values)
    np.testing.assert_array_equal(rgb[0, 0], np.round(TILE_NEGATIVE))
    np.testing.assert_array_equal(rgb[0, 2], np.round(TILE_ZERO))
    np.testing.assert_array_equal(rgb[0, 4], np.round(TILE_POSITIVE))
    rising = np.tile(np.linspace(-1, 1, 5, dtype="float32")[:, None], (1, 5))  # rows = x2, increasing
    np.testing.assert_array_equal(signed_map_rgb(rising)[0, 0], np.round(TILE_POSITIVE))  # top row = largest x2


def test_output_tiles_use_fixed_scales_and_flat_maps_are_hatched():
    probability = np.full((4, 4), 0.75, dtype="float32")
    probability[0, 0] = 0.5
    rgb = node_picture(probability, output_units=2)  # white at 0.5, halfway to blue at 0.75
    np.testing.assert_array_equal(rgb[-1, 0], np.round(TILE_ZERO))
    np.testing.assert_array_equal(rgb[0, 0], np.round((TILE_ZERO + TILE_POSITIVE) / 2))
    flat = signed_map_rgb(np.zeros((12, 12), dtype="float32"))
    assert len({tuple(c) for c in flat.reshape(-1, 3)}) == 2  # two greys in stripes


def test_tiles_are_pngs_of_the_grid_resolution():
    spec = chart_spec(hidden=(3,))
    _, tiles = layer(spec, "image")
    image = Image.open(io.BytesIO(base64.b64decode(tiles[0]["url"].split(",", 1)[1])))
    assert image.size == (R, R) and image.mode == "RGB"
