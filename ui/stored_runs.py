"""Where this server keeps runs between sessions, and the calls pages make to record and reopen them.

The store (models/run_store.py) is on by default, in a `runs` folder of the user's data directory.
`NN_DASHBOARD_RUNS` (an environment variable) or `run_store.path` in `.streamlit/secrets.toml` moves it;
the value "off" there, or `run_store.enabled = false`, turns it off for a shared deployment, where one
user's runs must not be listed to another: runs then live only in the browser session, as before.
Every call here is a no-op (or returns nothing) while the store is off or could not be opened.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import platformdirs
import streamlit as st

from models.config import ExperimentConfig
from models.engine import TrainResult
from models.run_store import RunStore, RunUnavailable, StoredRun, StoreReadOnly, open_store

ENV_VAR = "NN_DASHBOARD_RUNS"
_OFF = {"off", "none", "0", "false", "no", "disabled"}
_PAGE = "_current_page_title"  # set by the router before it runs a page


def _secret_settings() -> dict:
    """The `[run_store]` table of `.streamlit/secrets.toml`, or {} when there is none."""
    try:
        return dict(st.secrets.get("run_store", {}))
    except Exception:  # no secrets file, or one that does not parse: the store keeps its defaults
        return {}


def store_location() -> Path | None:
    """The store's folder, or None when it is turned off. The environment variable wins over secrets."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        settings = _secret_settings()
        if settings.get("enabled", True) is False:
            return None
        value = settings.get("path")
    if value is not None and str(value).strip().lower() in _OFF:
        return None
    if value:
        return Path(str(value)).expanduser()
    return Path(platformdirs.user_data_dir("nn-dashboard", appauthor=False)) / "runs"


def active_store() -> RunStore | None:
    """The open store, or None when it is off or its folder cannot be used (said once per session)."""
    location = store_location()
    if location is None:
        return None
    try:
        return open_store(location)
    except OSError as err:
        if not st.session_state.get("_store_failed"):
            st.session_state["_store_failed"] = True
            st.warning(f"Runs cannot be kept between sessions: the run folder {location} cannot be used ({err}). "
                       "They stay in this session only.")
        return None


def set_current_page(title: str) -> None:
    st.session_state[_PAGE] = title


def current_page() -> str:
    return st.session_state.get(_PAGE, "Dashboard")


def _write_failed(err: Exception) -> None:
    """A failed write (disk full, folder gone, index locked for too long) costs the stored copy, never the
    page: the run stays in the session. Said once per session."""
    if not st.session_state.get("_store_write_failed"):
        st.session_state["_store_write_failed"] = True
        st.warning(f"A run could not be written to the run store ({type(err).__name__}: {err}); it stays in this "
                   "session only.")


_WRITE_ERRORS = (OSError, sqlite3.Error, StoreReadOnly, RunUnavailable)


def begin(config: ExperimentConfig, name: str) -> str | None:
    """Record that `config` starts training on the current page; the run's id, or None with no store."""
    store = active_store()
    if store is None or store.read_only:
        return None
    try:
        return store.begin(config, current_page(), name)
    except _WRITE_ERRORS as err:
        _write_failed(err)
        return None


def finish(run_id: str | None, result: TrainResult, name: str, status: str | None = None) -> None:
    """Write a finished (or cancelled, or diverged) run and note its id on `result`.

    With no begun row (`run_id` None) the run is saved in one step. A run that ended before its first
    epoch is dropped: there is nothing to reopen.
    """
    store = active_store()
    if store is None or store.read_only:
        return
    try:
        if not len(result.history):
            if run_id is not None:
                store.discard(run_id)
            return
        if run_id is None:
            run_id = store.begin(result.config, current_page(), name)
        store.finish(run_id, result, status, name)
    except _WRITE_ERRORS as err:
        _write_failed(err)
        return
    result.run_id = run_id


def discard(run_id: str | None) -> None:
    store = active_store()
    if store is not None and run_id is not None and not store.read_only:
        try:
            store.discard(run_id)
        except _WRITE_ERRORS as err:
            _write_failed(err)


def stored_runs() -> list[StoredRun]:
    """Every stored run, newest first (rows only); [] with no store."""
    store = active_store()
    return [] if store is None else store.list_runs()


def reusable(config: ExperimentConfig) -> StoredRun | None:
    """A completed stored run of exactly `config`, which a page can open instead of training again."""
    store = active_store()
    return None if store is None else store.find_finished(config.key())


def load(run_id: str) -> TrainResult:
    """The stored run, read from disk.

    Raises:
        RunUnavailable: it cannot be opened (the message says why), or the store is off.
    """
    store = active_store()
    if store is None:
        raise RunUnavailable("The run store is turned off.")
    result = store.load(run_id)
    result.run_id = run_id
    return result


__all__ = ["RunUnavailable", "StoreReadOnly", "active_store", "begin", "discard", "finish", "load", "reusable",
           "set_current_page", "store_location", "stored_runs"]
