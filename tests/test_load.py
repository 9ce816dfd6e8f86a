"""Load and fault tests of the real server, loopback only and bounded: many sessions training at once, a run
interrupted by quick widget changes, and memory over many retrains in one session.

Each test records its wall time and the server's peak memory in test-artifacts/load.txt.
"""

import time

import pytest
from browser_helpers import ARTIFACTS, running_server, wait_for_script

from models.config import ExperimentConfig
from models.engine import train
from models.recipes import DEFAULT_CNN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

METRIC_LABELS = "[data-testid='stMetricLabel']"
METRIC_VALUES = "[data-testid='stMetricValue']"
NEURON_IMAGES = "[data-testid='stMain'] img"

# Eight different Playground runs, small enough to train in a couple of seconds each.
PLAYGROUND_CONFIGS = [
    ExperimentConfig(dataset=d, activation=a, hidden_layers=h, n_samples=200, epochs=25, seed=s)
    for d, a, h, s in (("circle", "tanh", (8, 8), 0), ("xor", "relu", (8, 4), 1), ("gaussians", "sigmoid", (4,), 2),
                       ("spiral", "relu", (16, 8, 8), 3), ("moons", "tanh", (6,), 4), ("circle", "relu", (4, 4), 5),
                       ("xor", "tanh", (8, 8, 4), 6), ("moons", "elu", (8,), 7))
]


def _record(name: str, seconds: float, server) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    line = f"{name}: {seconds:.1f} s wall, server peak RSS {server.peak_rss_mb():.0f} MB, now {server.rss_mb():.0f} MB"
    with open(ARTIFACTS / "load.txt", "a") as f:
        f.write(line + "\n")
    print(line)


def _link(config: ExperimentConfig) -> str:
    return "/?" + "&".join(f"{k}={v}" for k, v in config.to_query().items())


def _metrics(page) -> dict[str, str]:
    """The Playground's four metrics, once all of them are drawn."""
    page.wait_for_function("sel => document.querySelectorAll(sel).length === 4", arg=METRIC_VALUES, timeout=60_000)
    labels = page.locator(METRIC_LABELS).all_inner_texts()
    return dict(zip(labels, page.locator(METRIC_VALUES).all_inner_texts(), strict=True))


def _expected_metrics(config: ExperimentConfig) -> dict[str, str]:
    """The reference: the same config trained alone in this process, formatted as the Playground does."""
    h = train(config).history
    return {"Train loss": f"{h.train_loss[-1]:.3g}", "Test loss": f"{h.test_loss[-1]:.3g}",
            "Train accuracy": f"{h.train_acc[-1]:.0%}", "Test accuracy": f"{h.test_acc[-1]:.0%}"}


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def test_eight_sessions_training_at_once_each_show_their_own_solo_result(browser):
    with running_server() as server:
        start = time.perf_counter()
        pages = [browser.new_page(viewport={"width": 1400, "height": 1800}) for _ in PLAYGROUND_CONFIGS]
        for page, config in zip(pages, PLAYGROUND_CONFIGS, strict=True):
            page.goto(server.url + _link(config), wait_until="commit")
        shown = []
        for page in pages:
            page.wait_for_selector(NEURON_IMAGES, timeout=240_000)
            wait_for_script(page, 240_000)
            _no_exception(page)
            shown.append(_metrics(page))
        _record("8 Playground sessions at once", time.perf_counter() - start, server)
        for page in pages:
            page.close()
    for config, metrics in zip(PLAYGROUND_CONFIGS, shown, strict=True):
        assert metrics == _expected_metrics(config), config


def test_four_sessions_on_the_feature_hierarchy_agree_with_a_solo_run(browser):
    h = train(DEFAULT_CNN).history
    expected = f"Test accuracy {h.test_acc[-1]:.1%}, train accuracy {h.train_acc[-1]:.1%}."
    with running_server() as server:
        start = time.perf_counter()
        pages = [browser.new_page(viewport={"width": 1400, "height": 1800}) for _ in range(4)]
        for page in pages:
            page.goto(server.url + "/feature_hierarchy", wait_until="commit")
        for page in pages:
            page.wait_for_selector("text=Test accuracy", timeout=300_000)
            wait_for_script(page, 300_000)
            _no_exception(page)
            assert page.get_by_text(expected).count() == 1
        _record("4 Feature Hierarchy sessions at once", time.perf_counter() - start, server)


def test_quick_changes_interrupt_a_long_run_and_the_server_goes_idle(browser):
    long_run = ExperimentConfig(n_samples=2000, epochs=500)  # 50,000 steps: many seconds of training
    with running_server() as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server.url + _link(long_run), wait_until="commit")
        page.wait_for_selector("[data-testid='stProgress']", timeout=120_000)
        layers = page.get_by_role("slider", name="Hidden layers")
        layers.focus()
        page.keyboard.press("ArrowRight")  # 2 -> 3 layers: a new long run starts
        page.keyboard.press("ArrowRight")  # 3 -> 4
        page.get_by_role("slider", name="Epochs").focus()
        page.keyboard.press("Home")  # epochs -> 1: the last setting, a short run
        page.wait_for_selector("text=Epoch 1 of 1", timeout=180_000)
        wait_for_script(page)
        _no_exception(page)
        assert "hidden_layers=8%2C8%2C8%2C8" in page.url or "hidden_layers=8,8,8,8" in page.url
        shown = _metrics(page)
        # Once the page is done, no interrupted run may still be computing in the background.
        time.sleep(1.0)
        before = server.cpu_seconds()
        time.sleep(3.0)
        busy = (server.cpu_seconds() - before) / 3.0
    assert shown == _expected_metrics(long_run.replace(hidden_layers=(8, 8, 8, 8), epochs=1))
    assert busy < 0.15, f"server still busy at {busy:.0%} of a core after the page finished"


def test_thirty_retrains_in_one_session_keep_memory_bounded(browser):
    with running_server() as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server.url + "/?epochs=5&n_samples=100")
        wait_for_script(page)
        epochs = page.get_by_role("slider", name="Epochs")
        start, warm = time.perf_counter(), None
        for i in range(30):
            epochs.focus()
            page.keyboard.press("ArrowRight")  # one more epoch: a config not trained yet
            page.wait_for_selector(f"text=Epoch {6 + i} of {6 + i}", timeout=120_000)
            wait_for_script(page)
            if i == 4:
                warm = server.rss_mb()
        _no_exception(page)
        growth = server.rss_mb() - warm
        _record(f"30 retrains in one session (growth after 5: {growth:.0f} MB)", time.perf_counter() - start, server)
    assert growth < 100, f"server memory grew {growth:.0f} MB over 25 retrains"
