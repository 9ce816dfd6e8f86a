import json

import numpy as np
import pyarrow as pa
import pytest
from apptest_helpers import assert_clean, chart_specs, open_dashboard
from sklearn.decomposition import PCA

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
    at.selectbox(key="ll_model").set_value(at.selectbox(key="ll_model").options[0]).run()
    at.select_slider(key="ll_samples").set_value(128).run()
    return at


def _view(at, name, **widgets):
    """Show view `name`, then set its widgets (they exist only once the view is drawn)."""
    at.radio(key="ll_view").set_value(name).run()
    for key, value in widgets.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    return [s.get("title") for s in chart_specs(at)]


def test_models_of_the_session_are_offered(landscape):
    options = landscape.selectbox(key="ll_model").options
    assert any(o.startswith("digits · cnn") for o in options) and any(o.startswith("circle · mlp") for o in options)


def test_interpolation_view(landscape):
    assert _view(landscape, "1D interpolation", ll_alpha_n=11) == [
        "Loss along the line from initial to trained weights"
    ]


def test_surface_view_on_a_tiny_grid(landscape):
    assert _view(landscape, "2D surface", ll_res=11) == ["Loss surface"]


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
    shown = landscape.selectbox(key="ll_model").value
    run = next(r for r in landscape.session_state["trained_runs"].values() if run_label(r) == shown)
    snapshots = np.stack(run.snapshots).astype("float64")
    ratios = PCA(n_components=2, svd_solver="full").fit(snapshots - snapshots[-1]).explained_variance_ratio_
    spec = json.dumps(chart_specs(landscape)[0])
    for i, ratio in enumerate(ratios, start=1):
        assert f"PC{i} ({ratio:.0%} of the path's variance)" in spec
    caption = next(c.value for c in landscape.caption if "varied most" in c.value)
    assert f"explain {ratios.sum():.0%} of the path" in caption, caption


def test_sharpness_view_lists_the_model(landscape):
    _view(landscape, "Sharpness", ll_iters=5)
    table = landscape.dataframe[0].value
    top, bottom = table["top eigenvalue (sharpness)"], table["bottom eigenvalue (most negative)"]
    assert len(table) >= 1 and (top > 0).all() and (bottom < top).all()
    assert np.allclose(table["|bottom / top| (non-convexity)"], np.abs(bottom / top))


def test_race_view(landscape):
    titles = _view(landscape, "Optimiser race", ll_race_steps=50)
    assert titles == ["rosenbrock: (1 - x)^2 + 100 (y - x^2)^2"]
    assert len(landscape.dataframe[0].value) == 4


def test_race_view_says_where_a_path_diverged_and_draws_its_finite_part(landscape):
    """Reference: momentum on Beale at the default rate 0.01 overflows at step 10 (worked by hand in
    tests/test_optimizer_race.py); Adam does not."""
    _view(landscape, "Optimiser race", ll_fn="beale", ll_race_steps=50, ll_race_lr=0.01)
    table = landscape.dataframe[0].value.set_index("optimiser")
    assert table.loc["momentum", "status"] == "diverged at step 10" and table.loc["adam", "status"] == "completed"
    assert np.isfinite(table[["final x", "final y", "final f"]].to_numpy(float)).all()
    frames = [pa.ipc.open_stream(d.data.data).read_all().to_pandas()
              for d in landscape.get("vega_lite_chart")[0].proto.datasets]  # the chart's data, as Arrow
    momentum = next(f for f in frames if "path" in f).query("path == 'momentum'")
    assert len(momentum) == 10 and np.isfinite(momentum[["a", "b"]].to_numpy(float)).all()
