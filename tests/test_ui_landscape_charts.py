import numpy as np
import pytest

from ui.landscape_charts import (
    HALO,
    MARKER_SHAPES,
    contour_levels,
    contour_lines,
    interpolation_chart,
    log_colours,
    sharpness_chart,
    sharpness_over_training_chart,
    surface_3d,
    surface_chart,
)


def _layers(spec, mark_type):
    return [layer for layer in spec["layer"] if layer["mark"]["type"] == mark_type]


def test_log_colours_keep_the_whole_finite_range_and_count_what_they_leave_out():
    loss = np.array([[0.5, 1.0], [np.inf, 1e9], [0.0, 2.0]])
    colours = log_colours(loss)
    assert colours.overflowed.tolist() == [[False, False], [True, False], [False, False]]
    assert colours.low == 0.5 and colours.high == 1e9 and colours.values[1, 1] == 1e9  # nothing capped
    assert np.isnan(colours.values[1, 0]) and colours.values[2, 0] == 0.5 and colours.raised == 1
    assert colours.note == "1 cell overflowed (NaN/inf), drawn red; 1 cells at loss 0 drawn at the lowest colour"
    assert log_colours(np.ones((2, 2))).note == ""
    assert np.isnan(log_colours(np.full((2, 2), np.nan)).values).all()


def test_surface_colour_scale_spans_the_real_range_and_the_subtitle_says_so():
    """The issue's map: losses from 1e-4 to 7 must not stop at 1000x the minimum."""
    a = b = np.linspace(-1, 1, 5)
    loss = np.geomspace(1e-4, 7, 25).reshape(5, 5)
    loss[0, 0] = np.inf
    spec = surface_chart(a, b, loss).to_dict()
    (heat,) = [layer for layer in _layers(spec, "rect") if "color" in layer.get("encoding", {})]
    scale = heat["encoding"]["color"]["scale"]
    assert scale["type"] == "log" and scale["domain"] == pytest.approx([loss[0, 1], 7.0])
    subtitle = spec["title"]["subtitle"]
    assert subtitle[0] == f"colour: log loss from {loss[0, 1]:.3g} to 7"
    assert "1 cell overflowed (NaN/inf), drawn red" in subtitle
    notes = [row for data in spec["datasets"].values() for row in data if row.get("note")]
    assert len(notes) == 1 and notes[0]["note"] == "diverged (NaN/inf)"


def test_contour_lines_of_a_cone_lie_on_its_circle():
    """Reference: the level set of x^2 + y^2 = r^2 is the circle of radius r (length 2 pi r); contourpy's
    linear interpolation puts every point on a cell edge within the cell's curvature error of it."""
    a = b = np.linspace(-2, 2, 81)
    ga, gb = np.meshgrid(a, b)
    lines = contour_lines(a, b, ga**2 + gb**2, 1.0)
    points = np.vstack(lines)
    assert np.allclose(np.hypot(points[:, 0], points[:, 1]), 1.0, atol=1e-3)
    length = sum(np.hypot(*np.diff(line, axis=0).T).sum() for line in lines)
    assert length == pytest.approx(2 * np.pi, rel=1e-3)  # the whole circle, once


def test_contour_lines_at_a_saddle_and_around_missing_values():
    """Reference: x * y = 0 is the two axes; no line passes through a cell with a NaN corner."""
    a = b = np.linspace(-1, 1, 5)
    ga, gb = np.meshgrid(a, b)
    points = np.vstack(contour_lines(a, b, ga * gb, 0.0))
    assert (np.isclose(points[:, 0], 0) | np.isclose(points[:, 1], 0)).all()
    z = ga * gb
    z[0, 0] = np.nan  # the corner cell (-1..-0.5)^2 is masked; the axes lie outside it and stay
    kept = np.vstack(contour_lines(a, b, z, 0.0))
    assert not ((kept[:, 0] < -0.5) & (kept[:, 1] < -0.5)).any()
    z[2, 2] = np.nan  # the centre point: the four cells around it go, and the axes with them there
    kept = np.vstack(contour_lines(a, b, z, 0.0))
    assert not ((np.abs(kept[:, 0]) < 0.5) & (np.abs(kept[:, 1]) < 0.5)).any()


