"""AppTest of the Architectures page: the first visit trains and draws the four-architecture comparison.

Until dashboard.py lists the page, the test runs it behind a minimal router of its own (the same steps as
dashboard.py: navigation, `mark_routed`, the page, `PageStopped`); once listed, through the dashboard itself.
"""

from pathlib import Path

from apptest_helpers import DASHBOARD, TIMEOUT, assert_clean, chart_specs, open_dashboard
from streamlit.testing.v1 import AppTest

PAGE = "pages/architectures.py"
ROOT = Path(DASHBOARD).parent

ROUTER = '''
import streamlit as st
from ui.routing import PageStopped, mark_routed
page = st.navigation([st.Page({page!r}, title="Architectures")])
mark_routed()
try:
    page.run()
except PageStopped:
    pass
'''


def _open(tmp_path, **widgets) -> AppTest:
    if PAGE in Path(DASHBOARD).read_text():
        at = open_dashboard(page=PAGE)
    else:
        router = tmp_path / "router.py"
        router.write_text(ROUTER.format(page=str(ROOT / PAGE)))
        at = AppTest.from_file(str(router), default_timeout=TIMEOUT)
    for key, value in widgets.items():
        at.session_state[key] = value
    return at.run()


def test_first_visit_trains_the_four_architectures_and_draws_them(tmp_path):
    # Tiny settings through the page's own widgets: 200 images, 2 epochs, 3 conv layers of 4 filters.
    at = _open(tmp_path, arch_n_samples=200, arch_epochs=2, arch_filters=4)
    assert_clean(at)
    titles = [s.get("title", {}).get("text") if isinstance(s.get("title"), dict) else s.get("title")
              for s in chart_specs(at)]
    assert "Test accuracy against parameters" in titles and "Loss per epoch" in titles
    table = at.dataframe[0].value
    assert list(table.architecture) == ["MLP", "CNN", "CNN + batch norm", "Residual CNN"]
    assert any("Measured on 40 test images" in c.value for c in at.caption)
    # Parts 2-4 wait for a click, each showing its time estimate on the button.
    labels = [b.label for b in at.button]
    assert any(label.startswith("Measure the learning curves (") for label in labels)
    assert any(label.startswith("Train the depth-vs-width ladder (") for label in labels)
    assert any(label.startswith("Train both and map their landscapes (") for label in labels)


def test_depth_width_ladder_runs_on_a_click(tmp_path):
    at = _open(tmp_path, arch_n_samples=200, arch_epochs=2, arch_filters=4, arch_dw_budget=2000)
    at.button(key="arch_dw_go").click().run()
    assert_clean(at)
    table = at.dataframe[1].value
    assert set(table.variant) == {"plain CNN", "CNN + batch norm"} and (table["gradient ratio"] > 0).all()
    assert any("gradient ratio is the mean over epochs" in c.value for c in at.caption)


def test_learning_curves_run_on_a_click_and_state_the_crossover(tmp_path):
    at = _open(tmp_path, arch_dataset="digits", arch_n_samples=200, arch_epochs=2, arch_filters=4, arch_lc_most=500,
               arch_lc_count=3)
    at.button(key="arch_lc_go").click().run()
    assert_clean(at)
    assert any(s.get("title", {}).get("text") == "Test accuracy against training-set size" for s in chart_specs(at)
               if isinstance(s.get("title"), dict))
    assert any("Mean test accuracy over 3 seeds" in c.value and ("overtakes" in c.value or "did not overtake" in
                                                                 c.value or "ahead at every size" in c.value)
               for c in at.caption)


def test_skip_connection_maps_run_on_a_click(tmp_path):
    at = _open(tmp_path, arch_n_samples=200, arch_epochs=2, arch_filters=4, arch_sk_depth=5, arch_sk_grid=3,
               arch_sk_iters=5)
    at.button(key="arch_sk_go").click().run()
    assert_clean(at)
    titles = [s["title"]["text"] if isinstance(s.get("title"), dict) else s.get("title") for s in chart_specs(at)]
    assert "Convexity: plain" in titles and "Convexity: residual" in titles
    assert "Plain, 5 layers" in titles and "Residual, 5 layers" in titles
    assert any("Share of the convexity grid" in c.value for c in at.caption)
