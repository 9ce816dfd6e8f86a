"""The run store's glue to Streamlit (ui/stored_runs.py, ui/session.py): where the store lives, what pages write
to it, how a cancelled run is kept, and how a later session finds and opens a stored run.

Every test has an empty store of its own (tests/conftest.py sets NN_DASHBOARD_RUNS to a temporary folder).
"""

import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import platformdirs
import pytest
import streamlit as st
from apptest_helpers import DASHBOARD, TIMEOUT, assert_clean
from streamlit.runtime.secrets import Secrets
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from models.config import ExperimentConfig
from models.engine import train_many
from models.run_store import close_all, open_store
from ui import stored_runs
from ui.session import config_label, run_label

LOSS_LANDSCAPE = "pages/loss_landscape.py"
TINY = ExperimentConfig(dataset="circle", n_samples=120, epochs=20, batch_size=16, hidden_layers=(4,))


def _store():
    """This test's own store (the folder tests/conftest.py points NN_DASHBOARD_RUNS at)."""
    return open_store(os.environ[stored_runs.ENV_VAR])


def _fresh_session(page: str) -> AppTest:
    """A new browser session opened directly on `page`: the router runs, and no other page trains first."""
    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    at.switch_page(page).run()
    return at


def _session_runs(at: AppTest) -> list:
    return list(at.session_state["trained_runs"].values())


# --- store_location ------------------------------------------------------------------------------------------


@pytest.fixture
def secrets_file(tmp_path, monkeypatch):
    """Write `.streamlit/secrets.toml` in a temporary folder and make it the app's only secrets file.

    A fresh `Secrets` reads it as Streamlit does (TOML, `[run_store]` table); its file watcher is not started.
    """
    path = tmp_path / ".streamlit" / "secrets.toml"
    path.parent.mkdir()
    monkeypatch.setattr("streamlit.watcher.path_watcher.watch_file", lambda *args, **kwargs: None)
    monkeypatch.setattr(st, "secrets", Secrets())
    with patch_config_options({"secrets.files": [str(path)]}):
        yield path


def test_the_environment_variable_wins_over_secrets(secrets_file, tmp_path, monkeypatch):
    """NN_DASHBOARD_RUNS names the folder even when secrets.toml names another (or turns the store off)."""
    secrets_file.write_text('[run_store]\npath = "/somewhere/else"\nenabled = false\n')
    monkeypatch.setenv(stored_runs.ENV_VAR, str(tmp_path / "mine"))
    assert stored_runs.store_location() == tmp_path / "mine"


@pytest.mark.parametrize("value", ["off", "OFF", "Off", " off "])
def test_off_in_any_case_turns_the_store_off(value, monkeypatch):
    """The value "off" of NN_DASHBOARD_RUNS, whatever its case, means no store: store_location is None."""
    monkeypatch.setenv(stored_runs.ENV_VAR, value)
    assert stored_runs.store_location() is None
    assert stored_runs.active_store() is None and stored_runs.stored_runs() == []


def test_secrets_enabled_false_turns_the_store_off(secrets_file, monkeypatch):
    """With no environment variable, `[run_store] enabled = false` in secrets.toml turns the store off."""
    monkeypatch.delenv(stored_runs.ENV_VAR)
    secrets_file.write_text("[run_store]\nenabled = false\n")
    assert stored_runs.store_location() is None


