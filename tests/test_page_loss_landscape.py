import json

import numpy as np
import pyarrow as pa
import pytest
from apptest_helpers import assert_clean, chart_specs, open_dashboard
from sklearn.decomposition import PCA

from models.config import ExperimentConfig
from ui.session import run_label

PAGE = "pages/loss_landscape.py"


@pytest.fixture(scope="module")
def landscape():
    """The page with a tiny digits CNN trained from its own sidebar."""
    at = open_dashboard({"epochs": "3", "n_samples": "100"}, page=PAGE)
    at.session_state["ll_batch"] = 64
    at.run()
    at.sidebar.selectbox(key="ll_quick").set_value("Digits CNN").run()
    at.sidebar.button(key="ll_train").click().run()
    assert_clean(at)
    at.select_slider(key="ll_samples").set_value(128).run()
    return at


def _runs(at):
    return at.session_state["trained_runs"]


def _shown(at):
    """The run the page's model picker shows (its options are config keys)."""
    return _runs(at)[at.selectbox(key="ll_model").value]


def _view(at, name, **widgets):
    """Show view `name`, then set its widgets (they exist only once the view is drawn)."""
    at.radio(key="ll_view").set_value(name).run()
    for key, value in widgets.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    return [_title(s) for s in chart_specs(at)]


def _title(spec):
    """A chart's title text, whether or not it has a subtitle."""
    return spec["title"]["text"] if isinstance(spec.get("title"), dict) else spec.get("title")


def _chart_frames(at, index=0):
    """The data of chart `index`, as the frontend receives it (Arrow)."""
    return [pa.ipc.open_stream(d.data.data).read_all().to_pandas()
            for d in at.get("vega_lite_chart")[index].proto.datasets]


def test_a_model_trained_in_the_sidebar_becomes_the_selection_and_a_toast_names_it():
    at = open_dashboard({"epochs": "3", "n_samples": "100"}, page=PAGE)
    before = at.selectbox(key="ll_model").value
    at.sidebar.selectbox(key="ll_quick").set_value("Digits MLP").run()
    at.sidebar.button(key="ll_train").click().run()
    assert_clean(at)
    shown = _shown(at)
    assert shown.config.dataset == "digits" and shown.config.key() != before
    assert any(run_label(shown) in t.value for t in at.toast), [t.value for t in at.toast]


def test_a_first_visit_trains_the_default_and_every_model_view_draws_a_chart(tmp_path, monkeypatch):
    at = open_dashboard({"epochs": "3", "n_samples": "100"})
    _runs(at).clear()  # a session that has trained nothing yet
    monkeypatch.setenv("NN_DASHBOARD_RUNS", str(tmp_path / "empty"))  # and a store with nothing in it
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert any("No model trained yet" in i.value for i in at.info)
    assert _shown(at).config == ExperimentConfig()
    at.select_slider(key="ll_samples").set_value(128).run()
    for view, widgets in {"1D interpolation": {"ll_alpha_n": 11}, "2D surface": {"ll_res": 11},
                          "Training path": {"ll_path_res": 11}, "Sharpness": {"ll_iters": 5}}.items():
        assert _view(at, view, **widgets), view


def test_models_of_the_session_are_offered(landscape):
    options = landscape.selectbox(key="ll_model").options  # as the user reads them
    assert any(o.startswith("digits · cnn") for o in options) and any(o.startswith("circle · 2x8") for o in options)
    assert _shown(landscape).config.architecture == "cnn"  # the one just trained is selected


def test_interpolation_view(landscape):
    assert _view(landscape, "1D interpolation", ll_alpha_n=11) == [
        "Loss along the line from initial to trained weights"
    ]
    caption = next(c.value for c in landscape.caption if "Alpha 0 is the untrained network" in c.value)
    assert "(loss " in caption and "Past 1 the " in caption


def test_surface_view_on_a_tiny_grid(landscape):
    assert _view(landscape, "2D surface", ll_res=11) == ["Loss surface"]
    spec = chart_specs(landscape)[0]
    assert spec["title"]["subtitle"][0].startswith("colour: log loss from ")
    (cells,) = [f for f in _chart_frames(landscape) if "raw" in f]
    centre = cells.raw.to_numpy().reshape(11, 11)[5, 5]
    caption = next(c.value for c in landscape.caption if "the trained weights (the diamond)" in c.value)
    assert f"have loss {centre:.3g}" in caption


