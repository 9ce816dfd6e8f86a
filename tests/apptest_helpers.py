"""Helpers for driving pages with Streamlit's AppTest."""

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

DASHBOARD = str(Path(__file__).resolve().parents[1] / "dashboard.py")
TIMEOUT = 120  # TensorFlow pages need far more than AppTest's default 3 s


def open_dashboard(query: dict[str, str] | None = None, page: str | None = None) -> AppTest:
    """Run the dashboard once (optionally on `page`, a path under pages/) and return the AppTest."""
    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def chart_specs(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of every Altair chart on the page."""
    return [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]


def assert_clean(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def labels_in(node) -> list[str]:
    """Labels of every widget and block under `node`, searched depth first.

    AppTest's own finders skip blocks nested inside a placeholder, which the shared sidebar uses.
    """
    found = [getattr(node, "label", None)]
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        found += labels_in(child)
    return [label for label in found if label]
