"""The Runs page's table: one row per stored run, and the filters and sort the user applies to it.

Rows come from the run store's index alone (models/run_store.py), so listing never opens a model.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from models.config import ConfigError, ExperimentConfig
from models.run_store import StoredRun

# Columns the user can sort by, shown name -> table column.
SORT_COLUMNS = {
    "date": "date",
    "name": "name",
    "test accuracy": "test acc",
    "test loss": "test loss",
    "train loss": "train loss",
    "learning rate": "learning rate",
    "epochs": "epochs",
    "training time": "time (s)",
}


def architecture_text(c: ExperimentConfig) -> str:
    """The network in a few characters: "2x8 tanh", "cnn 8-16 bn + 32 relu", "resnet 5x16 bn relu", "linear"."""
    dense = c.hidden_layers
    if len(set(dense)) == 1:
        dense_text = f"{len(dense)}x{dense[0]}" if len(dense) > 1 else str(dense[0])
    else:
        dense_text = "-".join(map(str, dense))
    if c.architecture == "resnet":  # one width throughout: "resnet 5x16 bn relu"
        convs = f"resnet {len(c.conv_filters)}x{c.conv_filters[0]}" + (" bn" if c.batch_norm else "")
        return f"{convs}{' + ' + dense_text if dense else ''} {c.activation}"
    if c.architecture == "cnn":
        convs = "cnn " + "-".join(map(str, c.conv_filters)) + (" bn" if c.batch_norm else "")
        return f"{convs}{' + ' + dense_text if dense else ''} {c.activation}"
    return f"{dense_text} {c.activation}" if dense else "no hidden layer"




def _config_fields(row: StoredRun) -> dict:
    """The config columns of a row; a config this version cannot read still lists, with what it has."""
    try:
        c = row.config
    except (ConfigError, TypeError, ValueError):
        raw = json.loads(row.config_json) if row.config_json else {}
        return dict(dataset=str(raw.get("dataset", "?")), architecture="?", activation=str(raw.get("activation", "?")),
                    optimizer=str(raw.get("optimizer", "?")), lr=float(raw.get("learning_rate", np.nan)),
                    epochs_set=int(raw.get("epochs", 0)))
    return dict(dataset=c.dataset, architecture=architecture_text(c), activation=c.activation, optimizer=c.optimizer,
                lr=c.learning_rate, epochs_set=c.epochs)


def runs_table(rows: list[StoredRun]) -> pd.DataFrame:
    """One row per run, in the given order; the run ids are the index."""
    records = []
    for row in rows:
        f = _config_fields(row)
        records.append({
            "name": row.name, "page": row.page, "dataset": f["dataset"], "architecture": f["architecture"],
            "activation": f["activation"], "optimiser": f["optimizer"], "learning rate": f["lr"],
            "epochs": row.epochs_done, "of": f["epochs_set"], "train loss": row.train_loss,
            "test loss": row.test_loss, "train acc": row.train_acc, "test acc": row.test_acc,
            "status": row.status if row.status != "diverged" else f"diverged at epoch {row.diverged_epoch}",
            "time (s)": row.seconds, "date": dt.datetime.fromtimestamp(row.created),
            "tags": ", ".join(row.tags),
        })
    columns = ["name", "page", "dataset", "architecture", "activation", "optimiser", "learning rate", "epochs", "of",
               "train loss", "test loss", "train acc", "test acc", "status", "time (s)", "date", "tags"]
    table = pd.DataFrame.from_records(records, columns=columns, index=[r.run_id for r in rows])
    for column in ("learning rate", "train loss", "test loss", "train acc", "test acc", "time (s)"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def filter_runs(table: pd.DataFrame, text: str = "", pages=(), datasets=(), statuses=()) -> pd.DataFrame:
    """The rows whose name, tags or architecture contain `text` (any case) and whose page, dataset and
    status are among those chosen (an empty choice keeps all)."""
    keep = pd.Series(True, index=table.index)
    if text.strip():
        needle = text.strip().lower()
        haystack = (table["name"] + " " + table["tags"] + " " + table["architecture"]).str.lower()
        keep &= haystack.str.contains(needle, regex=False)
    for column, chosen in (("page", pages), ("dataset", datasets)):
        if chosen:
            keep &= table[column].isin(list(chosen))
    if statuses:
        keep &= table["status"].str.split(" ").str[0].isin(list(statuses))
    return table[keep]


def sort_runs(table: pd.DataFrame, by: str, descending: bool = True) -> pd.DataFrame:
    """The table sorted by one of SORT_COLUMNS (empty values last, whichever the direction).

    Raises:
        ValueError: `by` is not a sort column.
    """
    if by not in SORT_COLUMNS:
        raise ValueError(f"Cannot sort runs by {by!r}; choose one of {', '.join(SORT_COLUMNS)}.")
    return table.sort_values(SORT_COLUMNS[by], ascending=not descending, na_position="last", kind="stable")