def test_secrets_path_is_used(secrets_file, tmp_path, monkeypatch):
    """With no environment variable, `[run_store] path` in secrets.toml is the folder (a leading ~ expanded)."""
    monkeypatch.delenv(stored_runs.ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    secrets_file.write_text('[run_store]\npath = "~/team-runs"\n')
    assert stored_runs.store_location() == tmp_path / "home" / "team-runs"


def test_secrets_path_off_turns_the_store_off(secrets_file, monkeypatch):
    """`[run_store] path = "OFF"` in secrets.toml turns the store off, as the environment variable's "off" does."""
    monkeypatch.delenv(stored_runs.ENV_VAR)
    secrets_file.write_text('[run_store]\npath = "OFF"\n')
    assert stored_runs.store_location() is None


def test_with_neither_the_store_is_in_the_user_data_folder(secrets_file, tmp_path, monkeypatch):
    """No environment variable and no secrets file: platformdirs' user data folder + "runs"; on Linux that is
    $XDG_DATA_HOME/nn-dashboard/runs (the XDG base directory spec, which platformdirs follows)."""
    monkeypatch.delenv(stored_runs.ENV_VAR)
    assert not secrets_file.exists()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    location = stored_runs.store_location()
    assert location == Path(platformdirs.user_data_dir("nn-dashboard", appauthor=False)) / "runs"
    if sys.platform.startswith("linux"):
        assert location == tmp_path / "data" / "nn-dashboard" / "runs"


def test_an_unusable_store_folder_is_one_warning_and_pages_still_train(tmp_path, monkeypatch):
    """A store folder that cannot be created (its parent is a file): the page says so once, trains and draws."""
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv(stored_runs.ENV_VAR, str(tmp_path / "a-file" / "runs"))
    at = _fresh_session(LOSS_LANDSCAPE)
    assert not at.exception and not at.error
    assert len([w for w in at.warning if "cannot be kept between sessions" in w.value]) == 1
    (trained,) = _session_runs(at)
    assert trained.status == "completed" and trained.run_id is None and at.get("vega_lite_chart")
    at.run()
    assert not any("cannot be kept between sessions" in w.value for w in at.warning)  # said once per session


def test_a_failed_write_is_one_warning_and_the_run_stays_in_the_session(monkeypatch):
    """Writing a finished run fails (a full disk): the page warns once, keeps the run in the session, draws."""
    from models.run_store import RunStore

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunStore, "finish", disk_full)
    at = _fresh_session(LOSS_LANDSCAPE)
    assert not at.exception and not at.error
    assert len([w for w in at.warning if "could not be written to the run store" in w.value]) == 1
    (trained,) = _session_runs(at)
    assert trained.status == "completed" and trained.run_id is None and at.get("vega_lite_chart")


# --- a page's run in the store -------------------------------------------------------------------------------


def test_a_page_run_is_stored_and_a_later_session_opens_it_instead_of_training():
    """Loss Landscape trains its default on a first visit: the store lists it as completed, trained on "Loss
    Landscape", named with its test accuracy. A second session finds it there: no new row, no training, and the
    picker shows it with the same history."""
    first = _fresh_session(LOSS_LANDSCAPE)
    assert_clean(first)
    (trained,) = _session_runs(first)
    (row,) = _store().list_runs()
    assert (row.status, row.page, row.config_key, row.epochs_done) == (
        "completed", "Loss Landscape", trained.config.key(), trained.config.epochs)
    assert row.test_acc == pytest.approx(trained.history.test_acc[-1])
    assert row.name == f"{config_label(trained.config)} · {row.test_acc:.0%} test" == run_label(trained)
    assert trained.run_id == row.run_id

    second = _fresh_session(LOSS_LANDSCAPE)
    assert_clean(second)
    assert not any("No model trained yet" in i.value for i in second.info)
    assert [r.run_id for r in _store().list_runs()] == [row.run_id]  # nothing new was trained or written
    picker = second.selectbox(key="ll_model")
    # The page's own default, reopened from the store into this session (so no "· stored" mark any more).
    assert picker.value == row.config_key and picker.options == [row.name]
    (opened,) = _session_runs(second)
    assert opened.run_id == row.run_id
    assert opened.history.test_loss == trained.history.test_loss
    assert opened.history.train_acc == trained.history.train_acc


def test_a_second_session_training_the_same_config_reuses_the_stored_run():
    """train_together with a config already completed in the store opens it (_reopen_stored): no second row."""
    (result,) = train_many([TINY.replace(epochs=3)])
    run_id = _store().save(result, "Playground", run_label(result))

    def script():
        from models.config import ExperimentConfig
        from ui import session

        config = ExperimentConfig(dataset="circle", n_samples=120, epochs=3, batch_size=16, hidden_layers=(4,))
        session.train_together([config])

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert [r.run_id for r in _store().list_runs()] == [run_id]
    (opened,) = _session_runs(at)
    assert opened.run_id == run_id and opened.history.test_loss == result.history.test_loss


# --- cancellation --------------------------------------------------------------------------------------------


def _train_until_interrupted(stop_after: int, how: str) -> None:
    """An AppTest script: train TINY and interrupt it when `stop_after` epochs are done, as a widget change does
    (`how` = "stop": Streamlit's own control-flow exception, st.stop; "error": an exception)."""
    import streamlit as st

    from models.config import ExperimentConfig
    from ui import session

    def on_update(partials):
        if len(partials[0].history) >= stop_after:
            if how == "stop":
                st.stop()
            raise RuntimeError("interrupted while training")

    config = ExperimentConfig(dataset="circle", n_samples=120, epochs=20, batch_size=16, hidden_layers=(4,))
    session.train_together([config], on_update=on_update)


