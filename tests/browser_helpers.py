"""Start the real app with `streamlit run` and drive it in Debian's headless Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_browser() -> None:
    """Skip when Chromium is missing, unless REQUIRE_BROWSER=1 (CI), where it is a failure."""
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} not found: install it with `apt-get install -y chromium`"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running `streamlit run dashboard.py`."""

    url: str  # base URL, e.g. http://127.0.0.1:8501
    pid: int  # the server process, for its memory and CPU time

    def rss_mb(self) -> float:
        """Resident memory now, MB (from /proc)."""
        return _status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """Highest resident memory so far, MB."""
        return _status_kb(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far, seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


@contextlib.contextmanager
def running_app(timeout: float = 120):
    """`streamlit run dashboard.py` on a free port; yields the base URL once /_stcore/health says ok."""
    with running_server(timeout) as server:
        yield server.url


@contextlib.contextmanager
def running_server(timeout: float = 120, runs_dir: Path | None = None):
    """Like `running_app`, but yields a `Server` (URL and process) for memory and CPU checks.

    The server keeps its runs in `runs_dir`, or in a new empty folder (never the user's run store).
    """
    port = _free_port()
    scratch = None if runs_dir is not None else tempfile.TemporaryDirectory(prefix="runs-")
    env = {**os.environ, "NN_DASHBOARD_RUNS": str(runs_dir if runs_dir is not None else scratch.name)}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            assert proc.poll() is None, f"streamlit exited with code {proc.returncode}"
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            assert time.time() < deadline, "streamlit did not become healthy in time"
            time.sleep(0.3)
        yield Server(url, proc.pid)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        if scratch is not None:
            scratch.cleanup()


def wait_for_script(page, timeout_ms: int = 180_000) -> None:
    """Wait until the app's script has finished running, as Streamlit's own e2e tests do."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)
