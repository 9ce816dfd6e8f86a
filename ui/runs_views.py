"""The Runs page's parts: the table with filters, the comparison of the chosen runs, and what can be
done with a run (rename, tag, open in another page, export, delete)."""

from __future__ import annotations

import json

import streamlit as st

from models.config import ExperimentConfig
from models.export import history_csv, standalone_script
from models.run_compare import config_differences, curves_frame
from models.run_store import RunStore, RunUnavailable, StoredRun
from models.run_table import SORT_COLUMNS, filter_runs, runs_table, sort_runs
from ui.runs_charts import chart_png, chart_svg, comparison_chart, highlight_differences
from ui.session import memo, open_stored, train_together
from ui.widgets import open_in_playground

MAX_COMPARED = 8  # runs overlaid at once; more lines than this are unreadable
TABLE = "runs_table"
_PENDING_DELETE = "runs_pending_delete"
# The first visit with an empty store: three Playground runs that differ only in learning rate.
FIRST_VISIT = [ExperimentConfig(epochs=60, learning_rate=lr) for lr in (0.003, 0.03, 0.3)]
# Pages with a model picker, by title: (page file, picker key, extra widget state to set).
PICKER_PAGES = {
    "Loss Landscape": ("pages/loss_landscape.py", "ll_model", {"ll_view": "1D interpolation"}),
    "Backpropagation": ("pages/backprop.py", "bp_model", {"bp_view": "Gradient flow during training"}),
    "Forward pass": ("pages/forward_pass.py", "fp_model_pick", {"fp_source": "A model trained in this session"}),
}
POINT_DATASETS_FOR_PLAYGROUND = ("circle", "xor", "gaussians", "spiral", "moons", "plane", "multi_gaussian")


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
    c1, c2, c3, c4, c5, c6 = st.columns([3, 2, 2, 2, 2, 1.3], vertical_alignment="bottom")
    text = c1.text_input("Search name, tags, architecture", key="runs_search", placeholder="e.g. relu")
    pages = c2.multiselect("Page", sorted(table["page"].unique()), key="runs_pages")
    datasets = c3.multiselect("Dataset", sorted(table["dataset"].unique()), key="runs_datasets")
    statuses = c4.multiselect("Status", ["completed", "cancelled", "diverged", "interrupted", "running"],
                              key="runs_statuses")
    by = c5.selectbox("Sort by", list(SORT_COLUMNS), key="runs_sort")
    descending = c6.selectbox("Order", ["↓", "↑"], key="runs_order",
                              help="↓ largest (or newest) first; ↑ smallest first.") == "↓"
    return sort_runs(filter_runs(table, text, pages, datasets, statuses), by, descending)


def table_ui(table) -> list[str]:
    """The table with row selection; the chosen run ids (the newest up to 4 before the user chooses)."""
    default = {"selection": {"rows": list(range(min(4, len(table)))), "columns": []}}
    event = st.dataframe(
        table, key=TABLE, on_select="rerun", selection_mode="multi-row", hide_index=True, selection_default=default,
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
    c1, c2, c3, c4 = st.columns([2, 2, 1, 3], vertical_alignment="bottom")
    metric = c1.radio("Metric", ["loss", "accuracy"], horizontal=True, key="runs_metric")
    x_axis = c2.radio("Horizontal axis", ["epoch", "seconds"], horizontal=True, key="runs_x",
                      format_func={"epoch": "epoch", "seconds": "wall time"}.get)
    log_y = c3.toggle("Log scale", value=metric == "loss", key=f"runs_log_{metric}")
    smoothing = c4.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="runs_smoothing",
                          help="TensorBoard's smoothing: an exponential moving average, debiased at the start. "
                               "The raw values stay drawn faintly behind.")
    frame = curves_frame(histories, metric, x_axis, smoothing)
    if frame.empty:
        st.info("These runs are regressions: they have no accuracy. Choose the loss.")
        return
    chart = comparison_chart(frame, metric, x_axis, log_y)
    st.altair_chart(chart, width="stretch")
    st.caption(_compare_caption(rows, metric))
    left, right, _ = st.columns([1, 1, 4])
    left.download_button("Chart as PNG", lambda: chart_png(chart), file_name=f"runs-{metric}.png", mime="image/png",
                         icon=":material/image:", on_click="ignore")
    right.download_button("Chart as SVG", lambda: chart_svg(chart), file_name=f"runs-{metric}.svg",
                          mime="image/svg+xml", icon=":material/draw:", on_click="ignore")


def _compare_caption(rows: list[StoredRun], metric: str) -> str:
    """The measured ranking of the runs on screen, in words."""
    if metric == "accuracy":
        scored = [(r.test_acc, r) for r in rows if r.test_acc is not None]
        if not scored:
            return ""
        best = max(scored, key=lambda p: p[0])
        return (f"Best test accuracy: {best[1].name} with {best[0]:.1%}"
                + (f"; lowest: {min(p[0] for p in scored):.1%}." if len(scored) > 1 else "."))
    scored = [(r.test_loss, r) for r in rows if r.test_loss is not None]
    if not scored:
        return ""
    best = min(scored, key=lambda p: p[0])
    return (f"Lowest final test loss: {best[1].name} with {best[0]:.4g}"
            + (f"; highest: {max(p[0] for p in scored):.4g}." if len(scored) > 1 else "."))


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


