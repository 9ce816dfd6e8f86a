"""The real browser path: streamlit run, headless Chromium, a slider change, a redraw."""

import pytest
from browser_helpers import ARTIFACTS, running_app, wait_for_script

pytestmark = pytest.mark.browser

NEURON_IMAGES = "[data-testid='stMain'] img"
CHARTS = "[data-testid='stVegaLiteChart']"


def wait_for_count(page, selector: str, count: int, timeout_ms: int = 120_000) -> None:
    """Wait until exactly `count` elements match: images and charts appear after the script ends."""
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n", arg=[selector, count], timeout=timeout_ms
    )


def test_playground_slider_change_redraws(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app() as url:
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.goto(url + "/?epochs=20&n_samples=200")
        wait_for_script(page)
        page.wait_for_selector(CHARTS)
        wait_for_count(page, CHARTS, 4)  # the network diagram, the boundary and the two curves
        wait_for_count(page, NEURON_IMAGES, 16)  # one labelled tile per hidden neuron, 2 layers of 8
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(ARTIFACTS / "playground_before.png"))

        slider = page.get_by_role("slider", name="Hidden layers")
        assert slider.input_value() == "2"
        slider.focus()
        page.keyboard.press("ArrowRight")  # 2 -> 3 hidden layers: retrains and redraws
        wait_for_count(page, NEURON_IMAGES, 24)
        wait_for_script(page)
        assert slider.input_value() == "3"
        assert "hidden_layers=8%2C8%2C8" in page.url or "hidden_layers=8,8,8" in page.url
        assert page.get_by_text("Epoch 20 of 20").count() == 1
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(ARTIFACTS / "playground_after.png"), full_page=True)


def test_activation_lab_direct_link_renders_behind_the_router(browser):
    """A first request straight to a page's URL still gets the router, its page config and sidebar."""
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app() as url:
        page = browser.new_page(viewport={"width": 1500, "height": 2600})
        page.goto(url + "/activation_lab")
        wait_for_script(page)
        page.wait_for_selector("h1:has-text('Activation Lab')")
        wait_for_count(page, CHARTS, 3 * 2 + 2)  # curve + boundary per activation, then loss and gradients
        nav = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
        # Our navigation (titles with icons), not the one Streamlit derives from the pages/ folder.
        assert any(t.endswith("Playground") for t in nav) and not any("dashboard" in t for t in nav)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(ARTIFACTS / "activation_lab.png"))


def show_view(page, view: str, shot: str, ready) -> None:
    """Pick `view` in the page's radio, wait for the rerun and for `ready(page)`, check, screenshot."""
    page.get_by_text(view, exact=True).click()
    page.wait_for_timeout(500)  # let the rerun start before waiting for it to end
    wait_for_script(page)
    ready(page)
    assert page.locator("[data-testid='stException']").count() == 0, view
    page.screenshot(path=str(ARTIFACTS / shot))


LANDSCAPE_VIEWS = ("1D interpolation", "2D surface", "Training path", "Optimisers compared", "Sharpness",
                   "Optimiser race")


