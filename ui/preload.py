"""Import TensorFlow in the background from the moment the server starts (issue 15: cold start).

Every page needs TensorFlow, and importing it (through Keras, which also pulls in pandas, SciPy and
scikit-learn) takes about 3 s of a cold start's 8. A classic Streamlit app runs no code of its own before
the first browser session connects, so that import used to begin only once the browser had loaded the
app. `streamlit run dashboard.py` instead finds the `st.App` in dashboard.py, whose `lifespan` (below)
starts the import on a background thread at server start: it runs while the server answers its health
check and the browser downloads and starts the app, on the other core. Measured on 2 cores (the setup of
benchmarks/bench_cold_start.py): spawn to the Playground's first chart 4.83 -> 4.56 s median, faster in 8
of 8 paired starts at load average 2-4; within the noise at load 5-9. It gains less than the import's head
start: the server serves the app's files more slowly while the import holds the GIL.

The router waits for it (`wait`) before its own imports, which are then dictionary look-ups: no two
threads ever import the same packages at once (interleaved imports of one package from two threads can
deadlock). Without a server (AppTest, a plain `import`) nothing starts and `wait` returns at once.
"""

from __future__ import annotations

import os
import threading
from contextlib import asynccontextmanager

PRELOADED = ("keras",)  # imports tensorflow, pandas, scipy and sklearn on its way

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _import() -> None:
    try:
        for name in PRELOADED:
            __import__(name)
    except Exception:  # noqa: BLE001  the page's own import raises it again, where the user sees it
        pass


def start() -> None:
    """Start the background import, once per process (not with NN_DASHBOARD_PRELOAD=0: to measure without it)."""
    global _thread
    with _lock:
        if _thread is None and os.environ.get("NN_DASHBOARD_PRELOAD", "1") != "0":
            _thread = threading.Thread(target=_import, name="preload-tensorflow", daemon=True)
            _thread.start()


def wait() -> None:
    """Return once the background import has ended (at once if none was started)."""
    if _thread is not None:
        _thread.join()


def _open_browser() -> None:
    """What `streamlit run` does for a classic app once its server is up, and skips for an `st.App`:
    open the app in a browser tab, unless the server is headless."""
    from streamlit import cli_util, config
    from streamlit.web.server import server_util

    if config.get_option("server.headless"):
        return
    if config.is_manually_set("browser.serverAddress"):
        address = config.get_option("browser.serverAddress")
    elif config.is_manually_set("server.address"):
        address = server_util.get_display_address(config.get_option("server.address"))
    else:
        address = "localhost"
    cli_util.open_browser(server_util.get_url(address))


@asynccontextmanager
async def lifespan(_app):
    """The `st.App` lifespan: start importing TensorFlow, open the browser as `streamlit run` would."""
    start()
    try:
        _open_browser()
    except Exception:  # noqa: BLE001  no browser to open is not a reason to stop the server
        pass
    yield
