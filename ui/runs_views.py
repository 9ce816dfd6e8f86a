"""The Runs page's parts: the table with filters and sorting, and the comparison of the chosen runs
(what can be done with a run is in ui/runs_actions.py)."""

from __future__ import annotations

import hashlib
import json

import streamlit as st

from models.config import ExperimentConfig
from models.run_compare import config_differences, curves_frame
from models.run_store import RunStore, RunUnavailable, StoredRun
from models.run_table import SORT_COLUMNS, filter_runs, runs_table, sort_runs
from ui.runs_charts import chart_png, chart_svg, comparison_chart, highlight_differences
from ui.session import train_together

MAX_COMPARED = 8  # runs overlaid at once; more lines than this are unreadable
TABLE = "runs_table"  # the table's key starts with this; see table_key
# The first visit with an empty store: three Playground runs that differ only in learning rate.
FIRST_VISIT = [ExperimentConfig(epochs=60, learning_rate=lr) for lr in (0.003, 0.03, 0.3)]


def train_first_runs() -> None:
    """A first visit with no stored run: train three to compare, so the page shows something real."""
    st.info("No runs are stored yet, so this page trains three of the Playground's circle networks that differ only "
            "in learning rate (0.003, 0.03, 0.3; 60 epochs each, a few seconds) to compare. Every run you train on any "
            "page is listed here, also after a reload or a restart.")
    train_together(FIRST_VISIT, label="Training three runs to compare")


def unique_labels(rows: list[StoredRun]) -> dict[str, str]:
    """Run id -> its name, with a short id appended where two runs share a name."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.name] = counts.get(row.name, 0) + 1
    return {row.run_id: row.name if counts[row.name] == 1 else f"{row.name} ({row.run_id[:4]})" for row in rows}


def filtered_table(rows: list[StoredRun]):
    """The filter and sort controls, and the table they leave."""
    table = runs_table(rows)
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
    text = c1.text_input("Search name, tags, architecture", key="runs_search", placeholder="e.g. relu")
    pages = c2.multiselect("Page", sorted(table["page"].unique()), key="runs_pages")
    datasets = c3.multiselect("Dataset", sorted(table["dataset"].unique()), key="runs_datasets")
    statuses = c4.multiselect("Status", ["completed", "cancelled", "diverged", "interrupted", "running"],
                              key="runs_statuses")
    c5, c6, _ = st.columns([2, 1, 4], vertical_alignment="bottom")
    by = c5.selectbox("Sort by", list(SORT_COLUMNS), key="runs_sort")
    descending = c6.selectbox("Order", ["↓", "↑"], key="runs_order",
                              help="↓ largest (or newest) first; ↑ smallest first.") == "↓"
    return sort_runs(filter_runs(table, text, pages, datasets, statuses), by, descending)


def table_key(run_ids) -> str:
    """The table's widget key, which changes with the rows shown: a selection is a list of row positions,
    so after a filter, a sort or a deletion the old positions would name other runs. A new key starts a
    fresh selection (the first rows) instead."""
    return f"{TABLE}_{hashlib.sha1(' '.join(run_ids).encode()).hexdigest()[:12]}"


def table_ui(table) -> list[str]:
    """The table with row selection; the chosen run ids (the first 4 rows before the user chooses)."""
    default = {"selection": {"rows": list(range(min(4, len(table)))), "columns": []}}
    event = st.dataframe(
        table, key=table_key(table.index), on_select="rerun", selection_mode="multi-row", hide_index=True,
        selection_default=default,
        column_config={
            "learning rate": st.column_config.NumberColumn(format="%g"),
            "train loss": st.column_config.NumberColumn(format="%.4f"),
            "test loss": st.column_config.NumberColumn(format="%.4f"),
            "train acc": st.column_config.NumberColumn(format="percent"),
            "test acc": st.column_config.NumberColumn(format="percent"),
            "time (s)": st.column_config.NumberColumn(format="%.1f"),
            "date": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "of": st.column_config.NumberColumn(help="Epochs set"),
        },
    )
    positions = event.selection.rows if event is not None else []
    return [table.index[i] for i in positions if i < len(table)]


def compare_ui(store: RunStore, rows: list[StoredRun]) -> None:
    """Loss or accuracy curves of the chosen runs overlaid, with TensorBoard's controls, and exports."""
    labels = unique_labels(rows)
    histories = []
    for row in rows:
        try:
            histories.append((labels[row.run_id], store.history(row.run_id)))
        except RunUnavailable as err:
            st.warning(f"{labels[row.run_id]} is left out of the chart: {err}")
    if not histories:
        st.info("None of the chosen runs has a history to draw (interrupted runs have none).")
        return
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    metric = c1.radio("Metric", ["loss", "accuracy"], horizontal=True, key="runs_metric")
    x_axis = c2.radio("Horizontal axis", ["epoch", "seconds"], horizontal=True, key="runs_x",
                      format_func={"epoch": "epoch", "seconds": "wall time"}.get)
    log_y = c3.toggle("Log scale", value=metric == "loss", key=f"runs_log_{metric}")
    smoothing = st.columns(2)[0].slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="runs_smoothing",
                          help="TensorBoard's smoothing: an exponential moving average, debiased at the start. "
                               "The raw values stay drawn faintly behind.")
    frame = curves_frame(histories, metric, x_axis, smoothing)
    if frame.empty:
        st.info("These runs are regressions: they have no accuracy. Choose the loss.")
        return
    chart = comparison_chart(frame, metric, x_axis, log_y)
    st.altair_chart(chart, width="stretch")
    st.caption(_compare_caption(rows, metric))
    row = st.container(horizontal=True, gap="small")
    row.download_button("Chart as PNG", lambda: chart_png(chart), file_name=f"runs-{metric}.png", mime="image/png",
                         icon=":material/image:", on_click="ignore")
    row.download_button("Chart as SVG", lambda: chart_svg(chart), file_name=f"runs-{metric}.svg",
                          mime="image/svg+xml", icon=":material/draw:", on_click="ignore")


def _compare_caption(rows: list[StoredRun], metric: str) -> str:
    """The measured ranking of the runs on screen, in words."""
    accuracy = metric == "accuracy"
    best_word, worst_word = ("Best test accuracy", "lowest") if accuracy else ("Lowest final test loss", "highest")
    value, higher_is_better, fmt = ("test_acc", True, ".1%") if accuracy else ("test_loss", False, ".4g")
    scored = sorted(((getattr(r, value), r) for r in rows if getattr(r, value) is not None), key=lambda p: p[0])
    if not scored:
        return ""
    (worst, _), (best, best_row) = (scored[0], scored[-1]) if higher_is_better else (scored[-1], scored[0])
    tail = f"; {worst_word}: {worst:{fmt}}." if len(scored) > 1 else "."
    return f"{best_word}: {best_row.name} with {best:{fmt}}{tail}"


def differences_ui(rows: list[StoredRun]) -> None:
    """Only the settings in which the chosen runs differ; cells unlike the first run's are highlighted."""
    labels = unique_labels(rows)
    table = config_differences([(labels[r.run_id], _config_dict(r)) for r in rows])
    if table.empty:
        st.caption("The chosen runs have the same settings.")
        return
    st.markdown("**Settings that differ** (highlighted: unlike the first run's)")
    st.dataframe(highlight_differences(table))


def _config_dict(row: StoredRun) -> dict:
    return json.loads(row.config_json)
