"""Runs outlive the browser session and the server: the real server, Debian's Chromium, a store folder of
the test's own. A run trained on the Playground is listed on the Runs page after a reload and opens on
another page; a server killed (SIGKILL) while training leaves its run marked "interrupted" after a restart.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, running_server, wait_for_script

pytestmark = pytest.mark.browser


def _rows(store: Path) -> list[tuple[str, str, int]]:
    """(name, status, epochs_done) of every run, read straight from the index (no store code involved)."""
    with sqlite3.connect(store / "index.sqlite", timeout=30) as conn:
        return conn.execute("SELECT name, status, epochs_done FROM runs ORDER BY created").fetchall()


def _wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_playground_run_is_listed_after_a_reload_and_opens(browser, tmp_path):
    store = tmp_path / "runs"
    with running_server(runs_dir=store) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = context.new_page()
        try:
            page.goto(f"{server.url}/?epochs=30")
            wait_for_script(page)
            page.wait_for_selector("text=Epoch 30", timeout=120_000)
            rows = _wait_for(lambda: [r for r in _rows(store) if r[1] == "completed"], 60, "a completed row")
            assert rows[0][2] == 30 and rows[0][0].startswith("circle · 2x8 tanh")

            page.reload()  # a new browser session: nothing of the old one is left but the store
            wait_for_script(page)
            page.wait_for_selector("text=Epoch 30", timeout=120_000)
            assert len(_rows(store)) == 1  # the same setting again is the stored run, not a second copy
            page.goto(f"{server.url}/runs")
            wait_for_script(page)
            page.wait_for_selector(".vega-embed", timeout=60_000)
            target = page.locator(".st-key-runs_action_target input")
            assert target.input_value() == rows[0][0]  # the newest runs are selected: ours is the one
            assert page.locator("[data-testid='stException']").count() == 0
            page.screenshot(path=str(ARTIFACTS / "runs_after_reload.png"), full_page=True)

            page.locator("[data-testid='stSelectbox']", has_text="Open in").click()
            page.get_by_role("option", name="Loss Landscape").click()
            wait_for_script(page)
            page.locator(".st-key-runs_open button").click()
            page.wait_for_url("**/loss_landscape", timeout=60_000)
            wait_for_script(page)
            page.wait_for_selector(".vega-embed", timeout=120_000)
            picker = page.locator("[data-testid='stSelectbox']", has_text="Model to explore").locator("input")
            assert picker.input_value().startswith("circle · 2x8 tanh")
            assert page.locator("[data-testid='stException']").count() == 0
            # It was opened from the store, not trained again: still exactly one run in the index.
            assert len(_rows(store)) == 1
        finally:
            context.close()


def test_a_server_killed_mid_training_leaves_its_run_interrupted(browser, tmp_path):
    store = tmp_path / "runs"
    with running_server(runs_dir=store) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = context.new_page()
        try:
            page.goto(f"{server.url}/?epochs=2000")
            page.wait_for_selector("text=Training: epoch", timeout=120_000)
            _wait_for(lambda: [r for r in _rows(store) if r[1] == "running"], 60, "a running row")
            os.kill(server.pid, signal.SIGKILL)
        finally:
            context.close()
    assert [r[1] for r in _rows(store)] == ["running"]  # nobody has looked yet

    with running_server(runs_dir=store) as server:  # the restart
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = context.new_page()
        try:
            page.goto(f"{server.url}/runs")
            page.wait_for_selector("[data-testid='stDataFrame']", timeout=120_000)
            wait_for_script(page)
            assert page.locator("[data-testid='stException']").count() == 0
            statuses = [r[1] for r in _rows(store)]
            assert statuses[0] == "interrupted", statuses
            with sqlite3.connect(store / "index.sqlite") as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert not any((store / "tmp").iterdir())
        finally:
            context.close()