def test_contour_levels_are_round_and_inside_the_range():
    assert contour_levels(1e-4, 6.8).tolist() == pytest.approx([3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3])
    assert contour_levels(0.08, 4.8).tolist() == pytest.approx([0.1, 0.2, 0.5, 1, 2])
    narrow = contour_levels(0.5, 0.9)
    assert len(narrow) == 5 and (narrow > 0.5).all() and (narrow < 0.9).all()
    assert len(contour_levels(1e-30, 1e30)) <= 12 and len(contour_levels(1.0, 1.0)) == 0


def test_surface_draws_contours_paths_and_markers_with_a_legend_that_matches():
    a = b = np.linspace(-1, 1, 11)
    ga, gb = np.meshgrid(a, b)
    paths = {f"p{i}": np.array([[0.5, 0.5], [0.1 * i, 0.0]]) for i in range(4)}
    markers = {"start": np.array([[0.5, 0.5]]), "known minimum": np.array([[0.0, 0.0], [0.2, 0.2]])}
    spec = surface_chart(a, b, np.exp(ga**2 + gb**2), paths=paths, markers=markers).to_dict()
    assert any("contour" in str(layer["encoding"].get("tooltip")) for layer in _layers(spec, "line"))
    assert "white lines: loss = " in spec["title"]["subtitle"][1]
    (line,) = [layer for layer in _layers(spec, "line") if "color" in layer["encoding"]]
    colour = line["encoding"]["color"]
    assert colour["scale"]["domain"] == list(paths) and len(set(colour["scale"]["range"])) == 4  # 4 distinct tags
    assert colour["legend"]["orient"] == "bottom"
    (point,) = _layers(spec, "point")
    enc = point["encoding"]
    assert enc["shape"]["scale"]["range"] == [MARKER_SHAPES["start"], MARKER_SHAPES["known minimum"]]
    assert enc["fill"]["scale"]["range"] == ["white", "white"] and enc["stroke"]["scale"]["range"] == [HALO, HALO]
    # one field for shape, fill and outline: Vega-Lite merges them into one legend drawn like the marks
    assert enc["shape"]["field"] == enc["fill"]["field"] == enc["stroke"]["field"] == "marker"
    assert enc["shape"]["legend"] == enc["fill"]["legend"] == enc["stroke"]["legend"]
    rows = [row for data in spec["datasets"].values() for row in data if "marker" in row]
    assert sorted(r["marker"] for r in rows) == ["known minimum", "known minimum", "start"]


def test_surface_chart_fits_a_1000_px_window():
    """The main column is 540 px wide at a 1000 px window with the sidebar open (measured in Chromium)."""
    a = b = np.linspace(-1, 1, 3)
    spec = surface_chart(a, b, np.ones((3, 3)), paths={"p": np.zeros((2, 2))}).to_dict()
    assert spec["width"] <= 540


def test_all_nan_surface_and_curves_still_render():
    a = b = np.linspace(-1, 1, 2)
    surface_chart(a, b, np.full((2, 2), np.nan)).to_dict()
    surface_3d(a, b, np.full((2, 2), np.nan)).to_dict()
    interpolation_chart(np.array([0.0, 1.0]), np.array([np.inf, 0.1]), np.array([0.1, 0.9])).to_dict()


def test_paths_that_leave_the_map_are_clipped_at_its_edge():
    a = b = np.linspace(-1, 1, 3)
    spec = surface_chart(a, b, np.ones((3, 3)), paths={"p": np.array([[0.0, 0.0], [-7e11, 4e10]])}).to_dict()
    path_layers = _layers(spec, "line") + _layers(spec, "point")
    assert len(path_layers) == 2 and all(layer["mark"]["clip"] for layer in path_layers)


def test_sharpness_charts_plot_both_ends_of_the_spectrum():
    spec = sharpness_chart([{"model": "m1", "top": 2.0, "bottom": -0.1}, {"model": "m2", "top": 5.0,
                                                                          "bottom": -0.3}]).to_dict()
    values = sorted(row["eigenvalue"] for data in spec["datasets"].values() for row in data if "eigenvalue" in row)
    assert values == [-0.3, -0.1, 2.0, 5.0]
    spec = sharpness_over_training_chart([0, 5, 10], [1.0, 3.0, 2.0], [-0.5, -0.2, -0.1], "t").to_dict()
    rows = [row for data in spec["datasets"].values() for row in data if "eigenvalue" in row]
    assert len(rows) == 6 and {r["epoch"] for r in rows} == {0, 5, 10}
