"""Runs: every run trained on any page, kept on this computer; compare, rename, tag, open, export, delete."""

import streamlit as st

from ui.routing import require_router, stop_page
from ui.runs_actions import EMPTIED, delete_ui, run_actions_ui
from ui.runs_views import MAX_COMPARED, compare_ui, differences_ui, filtered_table, table_ui, train_first_runs
from ui.stored_runs import ENV_VAR, active_store, store_location

require_router("pages/runs.py")

st.title("Runs")
store = active_store()
if store is None:
    st.info(f"The run store is turned off ({ENV_VAR} or `run_store` in .streamlit/secrets.toml), so runs live only "
            "in this browser session and are not listed here. The README says how to turn it on.")
    stop_page()
st.caption(f"Every run trained on any page, kept in {store_location()}. Select runs in the table to compare them "
           "(2-8); the first four rows are compared until you choose.")
for warning in store.warnings:
    st.warning(warning)

rows = store.list_runs()
if not rows:
    if st.session_state.get(EMPTIED) and not st.button("Train three example runs", key="runs_examples"):
        st.info("No runs are stored. Train a model on any page and it is listed here.")
        stop_page()
    train_first_runs()
    rows = store.list_runs()
table = filtered_table(rows)
chosen_ids = table_ui(table)
by_id = {row.run_id: row for row in rows}
chosen = [by_id[i] for i in chosen_ids if i in by_id]
if not chosen:
    st.info("Select runs in the table (click the boxes at the left of the rows) to compare them.")
    stop_page()
if len(chosen) > MAX_COMPARED:
    st.warning(f"{len(chosen)} runs selected; the chart and table compare the first {MAX_COMPARED}.")
compared = chosen[:MAX_COMPARED]

st.subheader("Compare" if len(compared) > 1 else "Curves")
compare_ui(store, compared)
if len(compared) > 1:
    differences_ui(compared)
st.subheader("Run")
run_actions_ui(store, chosen)
delete_ui(store, chosen)
