"""The Runs page (pages/runs.py, ui/runs_views.py) through Streamlit's AppTest, on a store of tiny runs.

Every test has an empty store of its own (tests/conftest.py); runs are trained here with the engine and saved with
RunStore.save, as a page would have stored them.
"""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid

import numpy as np
import pytest
from apptest_helpers import DASHBOARD, assert_clean
from streamlit.testing.v1 import AppTest

from models.config import ExperimentConfig
from models.engine import train_many
from models.run_store import open_store
from ui.runs_actions import PICKER_PAGES, _script_or_reason
from ui.runs_views import FIRST_VISIT, table_key
from ui.session import run_label
from ui.stored_runs import ENV_VAR

PAGE = "pages/runs.py"
TIMEOUT = 120
TINY = ExperimentConfig(dataset="circle", n_samples=120, epochs=5, batch_size=16, hidden_layers=(4,))
# Four runs that differ in activation, learning rate or both (one compiled loop trains them side by side).
FOUR = [TINY.replace(activation=a, learning_rate=lr) for a in ("tanh", "relu") for lr in (0.01, 0.1)]


def _store():
    return open_store(os.environ[ENV_VAR])


def _save(configs, page="Playground", statuses=None):
    """Train `configs` side by side and store them in order (the last saved is the newest); their run ids."""
    store = _store()
    ids = []
    for i, result in enumerate(train_many(configs)):
        status = statuses[i] if statuses else None
        run_id = store.begin(result.config, page, run_label(result))
        store.finish(run_id, result, status=status)
        ids.append(run_id)
    return ids


def _runs_page() -> AppTest:
    """A fresh session opened directly on the Runs page (no other page trains first)."""
    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    return at


def _table(at: AppTest):
    """The runs table as shown (index: run ids)."""
    return at.dataframe[0].value


def _select(at: AppTest, positions: list[int]) -> AppTest:
    """Tick the rows at these positions of the shown table, as a click in the table does."""
    at.session_state[table_key(_table(at).index)] = {"selection": {"rows": positions, "columns": []}}
    return at.run()


def _button(at: AppTest, label: str):
    (button,) = [b for b in at.button if b.label == label]
    return button


def test_a_first_visit_trains_three_runs_and_ranks_them_by_measured_test_loss():
    """An empty store: the page trains the three learning rates, lists and charts them, and its caption names as
    best the run whose stored final test loss is really the lowest."""
    at = _runs_page()
    assert_clean(at)
    rows = _store().list_runs()
    assert sorted(r.config.learning_rate for r in rows) == [0.003, 0.03, 0.3]
    assert {r.config.replace(learning_rate=0.03) for r in rows} == {FIRST_VISIT[1]}
    assert all(r.status == "completed" and r.page == "Runs" for r in rows)
    assert len(_table(at)) == 3 and set(_table(at).index) == {r.run_id for r in rows}
    assert len(at.get("vega_lite_chart")) == 1
    caption = next(c.value for c in at.caption if c.value.startswith("Lowest final test loss: "))
    best_name, best_loss = re.match(r"Lowest final test loss: (.+) with ([0-9.e+-]+);", caption).groups()
    best = min(rows, key=lambda r: r.test_loss)
    assert best_name == best.name and float(best_loss) == pytest.approx(best.test_loss, rel=1e-3)
    assert f"highest: {max(r.test_loss for r in rows):.4g}." in caption


def test_the_differences_table_names_only_the_settings_that_differ():
    """Two chosen runs that differ in learning rate only: the table has that one row; two that differ in
    activation and learning rate: exactly those two rows. Oracle: the fields unequal in the two config dicts."""
    ids = _save(FOUR)
    at = _runs_page()
    assert_clean(at)
    shown = list(_table(at).index)
    assert shown == ids[::-1]  # newest first
    rows = {r.run_id: r for r in _store().list_runs()}

    def differing(a, b):
        x, y = json.loads(rows[a].config_json), json.loads(rows[b].config_json)
        return sorted(k for k in x if x[k] != y[k])

    for positions, expected in (([0, 1], ["learning_rate"]), ([0, 3], ["activation", "learning_rate"])):
        _select(at, positions)
        assert_clean(at)
        assert differing(shown[positions[0]], shown[positions[1]]) == expected
        table = at.dataframe[1].value
        assert sorted(table.index) == expected
        assert list(table.columns) == [rows[shown[p]].name for p in positions]
        assert table.loc["learning_rate"].tolist() == [repr(rows[shown[p]].config.learning_rate) for p in positions]
        assert any(m.value.startswith("**Settings that differ**") for m in at.markdown)


