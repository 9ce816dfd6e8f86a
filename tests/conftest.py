"""Shared test setup: quiet TensorFlow, project root importable, tiny configs."""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Never the user's run store, not even for module-scoped fixtures that start before `_own_run_store`.
os.environ["NN_DASHBOARD_RUNS"] = tempfile.mkdtemp(prefix="nn-dashboard-test-runs-")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from models.config import ExperimentConfig  # noqa: E402


@pytest.fixture
def tiny_config() -> ExperimentConfig:
    """A 2D run small enough to train in well under a second."""
    return ExperimentConfig(dataset="circle", n_samples=120, epochs=5, batch_size=16, hidden_layers=(4,))


@pytest.fixture
def tiny_cnn_config() -> ExperimentConfig:
    """A CNN on a handful of generated shapes."""
    return ExperimentConfig(
        dataset="shapes", n_samples=64, architecture="cnn", conv_filters=(4, 4), hidden_layers=(),
        activation="relu", epochs=2, batch_size=16, learning_rate=0.01,
    )


@pytest.fixture(autouse=True)
def _navigation_not_pages_directory(monkeypatch):
    """Run AppTest reruns through dashboard.py, as the real server does.

    AppTest forgets between runs that the app uses st.navigation, sees the pages/ folder and then
    reruns the page file alone (the legacy multipage mode), skipping the router and shared sidebar.
    The real server remembers it after the first run.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def _own_run_store(tmp_path, monkeypatch):
    """Each test gets an empty run store of its own, never the user's (README: NN_DASHBOARD_RUNS)."""
    from models import run_store

    monkeypatch.setenv("NN_DASHBOARD_RUNS", str(tmp_path / "runs"))
    yield
    run_store.close_all()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright, one per test module (browser and load tests)."""
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