def run_actions_ui(store: RunStore, rows: list[StoredRun]) -> None:
    """Rename, tag, open in a page and export one of the chosen runs."""
    labels = unique_labels(rows)
    run_id = st.selectbox("Run", [r.run_id for r in rows], format_func=labels.get, key="runs_action_target")
    row = next(r for r in rows if r.run_id == run_id)
    name_col, tags_col = st.columns(2, vertical_alignment="bottom")
    with name_col.form(f"runs_rename_{run_id}", border=False):
        name = st.text_input("Name", value=row.name, key=f"runs_name_{run_id}")
        if st.form_submit_button("Rename"):
            _change(lambda: store.rename(run_id, name), f"Renamed to {name.strip()}.")
    with tags_col.form(f"runs_tags_{run_id}", border=False):
        tags = st.text_input("Tags, comma separated", value=", ".join(row.tags), key=f"runs_tag_text_{run_id}")
        if st.form_submit_button("Save tags"):
            _change(lambda: store.set_tags(run_id, tags.split(",")), "Tags saved.")
    if not row.openable:
        st.caption(f"This run is {row.status} with {row.epochs_done} epochs: there is no model to open or export.")
        return
    open_in_ui(row)
    export_ui(store, row)


def _change(action, message: str) -> None:
    try:
        action()
    except (ValueError, RunUnavailable) as err:
        st.error(str(err))
        return
    st.toast(message)
    st.rerun()


def pages_for(row: StoredRun) -> list[str]:
    """Titles of the pages that can show this run."""
    pages = list(PICKER_PAGES)
    config = row.config
    if config.dataset in POINT_DATASETS_FOR_PLAYGROUND and config.architecture == "mlp":
        pages.insert(0, "Playground")
    return pages


def open_in_ui(row: StoredRun) -> None:
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    target = left.selectbox("Open in", pages_for(row), key="runs_open_target",
                            help="The Playground retrains the run's settings live (same seed, same run); the other "
                                 "pages open the stored model itself.")
    if right.button("Open", icon=":material/open_in_new:", key="runs_open"):
        if target == "Playground":
            open_in_playground(row.config)
        result = open_stored(row)
        if result is not None:
            page, picker, extra = PICKER_PAGES[target]
            st.session_state[picker] = result.config.key()  # the page's model picker shows this run
            st.session_state.update(extra)
            st.switch_page(page)


def export_ui(store: RunStore, row: StoredRun) -> None:
    """Downloads of the stored files, read only when clicked; the script is written on request."""
    folder = store.root / "runs" / row.run_id
    slug = "".join(ch if ch.isalnum() else "-" for ch in row.name.lower())[:60].strip("-") or row.run_id
    c1, c2, c3 = st.columns(3)
    c1.download_button("Model (.keras)", lambda: (folder / "model.keras").read_bytes(), file_name=f"{slug}.keras",
                       mime="application/zip", icon=":material/download:", on_click="ignore",
                       help="Load with keras.saving.load_model(path).")
    c2.download_button("History (CSV)", lambda: history_csv(store.history(row.run_id)), file_name=f"{slug}.csv",
                       mime="text/csv", icon=":material/table:", on_click="ignore")
    script = memo(("runs_script", row.run_id), lambda: _script_or_reason(row)) \
        if st.session_state.get(f"runs_script_wanted_{row.run_id}") else None
    if script is None:
        c3.button("Write a Python script", icon=":material/code:", key="runs_script_button",
                  on_click=lambda: st.session_state.update({f"runs_script_wanted_{row.run_id}": True}),
                  help="A plain-Keras script with this run's data embedded that retrains it.")
    elif script[0]:
        c3.download_button("Python script", script[0], file_name=f"{slug}.py", mime="text/x-python",
                           icon=":material/code:", on_click="ignore")
    else:
        c3.caption(script[1])


def _script_or_reason(row: StoredRun) -> tuple[str | None, str]:
    from models.datasets import load_dataset
    from models.keras_datasets import DatasetUnavailable

    try:
        folder_result = None if row.config.dataset != "csv" else open_stored(row)
        dataset = folder_result.dataset if folder_result is not None else load_dataset(row.config)
        return standalone_script(row.config, dataset), ""
    except (ValueError, DatasetUnavailable) as err:
        return None, f"No script for this run: {err}"


def delete_ui(store: RunStore, rows: list[StoredRun]) -> None:
    """Delete the chosen runs, after a second click that names them."""
    pending = st.session_state.get(_PENDING_DELETE)
    if pending is None:
        if st.button(f"Delete {len(rows)} selected run{'s' * (len(rows) > 1)}", icon=":material/delete:",
                     key="runs_delete"):
            st.session_state[_PENDING_DELETE] = [r.run_id for r in rows]
            st.rerun()
        return
    names = [r.name for r in store.list_runs() if r.run_id in pending]
    st.warning(f"Delete {len(names)} run(s) and their files for good? " + "; ".join(names))
    yes, no, _ = st.columns([1, 1, 4])
    if yes.button("Delete for good", type="primary", key="runs_delete_yes"):
        store.delete(pending)
        st.session_state.pop(_PENDING_DELETE)
        st.session_state.pop(TABLE, None)  # the selection named rows that are gone
        st.toast(f"Deleted {len(names)} run(s).")
        st.rerun()
    if no.button("Cancel", key="runs_delete_no"):
        st.session_state.pop(_PENDING_DELETE)
        st.rerun()