def test_search_and_status_filters_reduce_the_rows_and_sort_orders_them():
    """Searching "relu" keeps the two relu runs; the status filter keeps the one cancelled run; sorting by test
    accuracy orders the rows by their stored test accuracy, both ways."""
    ids = _save(FOUR, statuses=["completed", "cancelled", "completed", "completed"])
    at = _runs_page()
    assert len(_table(at)) == 4
    rows = {r.run_id: r for r in _store().list_runs()}

    at.text_input(key="runs_search").input("relu").run()
    assert_clean(at)
    assert set(_table(at).index) == {i for i in ids if rows[i].config.activation == "relu"} and len(_table(at)) == 2
    at.text_input(key="runs_search").input("").run()

    at.multiselect(key="runs_statuses").set_value(["cancelled"]).run()
    assert list(_table(at).index) == [ids[1]]
    at.multiselect(key="runs_statuses").set_value(["completed"]).run()
    assert set(_table(at).index) == set(ids) - {ids[1]}
    at.multiselect(key="runs_statuses").set_value([]).run()

    accuracies = sorted((rows[i].test_acc for i in ids), reverse=True)
    at.selectbox(key="runs_sort").set_value("test accuracy").run()
    assert_clean(at)
    assert _table(at)["test acc"].tolist() == pytest.approx(accuracies)
    at.selectbox(key="runs_order").set_value("↑").run()
    assert _table(at)["test acc"].tolist() == pytest.approx(accuracies[::-1])


def test_rename_and_tags_persist_and_an_empty_name_is_refused():
    """The forms rename and tag the run: the store row, the table and a new session show it; an empty name shows
    an error and keeps the name."""
    (run_id,) = _save([TINY])
    at = _runs_page()
    at.text_input(key=f"runs_name_{run_id}").input("  baseline  ")
    _button(at, "Rename").click().run()
    assert_clean(at)
    assert _store().get(run_id).name == "baseline" and _table(at).loc[run_id, "name"] == "baseline"

    at.text_input(key=f"runs_tag_text_{run_id}").input("small, circle, small,")
    _button(at, "Save tags").click().run()
    assert_clean(at)
    assert _store().get(run_id).tags == ("small", "circle") and _table(at).loc[run_id, "tags"] == "small, circle"

    at.text_input(key=f"runs_name_{run_id}").input("   ")
    _button(at, "Rename").click().run()
    assert [e.value for e in at.error] == ["A run's name cannot be empty."]
    assert _store().get(run_id).name == "baseline"

    again = _runs_page()
    assert_clean(again)
    assert _table(again).loc[run_id, ["name", "tags"]].tolist() == ["baseline", "small, circle"]


def test_delete_asks_first_and_removes_rows_and_folders_only_for_good():
    """The first click deletes nothing and asks; Cancel keeps the runs; "Delete for good" removes the chosen
    rows and their folders and leaves the others."""
    ids = _save(FOUR)
    store = _store()
    at = _runs_page()
    _select(at, [0, 1])
    chosen = list(_table(at).index[:2])
    at.button(key="runs_delete").click().run()
    assert_clean(at)
    assert len(store.list_runs()) == 4
    assert any("for good" in w.value and all(store.get(i).name in w.value for i in chosen) for w in at.warning)

    at.button(key="runs_delete_no").click().run()
    assert_clean(at)
    assert len(store.list_runs()) == 4 and not any("for good" in w.value for w in at.warning)

    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert_clean(at)
    left = {r.run_id for r in store.list_runs()}
    assert left == set(ids) - set(chosen)
    assert {p.name for p in (store.root / "runs").iterdir()} == left
    assert set(_table(at).index) == left


def test_deleting_every_run_does_not_bring_the_examples_back():
    """After the user deletes all runs the page stays empty (says so) until they ask for the examples."""
    _save(FOUR[:2])
    store = _store()
    at = _runs_page()
    _select(at, [0, 1])
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert_clean(at)
    assert store.list_runs() == [] and not at.dataframe
    assert any("No runs are stored" in i.value for i in at.info)
    at.button(key="runs_examples").click().run()
    assert_clean(at)
    assert len(store.list_runs()) == len(FIRST_VISIT)


