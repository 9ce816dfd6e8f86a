"""Cold start (issue 15): `streamlit run dashboard.py` serves an st.App whose lifespan imports TensorFlow
in the background from server start; the router waits for it. Checked in fresh interpreters: what a
process has imported is the point."""

import os
import subprocess
import sys
from pathlib import Path

from streamlit.web.server.app_discovery import discover_asgi_app

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_streamlit_run_finds_the_app_in_the_router():
    found = discover_asgi_app(ROOT / "dashboard.py")
    assert found.is_asgi_app and found.import_string == "dashboard:app"


def test_importing_the_router_is_light_and_starts_nothing():
    """What `streamlit run` does at server start, before the lifespan: no TensorFlow yet, no page run."""
    out = _python(
        "import sys, dashboard, threading; from ui import preload;"
        "print(type(dashboard.app).__name__, 'keras' in sys.modules, 'tensorflow' in sys.modules,"
        " preload._thread is None, 'PAGES' in vars(dashboard))"
    )
    assert out.endswith("App False False True False")


def test_the_lifespan_imports_tensorflow_in_the_background_once():
    out = _python(
        "import asyncio, sys, threading\n"
        "from ui import preload\n"
        "async def serve():\n"
        "    async with preload.lifespan(None):\n"
        "        first = preload._thread\n"
        "        preload.start()\n"
        "        assert preload._thread is first and first.daemon\n"
        "        preload.wait()\n"
        "        print('tensorflow' in sys.modules, not first.is_alive())\n"
        "asyncio.run(serve())\n",
        STREAMLIT_SERVER_HEADLESS="true",  # no browser tab from a test
    )
    assert out == "True True"


def test_the_preload_can_be_switched_off_for_measurements():
    out = _python(
        "import sys\nfrom ui import preload\npreload.start()\npreload.wait()\n"
        "print(preload._thread is None, 'keras' in sys.modules)",
        NN_DASHBOARD_PRELOAD="0",
    )
    assert out == "True False"


def test_the_app_opens_a_browser_tab_as_streamlit_run_does_unless_headless():
    code = ("import streamlit.cli_util as c\nfrom streamlit import config\nfrom ui import preload\n"
            "c.open_browser = lambda url: print('open', url)\nconfig.set_option('server.port', 8765)\n"
            "config.set_option('server.headless', {})\npreload._open_browser()\nprint('done')")
    assert _python(code.format(False)) == "open http://localhost:8765\ndone"
    assert _python(code.format(True)) == "done"
