"""What can be done with stored runs on the Runs page: rename, tag, open in another page, export, delete."""

from __future__ import annotations

import streamlit as st

from models.export import history_csv, standalone_script
from models.run_store import RunStore, RunUnavailable, StoredRun
from ui.activation_lab_views import DATASETS as LAB_DATASETS
from ui.activation_lab_views import MOST_ACTIVATIONS
from ui.activation_lab_views import PREFIX as LAB_PREFIX
from ui.hierarchy import TRAIN_HERE, sidebar_values
from ui.runs_views import unique_labels
from ui.session import can_read_settings, memo, open_stored
from ui.widgets import apply_config, open_in_playground

_PENDING_DELETE = "runs_pending_delete"
EMPTIED = "runs_emptied"  # this session deleted every run: do not train the first-visit examples again
# Pages with a model picker, by title: (page file, picker key, extra widget state to set).
PICKER_PAGES = {
    "Loss Landscape": ("pages/loss_landscape.py", "ll_model", {"ll_view": "1D interpolation"}),
    "Backpropagation": ("pages/backprop.py", "bp_model", {"bp_view": "Gradient flow during training"}),
    "Forward pass": ("pages/forward_pass.py", "fp_model_pick", {"fp_source": "A model trained in this session"}),
}
POINT_DATASETS_FOR_PLAYGROUND = ("circle", "xor", "gaussians", "spiral", "moons", "plane", "multi_gaussian")


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
    if not can_read_settings(row):  # stored by another version of the dashboard; it still lists and compares
        st.caption("This run's settings are from another version of the dashboard: it cannot be opened or exported "
                   "here.")
        return
    open_in_ui(store, row)
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
    if sidebar_values(config) is not None:  # a CNN the Feature Hierarchy's sidebar can set up exactly
        pages.insert(0, "Feature Hierarchy")
    if config.architecture == "mlp" and config.dataset in LAB_DATASETS and not config.layer_activations:
        pages.append("Activation Lab")
    return pages


def lab_activations(store: RunStore, row: StoredRun) -> list[str]:
    """The activations the Activation Lab opens `row` with: its own, then those of the other readable
    completed runs that differ from it in the activation alone (the rest of its comparison), up to six; with
    none, one more (tanh, or relu for a tanh run) so there are two to compare."""
    def same_but_activation(other: StoredRun) -> bool:
        if other.run_id == row.run_id or other.status != "completed" or not can_read_settings(other):
            return False
        return other.config.replace(activation=row.config.activation).key() == row.config.key()

    chosen = [row.config.activation]
    for other in store.list_runs():
        if len(chosen) < MOST_ACTIVATIONS and same_but_activation(other) and other.config.activation not in chosen:
            chosen.append(other.config.activation)
    if len(chosen) == 1:
        chosen.append("relu" if chosen[0] == "tanh" else "tanh")
    return chosen


def open_in_ui(store: RunStore, row: StoredRun) -> None:
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    target = left.selectbox("Open in", pages_for(row), key="runs_open_target",
                            help="The Playground retrains the run's settings live (same seed, same run); the other "
                                 "pages open the stored model itself (the Feature Hierarchy and the Activation Lab "
                                 "with their settings set to the run's; the lab also with the runs it was compared "
                                 "with).")
    if right.button("Open", icon=":material/open_in_new:", key="runs_open"):
        if target == "Playground":
            open_in_playground(row.config)
        result = open_stored(row)
        if result is not None and target == "Feature Hierarchy":
            st.session_state.update(sidebar_values(row.config) | {"fh_source": TRAIN_HERE})
            st.switch_page("pages/feature_hierarchy.py")  # its sidebar's config is this run's: shown, not retrained
        if result is not None and target == "Activation Lab":  # its stored comparison is reopened, not retrained
            apply_config(row.config, LAB_PREFIX)
            st.session_state.update({f"{LAB_PREFIX}activations": lab_activations(store, row),
                                     f"{LAB_PREFIX}preset": "custom"})
            st.switch_page("pages/activation_lab.py")
        if result is not None:
            page, picker, extra = PICKER_PAGES[target]
            st.session_state[picker] = result.config.key()  # the page's model picker shows this run
            st.session_state.update(extra)
            st.switch_page(page)


def export_ui(store: RunStore, row: StoredRun) -> None:
    """Downloads of the stored files, read only when clicked; the script is written on request."""
    folder = store.root / "runs" / row.run_id
    slug = "".join(ch if ch.isalnum() else "-" for ch in row.name.lower())[:60].strip("-") or row.run_id
    c1 = c2 = c3 = st.container(horizontal=True, gap="small")
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
        st.session_state[EMPTIED] = not store.list_runs()
        st.toast(f"Deleted {len(names)} run(s).")
        st.rerun()
    if no.button("Cancel", key="runs_delete_no"):
        st.session_state.pop(_PENDING_DELETE)
        st.rerun()