def test_path_and_optimiser_views(landscape):
    assert _view(landscape, "Training path", ll_path_res=11) == ["Training path on its own PCA plane"]
    assert _view(landscape, "Optimisers compared", ll_opt_res=11) == [
        "Optimisers from the same start, on one shared plane"
    ]
    assert len(landscape.dataframe[0].value) == 3


def test_path_view_prints_the_pca_shares_of_li_et_al(landscape):
    """Reference: scikit-learn's PCA of (snapshot - final weights) of the model shown, as Li et al.'s
    setup_PCA_directions computes it (tomgoldstein/loss-landscape, projection.py)."""
    _view(landscape, "Training path", ll_path_res=11)
    snapshots = np.stack(_shown(landscape).snapshots).astype("float64")
    ratios = PCA(n_components=2, svd_solver="full").fit(snapshots - snapshots[-1]).explained_variance_ratio_
    spec = json.dumps(chart_specs(landscape)[0])
    for i, ratio in enumerate(ratios, start=1):
        assert f"PC{i} ({ratio:.0%} of the path's variance)" in spec
    caption = next(c.value for c in landscape.caption if "varied most" in c.value)
    assert f"explain {ratios.sum():.0%} of the path" in caption, caption


def test_sharpness_view_charts_each_model_and_the_curvature_over_training(landscape):
    """The curve's last point is the trained weights: the same Lanczos run as the model's own row."""
    titles = _view(landscape, "Sharpness", ll_iters=5)
    assert len(titles) == 2
    table = landscape.dataframe[0].value
    top, bottom = table["top eigenvalue (sharpness)"], table["bottom eigenvalue (most negative)"]
    assert len(table) >= 1 and (top > 0).all() and (bottom < top).all()
    assert np.allclose(table["|bottom / top| (non-convexity)"], np.abs(bottom / top))
    (curve,) = [f for f in _chart_frames(landscape, 1) if "epoch" in f]
    shown = _shown(landscape)
    tops = curve[curve.end == "top (sharpness)"].sort_values("epoch")
    assert tops.epoch.iloc[-1] == shown.snapshot_epochs[-1] and tops.epoch.iloc[0] == 0
    assert len(tops) == min(10, len(shown.snapshots))
    assert tops.eigenvalue.iloc[-1] == pytest.approx(top.iloc[0])  # the model on screen is the table's first row
    (dots,) = [f for f in _chart_frames(landscape, 0) if "eigenvalue" in f]
    assert sorted(dots.eigenvalue) == sorted([*top, *bottom])


def test_race_view(landscape):
    assert _view(landscape, "Optimiser race", ll_race_steps=50) == ["rosenbrock: (1 - x)^2 + 100 (y - x^2)^2"]
    assert len(landscape.dataframe[0].value) == 4
    spec = chart_specs(landscape)[0]
    line = next(layer for layer in spec["layer"] if "color" in layer.get("encoding", {})
                and layer["mark"]["type"] == "line")
    assert line["encoding"]["color"]["scale"]["domain"] == ["sgd", "momentum", "adam", "rmsprop"]
    (markers,) = [f for f in _chart_frames(landscape) if "marker" in f]
    assert markers.query("marker == 'known minimum'")[["a", "b"]].values.tolist() == [[1.0, 1.0]]
    assert "closest" in next(c.value for c in landscape.caption if "Known minimum" in c.value)


def test_race_view_says_where_a_path_diverged_and_draws_its_finite_part(landscape):
    """Reference: momentum on Beale at the default rate 0.01 overflows at step 10 (worked by hand in
    tests/test_optimizer_race.py); Adam does not."""
    _view(landscape, "Optimiser race", ll_fn="beale", ll_race_steps=50, ll_race_lr=0.01)
    table = landscape.dataframe[0].value.set_index("optimiser")
    assert table.loc["momentum", "status"] == "diverged at step 10" and table.loc["adam", "status"] == "completed"
    assert np.isfinite(table[["final x", "final y", "final f"]].to_numpy(float)).all()
    momentum = next(f for f in _chart_frames(landscape) if "path" in f).query("path == 'momentum'")
    assert len(momentum) == 10 and np.isfinite(momentum[["a", "b"]].to_numpy(float)).all()
