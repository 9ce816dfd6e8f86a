"""A newcomer's path in the real browser: every page, in a fresh session with no model trained yet,
draws a chart or image and no error; and at 1400 px and 1000 px wide no chart or image is wider than
its container and no legend is cut off (the Activation Lab with six activations is one of the cases).

One server for the module; each page is opened in a new browser context, so a new Streamlit session
with an empty model store: nothing trained on one page helps another.
"""

from __future__ import annotations

import pytest
from browser_helpers import ARTIFACTS, running_app, wait_for_script

pytestmark = pytest.mark.browser

DRAWN = ("[data-testid='stMain'] [data-testid='stVegaLiteChart'], [data-testid='stMain'] [data-testid='stImage'], "
         "[data-testid='stMain'] [data-testid='stPlotlyChart']")
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"

# Each page and the views its "View" radio offers (None: the page has one view).
PAGES = {
    "playground": None,
    "runs": None,
    "architectures": None,
    "activation_lab": None,
    "loss_landscape": ("1D interpolation", "2D surface", "Training path", "Optimisers compared", "Sharpness",
                       "Optimiser race"),
    "feature_hierarchy": ("What filters respond to", "Evidence", "Kernels", "Feature maps", "Attribution",
                          "Filmstrip"),
    "forward_pass": None,
    "backprop": ("One step by hand", "Gradient flow during training", "Learning-rate range test"),
}
MORE_ACTIVATIONS = ("elu", "gelu", "sigmoid")  # with the default linear, tanh and relu: six columns

# For every chart and image in the main area: the boxes that must hold it. A Vega chart drawn as SVG
# also gives each legend's box, which must lie inside both the chart element and the drawn SVG (what
# lies outside the SVG is not painted). Canvas charts paint legends inside the canvas, so for them the
# canvas inside its element is the check.
MEASURE = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return {l: r.left, r: r.right, t: r.top, b: r.bottom}; };
  const holder = e => e.closest("[data-testid='stColumn']") || e.closest("[data-testid='stMainBlockContainer']");
  const out = [];
  const main = document.querySelector("[data-testid='stMain']");
  out.push({what: 'main area', sw: main.scrollWidth, cw: main.clientWidth});
  for (const el of document.querySelectorAll("[data-testid='stMain'] [data-testid='stVegaLiteChart']")) {
    const drawn = el.querySelector('svg.marks') || el.querySelector('canvas');
    const title = (el.querySelector('svg.marks g.role-title text') || {}).textContent || '';
    out.push({what: 'chart ' + title, sw: el.scrollWidth, cw: el.clientWidth, el: box(el), holder: box(holder(el)),
              drawn: drawn ? box(drawn) : null,
              legends: [...el.querySelectorAll('svg.marks g.role-legend')].map(box)});
  }
  for (const el of document.querySelectorAll("[data-testid='stMain'] [data-testid='stImage']")) {
    const img = el.querySelector('img');
    out.push({what: 'image ' + (img ? img.alt || '' : ''), sw: el.scrollWidth, cw: el.clientWidth, el: box(el),
              holder: box(holder(el)), drawn: img ? box(img) : null, legends: []});
  }
  return out;
}"""


def inside(inner: dict, outer: dict, slack: float = 1.5) -> bool:
    return (inner["l"] >= outer["l"] - slack and inner["r"] <= outer["r"] + slack
            and inner["t"] >= outer["t"] - slack and inner["b"] <= outer["b"] + slack)


def layout_problems(page, where: str) -> list[str]:
    """What is wider than its container, or a legend outside its chart, on the page as drawn now."""
    problems = []
    for item in page.evaluate(MEASURE):
        name = f"{where}: {item['what'].strip()}"
        if item["sw"] > item["cw"] + 1:
            problems.append(f"{name} is {item['sw']} px wide in a {item['cw']} px container")
        if "el" not in item:
            continue
        if item["drawn"] and item["drawn"]["r"] > item["holder"]["r"] + 1.5:
            problems.append(f"{name} runs {item['drawn']['r'] - item['holder']['r']:.0f} px past its column")
        if item["drawn"] and not inside(item["drawn"], item["el"]):
            problems.append(f"{name} is drawn outside its element: {item['drawn']} in {item['el']}")
        for legend in item["legends"]:
            if not (inside(legend, item["el"]) and inside(legend, item["drawn"])):
                problems.append(f"{name} has a legend outside the chart: {legend} in {item['drawn']}")
    return problems


def settle(page) -> None:
    """Wait for the rerun a click started to end (the script state flips to running first)."""
    page.wait_for_timeout(600)
    wait_for_script(page)


def assert_drawn_without_error(page, where: str) -> None:
    page.wait_for_selector(DRAWN, timeout=180_000)
    errors = page.locator(ERRORS)
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()}"


def add_activations(page, names) -> None:
    """Pick more activations in the Activation Lab's sidebar multiselect, as a user would."""
    box = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first
    for name in names:
        box.locator("input").click()
        page.keyboard.type(name)
        page.get_by_role("option", name=name, exact=True).click()
        settle(page)
    page.keyboard.press("Escape")
    settle(page)


@pytest.fixture(scope="module")
def app_url():
    with running_app() as url:
        yield url


def open_fresh(browser, url: str, path: str, width: int, dark: bool = False):
    """A page in a new browser context: a new session with no model trained."""
    context = browser.new_context(viewport={"width": width, "height": 1600},
                                  color_scheme="dark" if dark else "light")
    page = context.new_page()
    page.goto(f"{url}/{path}")
    wait_for_script(page)
    return context, page


@pytest.mark.parametrize("width", [1400, 1000])
@pytest.mark.parametrize("path", list(PAGES))
def test_page_in_a_fresh_session_draws_every_view_and_nothing_overflows(browser, app_url, path, width):
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = open_fresh(browser, app_url, path, width)
    try:
        assert_drawn_without_error(page, path)
        problems = layout_problems(page, f"{path} at {width} px")
        page.screenshot(path=str(ARTIFACTS / f"layout_{path}_{width}.png"), full_page=True)
        for view in PAGES[path] or ():
            page.get_by_text(view, exact=True).first.click()
            settle(page)
            assert_drawn_without_error(page, f"{path} / {view}")
            problems += layout_problems(page, f"{path} / {view} at {width} px")
            page.screenshot(path=str(ARTIFACTS / f"layout_{path}_{view.replace(' ', '_')}_{width}.png"),
                            full_page=True)
        if path == "activation_lab":
            add_activations(page, MORE_ACTIVATIONS)
            assert page.locator("h4").count() == 6, "six activation columns"
            assert_drawn_without_error(page, "activation_lab with 6 activations")
            problems += layout_problems(page, f"activation_lab with 6 activations at {width} px")
            page.screenshot(path=str(ARTIFACTS / f"layout_activation_lab_6_{width}.png"), full_page=True)
        assert not problems, "\n".join(problems)
    finally:
        context.close()
