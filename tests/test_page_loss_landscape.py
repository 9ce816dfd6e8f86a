import pytest
from apptest_helpers import assert_clean, chart_specs, open_dashboard

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


def test_sharpness_view_lists_the_model(landscape):
    _view(landscape, "Sharpness", ll_iters=5)
    table = landscape.dataframe[0].value
    assert len(table) >= 1 and (table["top Hessian eigenvalue"] > 0).all()


def test_race_view(landscape):
    titles = _view(landscape, "Optimiser race", ll_race_steps=50)
    assert titles == ["rosenbrock: (1 - x)^2 + 100 (y - x^2)^2"]
    assert len(landscape.dataframe[0].value) == 4
