import numpy as np

from ui.landscape_charts import clip_losses, interpolation_chart, surface_3d, surface_chart


def test_clip_losses_marks_non_finite_and_caps_explosions():
    loss = np.array([[0.5, 1.0], [np.inf, 1e9]])
    clipped, bad, ceiling = clip_losses(loss)
    assert bad.tolist() == [[False, False], [True, False]]
    assert ceiling == 0.5 * 1e3 and clipped[1, 1] == ceiling and np.isnan(clipped[1, 0])
    clipped_all, _, _ = clip_losses(np.full((2, 2), np.nan))
    assert np.isnan(clipped_all).all()


def test_surface_chart_draws_diverged_cells_as_their_own_layer():
    a = b = np.linspace(-1, 1, 3)
    loss = np.ones((3, 3))
    loss[0, 0] = np.nan
    spec = surface_chart(a, b, loss, paths={"p": np.zeros((2, 2))}).to_dict()
    notes = [row for data in spec["datasets"].values() for row in data if row.get("note")]
    assert len(notes) == 1 and notes[0]["note"] == "diverged (NaN/inf)"
    assert len(spec["layer"]) == 4  # heatmap, diverged cells, path, start marker


def test_all_nan_surface_and_curves_still_render():
    a = b = np.linspace(-1, 1, 2)
    surface_chart(a, b, np.full((2, 2), np.nan)).to_dict()
    surface_3d(a, b, np.full((2, 2), np.nan)).to_dict()
    interpolation_chart(np.array([0.0, 1.0]), np.array([np.inf, 0.1]), np.array([0.1, 0.9])).to_dict()


def test_paths_that_leave_the_map_are_clipped_at_its_edge():
    a = b = np.linspace(-1, 1, 3)
    spec = surface_chart(a, b, np.ones((3, 3)), paths={"p": np.array([[0.0, 0.0], [-7e11, 4e10]])}).to_dict()
    path_layers = [layer for layer in spec["layer"] if layer["mark"]["type"] in ("line", "point")]
    assert len(path_layers) == 2 and all(layer["mark"]["clip"] for layer in path_layers)
