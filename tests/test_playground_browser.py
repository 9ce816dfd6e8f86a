"""The Playground's controls in the real browser: your own CSV, pausing a long run, and the downloads."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, running_app, wait_for_script

pytestmark = pytest.mark.browser

DATA = Path(__file__).parent / "data"
SIDEBAR = "[data-testid='stSidebar']"


@pytest.fixture(scope="module")
def app_url():
    with running_app() as url:
        yield url


def fresh_page(browser, url: str, query: str = "", width: int = 1400, wait: bool = True):
    context = browser.new_context(viewport={"width": width, "height": 1800}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{url}/{query}")
    if wait:
        wait_for_script(page)
    return context, page


def settle(page) -> None:
    page.wait_for_timeout(600)
    wait_for_script(page)


def test_your_csv_trains_and_a_bad_one_is_refused_with_its_reasons(browser, app_url):
    context, page = fresh_page(browser, app_url, "?epochs=20")
    try:
        page.locator(f"{SIDEBAR} [data-testid='stSelectbox']", has_text="Dataset").click()
        page.get_by_role("option", name="Your CSV (upload)").click()
        settle(page)
        page.wait_for_selector("text=The sidebar says what the settings need")
        uploader = page.locator(f"{SIDEBAR} [data-testid='stFileUploaderDropzoneInput']")
        uploader.set_input_files(str(DATA / "good_classification.csv"))
        page.wait_for_selector("text=200 rows", timeout=120_000)
        settle(page)
        page.wait_for_selector("text=Epoch 20", timeout=120_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(ARTIFACTS / "playground_csv.png"), full_page=True)
        uploader.set_input_files(str(DATA / "bad_non_numeric.csv"))
        settle(page)
        error = page.locator("[data-testid='stAlertContentError']")
        assert "cannot be used" in error.inner_text() and "not numeric" in error.inner_text()
    finally:
        context.close()


def stable_epoch(page) -> int:
    """The epoch counter once it has stopped changing for 1.5 s (nothing trains while paused)."""
    counter = page.get_by_text(re.compile(r"^Epoch \d+ of")).first
    previous = None
    for _ in range(20):
        text = counter.inner_text()
        if text == previous:
            return int(text.split()[1])
        previous = text
        page.wait_for_timeout(1500)
    raise AssertionError(f"the epoch counter never settled: {previous}")


def test_pause_stops_a_long_run_and_step_goes_on_from_there(browser, app_url):
    # 250 steps per epoch: a run of minutes, so the click lands while it trains.
    context, page = fresh_page(browser, app_url, "?epochs=500&n_samples=2000&batch_size=4", wait=False)
    try:
        page.get_by_text(re.compile(r"Training: epoch \d+ ")).wait_for(timeout=120_000)
        page.get_by_role("button", name="Pause").click()  # while the first run is still training
        settle(page)
        epoch = stable_epoch(page)
        assert 0 < epoch < 500
        page.get_by_role("button", name="Step").click()
        settle(page)
        assert stable_epoch(page) == epoch + 1  # Step goes on from where the pause left the run
    finally:
        context.close()


def test_downloads_hold_the_model_the_history_and_a_script(browser, app_url):
    context, page = fresh_page(browser, app_url, "?epochs=10&n_samples=200")
    try:
        files = {}
        for label in ("Model (.keras)", "Loss history (.csv)", "Python script (.py)"):
            with page.expect_download() as download:
                page.get_by_role("button", name=label).click()
            files[label] = Path(download.value.path()).read_bytes()
        with zipfile.ZipFile(io.BytesIO(files["Model (.keras)"])) as archive:  # a .keras file is a zip
            assert "config.json" in archive.namelist()
        history = files["Loss history (.csv)"].decode().splitlines()
        assert history[0].startswith("epoch,train_loss,test_loss") and len(history) == 11
        script = files["Python script (.py)"].decode()
        assert "import keras" in script and "model.fit" in script and "test_accuracy=" in script
    finally:
        context.close()
