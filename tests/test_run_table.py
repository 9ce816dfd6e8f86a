"""The Runs page's table (models/run_table.py): columns from index rows, filters, sort, architecture text.

Rows are built by hand: the table reads the index alone, so no model is trained here.
"""

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from models.config import ExperimentConfig
from models.run_store import StoredRun
from models.run_table import SORT_COLUMNS, architecture_text, filter_runs, runs_table, sort_runs

COLUMNS = ["name", "page", "dataset", "architecture", "activation", "optimiser", "learning rate", "epochs", "of",
           "train loss", "test loss", "train acc", "test acc", "status", "time (s)", "date", "tags"]
MLP = ExperimentConfig(dataset="circle", hidden_layers=(8, 8), activation="tanh", learning_rate=0.03, epochs=100)
CNN = ExperimentConfig(dataset="digits", architecture="cnn", conv_filters=(8, 16), batch_norm=True,
                       hidden_layers=(32,), activation="relu", optimizer="sgd", learning_rate=0.1, epochs=20)
LINEAR = ExperimentConfig(dataset="xor", hidden_layers=(), learning_rate=0.001, epochs=50)


def _row(run_id: str, config: ExperimentConfig = MLP, *, name: str | None = None, page: str = "Playground",
         status: str = "completed", created: float = 1_700_000_000.0, epochs_done: int | None = None,
         diverged_epoch: int | None = None, train_loss: float | None = 0.3, test_loss: float | None = 0.4,
         train_acc: float | None = 0.9, test_acc: float | None = 0.85, seconds: float | None = 2.5,
         tags: tuple[str, ...] = (), config_json: str | None = None) -> StoredRun:
    return StoredRun(
        run_id=run_id, name=name or run_id, page=page, status=status,
        config_json=config_json or json.dumps(config.to_dict()), config_key=config.key(), created=created,
        finished=None if status in ("running", "interrupted") else created + 10,
        epochs_done=config.epochs if epochs_done is None else epochs_done, diverged_epoch=diverged_epoch,
        train_loss=train_loss, test_loss=test_loss, train_acc=train_acc, test_acc=test_acc, seconds=seconds,
        tags=tags)


@pytest.fixture
def table() -> pd.DataFrame:
    rows = [
        _row("a", MLP, name="Baseline circle", tags=("Keep", "paper"), created=1_700_000_300.0, test_acc=0.95),
        _row("b", CNN, name="digits cnn", page="Features", created=1_700_000_200.0, test_acc=None, test_loss=None),
        _row("c", LINEAR, name="linear xor", status="diverged", diverged_epoch=7, epochs_done=6,
             created=1_700_000_100.0, test_acc=0.5, seconds=None),
        _row("d", MLP.replace(learning_rate=0.3), name="fast circle", status="interrupted", epochs_done=0,
             train_loss=None, test_loss=None, train_acc=None, test_acc=None, seconds=None, created=1_700_000_400.0),
        _row("e", MLP.replace(dataset="moons"), name="moons", status="cancelled", epochs_done=40, test_acc=0.7,
             created=1_700_000_000.0, tags=("CIRCLE-like",)),
    ]
    return runs_table(rows)


def test_runs_table_has_one_row_per_run_in_the_given_order_with_its_columns(table):
    assert list(table.columns) == COLUMNS
    assert table.index.tolist() == ["a", "b", "c", "d", "e"]


def test_runs_table_values_come_from_the_row_and_its_config(table):
    a = table.loc["a"]
    assert a["name"] == "Baseline circle" and a["page"] == "Playground" and a["dataset"] == "circle"
    assert a["architecture"] == "2x8 tanh" and a["activation"] == "tanh" and a["optimiser"] == "adam"
    assert a["learning rate"] == 0.03 and a["epochs"] == 100 and a["of"] == 100
    assert (a["train loss"], a["test loss"], a["train acc"], a["test acc"]) == (0.3, 0.4, 0.9, 0.95)
    assert a["status"] == "completed" and a["time (s)"] == 2.5 and a["tags"] == "Keep, paper"
    assert a["date"] == dt.datetime.fromtimestamp(1_700_000_300.0)
    b = table.loc["b"]
    assert b["architecture"] == "cnn 8-16 bn + 32 relu" and b["optimiser"] == "sgd" and b["page"] == "Features"
    assert math.isnan(b["test acc"]) and math.isnan(b["test loss"]) and b["train acc"] == 0.9


def test_a_diverged_run_shows_the_epoch_it_diverged_at(table):
    c = table.loc["c"]
    assert c["status"] == "diverged at epoch 7"
    assert c["epochs"] == 6 and c["of"] == 50 and c["test acc"] == 0.5 and math.isnan(c["time (s)"])


def test_empty_values_are_nan_in_numeric_columns(table):
    for column in ("learning rate", "train loss", "test loss", "train acc", "test acc", "time (s)"):
        assert pd.api.types.is_float_dtype(table[column]), column
    assert table.loc["d", ["train loss", "test loss", "train acc", "test acc", "time (s)"]].isna().all()