@pytest.mark.parametrize("how", ["stop", "error"])
def test_an_interrupted_run_is_stored_as_cancelled_at_its_last_epoch(how):
    """A run interrupted after 4 of 20 epochs is kept as "cancelled" with 4 epochs, and it opens."""
    at = AppTest.from_function(_train_until_interrupted, kwargs={"stop_after": 4, "how": how},
                               default_timeout=TIMEOUT).run()
    assert bool(at.exception) == (how == "error")
    (row,) = _store().list_runs()
    assert row.status == "cancelled" and 0 < row.epochs_done < TINY.epochs and row.epochs_done == 4
    assert row.config_key == TINY.key() and row.finished is not None
    loaded = _store().load(row.run_id)
    assert loaded.status == "cancelled" and len(loaded.history) == 4
    assert loaded.history.test_acc[-1] == pytest.approx(row.test_acc)
    probs = loaded.model.predict(loaded.dataset.x_test, verbose=0)
    assert probs.shape == (len(loaded.dataset.y_test), 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert stored_runs.reusable(TINY) is None  # a cancelled run is never reused in place of training


def test_a_run_interrupted_before_its_first_epoch_leaves_no_row(monkeypatch):
    """An interruption during the first epoch (here an error while its batches are drawn) leaves nothing: no
    row, no run folder, no half-written folder."""

    def interrupted(*args, **kwargs):
        raise RuntimeError("interrupted before the first epoch ended")

    monkeypatch.setattr("models.engine.epoch_batches", interrupted)
    at = AppTest.from_function(_train_until_interrupted, kwargs={"stop_after": 4, "how": "error"},
                               default_timeout=TIMEOUT).run()
    assert "before the first epoch" in at.exception[0].value
    store = _store()
    assert store.list_runs() == []
    assert list((store.root / "runs").iterdir()) == [] and list((store.root / "tmp").iterdir()) == []


# --- the store turned off ------------------------------------------------------------------------------------


def test_with_the_store_off_pages_train_and_nothing_is_written(tmp_path, monkeypatch):
    """NN_DASHBOARD_RUNS=off: Loss Landscape still trains and draws, no store folder appears (neither the
    test's nor the default one), and the Runs page says the store is off."""
    monkeypatch.setenv(stored_runs.ENV_VAR, "off")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    at = _fresh_session(LOSS_LANDSCAPE)
    assert_clean(at)
    (trained,) = _session_runs(at)
    assert trained.status == "completed" and trained.run_id is None
    assert at.get("vega_lite_chart")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()

    at.switch_page("pages/runs.py").run()
    assert_clean(at)
    assert any("The run store is turned off" in i.value for i in at.info)
    assert not at.dataframe
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


# --- the model picker and stored runs ------------------------------------------------------------------------


def test_another_page_lists_a_run_stored_earlier_and_opens_the_same_model():
    """A run stored by an earlier process appears in Backpropagation's picker; choosing it gives a TrainResult
    whose model predicts what the original model predicted (oracle: model.predict of the run as trained)."""
    (original,) = train_many([TINY.replace(epochs=5)])
    run_id = _store().save(original, "Playground", run_label(original))
    close_all()  # as after a server restart: the page opens the store from disk

    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    at.session_state["bp_view"] = "Gradient flow during training"  # the view with the model picker
    at.switch_page("pages/backprop.py").run()
    assert_clean(at)
    picker = at.selectbox(key="bp_model")  # a new session starts on the page's own default, trained now
    assert picker.options[-1] == f"{run_label(original)} · stored"
    picker.set_value(original.config.key()).run()
    assert_clean(at)
    (opened,) = [r for r in _session_runs(at) if r.run_id == run_id]
    assert opened is not original
    x = original.dataset.x_test
    np.testing.assert_allclose(opened.model.predict(x, verbose=0), original.model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    assert len(_store().list_runs()) == 2  # the page's default was stored; opening the old run wrote nothing


def test_the_picker_leaves_out_stored_runs_whose_settings_this_version_cannot_read():
    """The only stored run has a config field this version does not know: the picker does not offer it (it could
    not be opened), so Loss Landscape trains its default as on a first visit."""
    (result,) = train_many([TINY.replace(epochs=3)])
    run_id = _store().save(result, "Playground", run_label(result))
    config = json.loads(_store().get(run_id).config_json) | {"label_smoothing": 0.1}
    with sqlite3.connect(_store().index_path) as conn:
        conn.execute("UPDATE runs SET config_json = ? WHERE run_id = ?", (json.dumps(config), run_id))
    at = _fresh_session(LOSS_LANDSCAPE)
    assert_clean(at)
    assert not at.warning
    (trained,) = _session_runs(at)
    assert trained.config == ExperimentConfig() and at.selectbox(key="ll_model").value == trained.config.key()
    assert len(at.selectbox(key="ll_model").options) == 1