def test_loss_landscape_every_view(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app() as url:
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.goto(url + "/loss_landscape")  # a fresh session: the page trains its own default model
        wait_for_script(page)
        page.wait_for_selector("text=No model trained yet")
        wait_for_count(page, CHARTS, 1)
        page.get_by_role("button", name="Train").click()  # the sidebar's Digits CNN becomes the selection
        page.wait_for_selector("text=Trained and selected: digits", timeout=180_000)
        wait_for_script(page)
        picker = page.locator("[data-testid='stSelectbox']", has_text="Model to explore").locator("input")
        assert picker.input_value().startswith("digits · cnn 8-16")  # the model just trained is the selection
        for i, view in enumerate(LANDSCAPE_VIEWS):
            charts = 2 if view == "Sharpness" else 1
            show_view(page, view, f"loss_landscape_{i}.png", lambda p, n=charts: wait_for_count(p, CHARTS, n))


IMAGES = "[data-testid='stMain'] img"
# Each view and what it must show: images, or the evidence's charts (three measures and the tuning curves).
HIERARCHY_VIEWS = {"What filters respond to": IMAGES, "Evidence": CHARTS, "Kernels": IMAGES, "Feature maps": IMAGES,
                   "Attribution": IMAGES, "Filmstrip": CHARTS}


def test_feature_hierarchy_every_view(browser):
    """The first visit trains the page's default CNN (about 11 s) and every view draws from it."""
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app() as url:
        page = browser.new_page(viewport={"width": 1500, "height": 2000})
        page.goto(url + "/feature_hierarchy")
        wait_for_script(page)
        page.wait_for_selector("text=Test accuracy", timeout=180_000)
        for i, (view, selector) in enumerate(HIERARCHY_VIEWS.items()):
            show_view(page, view, f"feature_hierarchy_{i}.png",
                      lambda p, s=selector: p.wait_for_selector(s, timeout=180_000))
        assert page.get_by_text("did not learn").count() == 0  # the default CNN learns on every seed


def test_forward_pass_and_backprop_pages(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app() as url:
        page = browser.new_page(viewport={"width": 1500, "height": 2400})
        page.goto(url + "/?epochs=10&n_samples=200")  # the Playground trains a model to inspect
        wait_for_script(page)
        wait_for_count(page, CHARTS, 4)
        page.get_by_role("link", name="Forward pass").click()
        page.wait_for_selector("text=Prediction", timeout=120_000)
        wait_for_script(page)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(ARTIFACTS / "forward_pass.png"))
        page.get_by_role("link", name="Backpropagation").click()
        page.wait_for_selector("text=went downhill", timeout=120_000)
        wait_for_script(page)
        page.screenshot(path=str(ARTIFACTS / "backprop_0.png"))
        for i, (view, charts) in enumerate((("Gradient flow during training", 6), ("Learning-rate range test", 1)), 1):
            show_view(page, view, f"backprop_{i}.png", lambda p, n=charts: wait_for_count(p, CHARTS, n))



def test_two_sessions_training_one_link_at_once_show_the_same_numbers(browser):
    """Sessions of one server train in threads at the same time; each run's random draws must depend only
    on its config (issue 10, item 7). Reference: the other session, which trained the same link."""
    ARTIFACTS.mkdir(exist_ok=True)

    def shown(page) -> dict[str, str]:
        wait_for_script(page)
        assert page.locator("[data-testid='stException']").count() == 0
        labels = page.locator("[data-testid='stMetricLabel']").all_inner_texts()
        return dict(zip(labels, page.locator("[data-testid='stMetricValue']").all_inner_texts(), strict=True))

    with running_app() as url:
        pages = [browser.new_page(viewport={"width": 1400, "height": 2000}) for _ in range(2)]
        for page in pages:  # returns once the server answers, so both sessions start together
            page.goto(url + "/?epochs=40&n_samples=300", wait_until="commit")
        for page in pages:
            wait_for_count(page, NEURON_IMAGES, 16)
        first = [shown(page) for page in pages]
        assert {"Train loss", "Test loss", "Test accuracy"} <= set(first[0]), first[0]
        assert first[0] == first[1]
        # Loading a page takes each session a different time; a slider change reruns both within
        # milliseconds, so the two models are built and trained at the same moment.
        sliders = [page.get_by_role("slider", name="Hidden layers") for page in pages]
        for slider in sliders:
            slider.focus()
        for page in pages:
            page.keyboard.press("ArrowRight")
        for page in pages:
            wait_for_count(page, NEURON_IMAGES, 24)
        second = [shown(page) for page in pages]
        pages[1].screenshot(path=str(ARTIFACTS / "playground_second_session.png"))
        assert second[0] == second[1]
        assert second[0] != first[0]  # the slider change did retrain