def test_a_filter_starts_a_new_selection_instead_of_reusing_row_positions():
    """Selections are row positions: after a filter the same positions would name other runs, so the table's
    key changes with its rows and the selection starts again from the first rows shown."""
    _save(FOUR)
    at = _runs_page()
    _select(at, [2, 3])
    before = list(_table(at).index)
    compared = at.selectbox(key="runs_action_target").options
    assert len(compared) == 2
    at.text_input(key="runs_search").set_value("relu").run()
    assert_clean(at)
    shown = list(_table(at).index)
    assert len(shown) == 2 and table_key(shown) != table_key(before)
    # The compared runs are the rows now shown (the default selection), all relu, not positions 2 and 3 of old.
    names = at.selectbox(key="runs_action_target").options
    assert len(names) == 2 and all("relu" in n for n in names)


@pytest.mark.parametrize("title", list(PICKER_PAGES))
def test_open_in_a_page_switches_to_it_showing_the_run(title):
    """"Open in" with a page chosen and Open clicked: that page is shown, on a view with its model picker (the
    page's own default view may have none: Backpropagation's), and the picker shows the stored run."""
    _save([TINY.replace(epochs=6)])
    (row,) = _store().list_runs()
    at = _runs_page()
    at.selectbox(key="runs_open_target").set_value(title)
    at.button(key="runs_open").click().run()
    assert_clean(at)
    assert [t.value for t in at.title] == [title]
    _, picker, views = PICKER_PAGES[title]
    assert {key: at.radio(key=key).value for key in views} == views  # each a real option, not reset to a default
    assert at.selectbox(key=picker).value == row.config_key
    assert at.session_state["trained_runs"][row.config_key].run_id == row.run_id


def test_open_in_the_playground_retrains_the_same_settings():
    """"Open in" Playground for a circle MLP: the Playground opens with the run's settings (the same config key)."""
    _save([TINY.replace(epochs=6)])
    (row,) = _store().list_runs()
    at = _runs_page()
    assert at.selectbox(key="runs_open_target").options[0] == "Playground"
    at.button(key="runs_open").click().run()  # the first choice
    assert_clean(at)
    assert [t.value for t in at.title] == ["Playground"]
    assert at.session_state["pg_live_current"] == row.config_key


def test_open_in_the_feature_hierarchy_sets_its_sidebar_and_shows_the_stored_cnn():
    """A CNN the Feature Hierarchy's sidebar can express: "Open in" lists that page first, sets every sidebar
    widget to the run's settings, and the page shows the stored model (the same run id) instead of training
    it again; an MLP run does not offer the page."""
    from models.recipes import DEFAULT_CNN

    cnn = DEFAULT_CNN.replace(n_samples=200, conv_filters=(4, 8), epochs=2)
    _save([cnn], page="Feature Hierarchy")
    (row,) = _store().list_runs()
    at = _runs_page()
    assert at.selectbox(key="runs_open_target").options[0] == "Feature Hierarchy"
    at.button(key="runs_open").click().run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Feature Hierarchy"]
    assert at.slider(key="fh_samples").value == 200 and at.slider(key="fh_blocks").value == 2
    assert at.select_slider(key="fh_filters").value == 4 and at.slider(key="fh_epochs").value == 2
    assert at.session_state["trained_runs"][row.config_key].run_id == row.run_id
    assert len(_store().list_runs()) == 1  # opened, not trained and stored again

    (mlp_id,) = _save([TINY])
    at = _runs_page()
    at.selectbox(key="runs_action_target").set_value(mlp_id).run()
    assert "Feature Hierarchy" not in at.selectbox(key="runs_open_target").options
    at.selectbox(key="runs_action_target").set_value(row.run_id).run()
    assert at.selectbox(key="runs_open_target").options[0] == "Feature Hierarchy"


def test_open_in_the_activation_lab_reopens_the_comparison_the_run_was_part_of():
    """An MLP run that was compared with two other activations (same settings otherwise) and one unrelated run:
    "Open in" Activation Lab sets the lab's settings to the run's, picks the three activations of that
    comparison (the chosen run's first) and reopens all three from the store instead of training them."""
    from ui.runs_actions import lab_activations

    ids = _save([TINY.replace(activation=a) for a in ("relu", "tanh", "sigmoid")], page="Activation Lab")
    _save([TINY.replace(activation="elu", learning_rate=0.1)])  # differs in more than the activation
    store = _store()
    row = next(r for r in store.list_runs() if r.run_id == ids[1])
    chosen = lab_activations(store, row)
    assert chosen[0] == "tanh" and sorted(chosen) == ["relu", "sigmoid", "tanh"]
    at = _runs_page()
    at.selectbox(key="runs_action_target").set_value(row.run_id).run()
    assert "Activation Lab" in at.selectbox(key="runs_open_target").options
    at.selectbox(key="runs_open_target").set_value("Activation Lab")
    at.button(key="runs_open").click().run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Activation Lab"]
    assert at.multiselect(key="al_activations").value[0] == "tanh"
    assert sorted(at.multiselect(key="al_activations").value) == ["relu", "sigmoid", "tanh"]
    assert at.slider(key="al_n_samples").value == TINY.n_samples
    opened = {r.run_id for r in at.session_state["trained_runs"].values()}
    assert set(ids) <= opened
    assert len(_store().list_runs()) == 4  # reopened, not trained and stored again


