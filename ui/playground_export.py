"""The Playground's downloads: the model as on screen, its loss history, and a plain-Keras script that
rebuilds and trains the same network on the same data. Each file is made only when its button is clicked."""

from __future__ import annotations

import streamlit as st

from models.engine import TrainResult


def export_ui(result: TrainResult) -> None:
    """Three download buttons for `result` (its model as it is now, edits included)."""
    from models.export import history_csv, model_bytes, standalone_script

    name = f"playground_{result.config.dataset}_{result.config.key()[:8]}"
    st.subheader("Take it with you")
    with st.container(horizontal=True):
        st.download_button("Model (.keras)", lambda: model_bytes(result.model), file_name=f"{name}.keras",
                           mime="application/octet-stream", icon=":material/download:", on_click="ignore",
                           help="The weights on screen; load with keras.saving.load_model(path).")
        st.download_button("Loss history (.csv)", lambda: history_csv(result.history), file_name=f"{name}_history.csv",
                           mime="text/csv", icon=":material/table:", on_click="ignore",
                           disabled=not len(result.history))
        st.download_button("Python script (.py)", lambda: standalone_script(result.config, result.dataset),
                           file_name=f"{name}.py", mime="text/x-python", icon=":material/code:", on_click="ignore",
                           help="Plain Keras and numpy, with this data embedded: it builds the same network, "
                                "trains it with model.fit and prints the test score.")
    st.caption("The script trains from its own random start with Keras' model.fit, so its numbers match this page's "
               "closely but not to the last digit (tested: within 2 accuracy points).")