def test_a_row_whose_config_this_version_cannot_read_still_lists():
    raw = {**MLP.to_dict(), "a_field_from_the_future": 1, "dataset": "mnist", "learning_rate": 0.5}
    table = runs_table([_row("x", config_json=json.dumps(raw))])
    x = table.loc["x"]
    assert x["dataset"] == "mnist" and x["architecture"] == "?" and x["learning rate"] == 0.5 and x["of"] == 100


def test_an_empty_list_gives_an_empty_table_that_filters_and_sorts():
    table = runs_table([])
    assert list(table.columns) == COLUMNS and len(table) == 0
    assert len(filter_runs(table, "x", pages=["Playground"], datasets=["circle"], statuses=["completed"])) == 0
    assert len(sort_runs(table, "test accuracy")) == 0


# --- filters ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("", ["a", "b", "c", "d", "e"]),
    ("   ", ["a", "b", "c", "d", "e"]),
    ("CIRCLE", ["a", "d", "e"]),  # names "Baseline circle", "fast circle"; tag "CIRCLE-like"
    ("circle", ["a", "d", "e"]),
    ("keep", ["a"]),  # a tag, any case
    ("  Paper ", ["a"]),  # surrounding spaces are ignored
    ("2x8", ["a", "d", "e"]),  # the architecture
    ("BN +", ["b"]),
    ("no hidden", ["c"]),
    ("[a-z]+", []),  # plain text, not a regular expression
    ("nothing like it", []),
])
def test_filter_by_text_searches_name_tags_and_architecture_in_any_case(table, text, expected):
    assert filter_runs(table, text).index.tolist() == expected


def test_filter_by_page_dataset_and_status(table):
    assert filter_runs(table, pages=["Features"]).index.tolist() == ["b"]
    assert filter_runs(table, datasets=("circle", "xor")).index.tolist() == ["a", "c", "d"]
    assert filter_runs(table, statuses=["diverged"]).index.tolist() == ["c"]  # "diverged at epoch 7"
    assert filter_runs(table, statuses={"completed", "interrupted"}).index.tolist() == ["a", "b", "d"]
    assert filter_runs(table, "circle", pages=["Playground"], datasets=["circle"],
                       statuses=["completed"]).index.tolist() == ["a"]
    assert filter_runs(table, pages=["Nowhere"]).empty


def test_filters_leave_the_columns_and_values_alone(table):
    kept = filter_runs(table, "circle")
    pd.testing.assert_frame_equal(kept, table.loc[["a", "d", "e"]])


# --- sort -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("descending", [True, False])
def test_sort_puts_empty_values_last_in_both_directions(table, descending):
    ordered = sort_runs(table, "test accuracy", descending=descending)
    values = ordered["test acc"].tolist()
    assert ordered.index.tolist()[-2:] == ["b", "d"]  # the two without a test accuracy, in their table order
    finite = values[:3]
    assert finite == sorted(finite, reverse=descending) and not np.isnan(finite).any()
    assert ordered.index.tolist()[:3] == (["a", "e", "c"] if descending else ["c", "e", "a"])


@pytest.mark.parametrize("by, descending, expected", [
    ("date", True, ["d", "a", "b", "c", "e"]),
    ("date", False, ["e", "c", "b", "a", "d"]),
    ("name", False, ["a", "b", "d", "c", "e"]),  # "Baseline circle" < "digits cnn" ...: plain string order
    ("learning rate", True, ["d", "b", "a", "e", "c"]),
    ("epochs", True, ["a", "e", "b", "c", "d"]),
    ("training time", False, ["a", "b", "e", "c", "d"]),  # 2.5 s three times (stable), then the empty ones
    ("test loss", True, ["a", "c", "e", "b", "d"]),
    ("train loss", False, ["a", "b", "c", "e", "d"]),
])
def test_sort_by_each_column(table, by, descending, expected):
    assert sort_runs(table, by, descending).index.tolist() == expected


def test_every_sort_column_names_a_table_column(table):
    assert set(SORT_COLUMNS.values()) <= set(table.columns)
    for by in SORT_COLUMNS:
        assert len(sort_runs(table, by)) == len(table)


@pytest.mark.parametrize("by", ["test acc", "accuracy", "", "Date"])
def test_sort_by_an_unknown_column_raises_naming_it(table, by):
    with pytest.raises(ValueError, match=f"Cannot sort runs by {by!r}") as err:
        sort_runs(table, by)
    assert "test accuracy" in str(err.value)  # and says which columns there are


# --- architecture text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config, expected", [
    (MLP, "2x8 tanh"),
    (ExperimentConfig(hidden_layers=(16,), activation="relu"), "16 relu"),
    (ExperimentConfig(hidden_layers=(8, 4, 2), activation="sigmoid"), "8-4-2 sigmoid"),
    (ExperimentConfig(hidden_layers=(4, 4, 4)), "3x4 tanh"),
    (LINEAR, "no hidden layer"),
    (CNN, "cnn 8-16 bn + 32 relu"),
    (CNN.replace(batch_norm=False, hidden_layers=()), "cnn 8-16 relu"),
    (CNN.replace(conv_filters=(4,), hidden_layers=(16, 16), activation="tanh"), "cnn 4 bn + 2x16 tanh"),
])
def test_architecture_text(config, expected):
    assert architecture_text(config) == expected