def test_a_run_compared_with_nothing_opens_in_the_lab_beside_one_more_activation():
    from ui.runs_actions import lab_activations

    _save([TINY.replace(activation="tanh")])
    (row,) = _store().list_runs()
    assert lab_activations(_store(), row) == ["tanh", "relu"]


def test_a_corrupt_model_file_is_listed_and_opening_it_warns():
    """A model.keras of garbage bytes: the Runs page still lists and charts the run (its history is in
    run.json), and opening it, from the Runs page or a page's picker, is a warning, not an exception."""
    (run_id,) = _save([TINY])
    store = _store()
    (store.root / "runs" / run_id / "model.keras").write_bytes(b"not a keras file" * 64)
    at = _runs_page()
    assert_clean(at)
    assert list(_table(at).index) == [run_id] and len(at.get("vega_lite_chart")) == 1
    at.selectbox(key="runs_open_target").set_value("Loss Landscape")
    at.button(key="runs_open").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Runs"]
    assert any("cannot be opened" in w.value and "model file" in w.value for w in at.warning)

    page = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    page.switch_page("pages/loss_landscape.py").run()  # starts on its own default; the damaged run is listed
    page.selectbox(key="ll_model").set_value(TINY.key()).run()
    assert not page.exception
    assert any("cannot be opened" in w.value for w in page.warning)


def test_a_run_whose_settings_this_version_cannot_read_is_listed_without_breaking_the_page():
    """A row whose config has a field this version does not know (written by a newer dashboard into the same
    index): the page lists it, compares it, and says it cannot be opened here instead of raising."""
    old, new = _save([TINY, TINY.replace(learning_rate=0.1)])
    config = json.loads(_store().get(new).config_json) | {"label_smoothing": 0.1}
    with sqlite3.connect(_store().index_path) as conn:
        conn.execute("UPDATE runs SET config_json = ? WHERE run_id = ?", (json.dumps(config), new))
    at = _runs_page()
    assert_clean(at)
    assert list(_table(at).index) == [new, old] and _table(at).loc[new, "architecture"] == "?"
    assert len(at.get("vega_lite_chart")) == 1
    assert sorted(at.dataframe[1].value.index) == ["label_smoothing", "learning_rate"]
    assert any("cannot be opened or exported here" in c.value for c in at.caption)
    at.selectbox(key="runs_action_target").set_value(old).run()
    assert_clean(at)
    assert at.selectbox(key="runs_open_target").options[0] == "Playground"  # the readable run has its actions


def test_two_hundred_stored_runs_are_listed():
    """200 runs (one real run folder copied 199 times and adopted by the store's recovery) all list."""
    (run_id,) = _save([TINY.replace(epochs=2)])
    store = _store()
    for _ in range(199):
        shutil.copytree(store.root / "runs" / run_id, store.root / "runs" / uuid.uuid4().hex[:16])
    store.recover()
    assert len(store.list_runs()) == 200
    at = _runs_page()
    assert_clean(at)
    assert len(_table(at)) == 200 and len(at.get("vega_lite_chart")) == 1


def test_the_exported_script_of_a_stored_playground_run_reproduces_its_test_accuracy(tmp_path):
    """The standalone script the Runs page writes for a stored Playground run (circle MLP, 60 epochs) retrains it
    with plain Keras in its own process. Oracle: the dashboard's own recorded test accuracy of that run, which
    the script's must match within 0.05."""
    (run_id,) = _save([ExperimentConfig(epochs=60)])
    row = _store().get(run_id)
    script, reason = _script_or_reason(row)
    assert script is not None, reason
    path = tmp_path / "run.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    name, value = done.stdout.strip().splitlines()[-1].split("=")
    assert name == "test_accuracy"
    assert abs(float(value) - row.test_acc) <= 0.05, (float(value), row.test_acc)
    assert np.isfinite(row.test_acc) and row.test_acc > 0.9  # the run learned: a match is not two failures
