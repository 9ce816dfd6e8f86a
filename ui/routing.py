"""Keep every page behind the router, even on a fresh server's first request.

Streamlit falls back to its older "pages/ folder" mode until some run has called st.navigation.
In that mode a first request for a page's own URL runs the page file alone: no page config, no
shared sidebar, the wrong navigation. A page that finds itself there notes where the user wanted to
go and hands over to the router, which then switches to it.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

_ROUTED = "_routed_by_dashboard"  # set by dashboard.py in every run it makes
_WANTED = "_page_wanted_before_routing"


def mark_routed() -> None:
    """Called by the router before it runs the page."""
    st.session_state[_ROUTED] = True


def require_router(page_path: str) -> None:
    """Called first by every page: hand over to the router when it did not run."""
    if not st.session_state.get(_ROUTED):
        st.session_state[_WANTED] = page_path
        st.switch_page("dashboard.py", query_params=st.query_params.to_dict())


def resume_wanted_page() -> None:
    """Called by the router after st.navigation: go to the page a first request asked for."""
    wanted = st.session_state.pop(_WANTED, None)
    if wanted is not None:
        st.switch_page(wanted, query_params=st.query_params.to_dict())


class PageStopped(Exception):
    """Raised by `stop_page`; the router catches it and goes on to draw the shared sidebar."""


def stop_page() -> NoReturn:
    """End the page here (after it has said why), like st.stop() but keeping the shared sidebar:
    stop_page() would also stop the router, whose sidebar is drawn after the page."""
    raise PageStopped
