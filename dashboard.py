"""Router: page config, navigation and the sidebar shared by every page.

`streamlit run dashboard.py` finds the `st.App` at the end of this file and imports the file once as a
module when the server starts; the app's lifespan then starts importing TensorFlow in the background
while the browser loads the app (ui/preload.py, issue 15's cold start). Every session's run of the script
(as "__main__", also under AppTest) is the router below.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the terminal

import streamlit as st  # noqa: E402

from ui import preload  # noqa: E402
from ui.routing import PageStopped, mark_routed, resume_wanted_page  # noqa: E402


def shared_sidebar() -> None:
    """What every page shows at the foot of the sidebar: this session's trained models."""
    from ui.session import run_labels, runs

    with st.sidebar:
        st.divider()
        store = runs()
        with st.expander(f"Models trained this session: {len(store)}"):
            labels = run_labels(list(store.values()))
            for result in reversed(store.values()):
                st.caption(f"{labels[result.config.key()]} · {result.status}")
            if store and st.button("Forget all trained models", help="From this session only; the Runs page keeps "
                                                                      "every run stored on this computer."):
                store.clear()
                st.rerun()


if __name__ == "__main__":  # a session's run of the script: the router
    preload.wait()  # TensorFlow, imported since the server started: the imports below and the page's are look-ups
    from ui.stored_runs import set_current_page

    st.set_page_config(page_title="Inside neural networks", page_icon=":material/neurology:", layout="wide")

    PAGES = {  # st.Page needs a session's run, so the pages are listed here
        "Train": [
            st.Page("pages/playground.py", title="Playground", icon=":material/scatter_plot:", default=True),
        ],
        "Compare": [
            st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
            st.Page("pages/activation_lab.py", title="Activation Lab", icon=":material/compare:"),
            st.Page("pages/loss_landscape.py", title="Loss Landscape", icon=":material/landscape:"),
            st.Page("pages/architectures.py", title="Architectures", icon=":material/account_tree:"),
        ],
        "Look inside": [
            st.Page("pages/feature_hierarchy.py", title="Feature Hierarchy", icon=":material/layers:"),
            st.Page("pages/forward_pass.py", title="Forward pass", icon=":material/arrow_forward:"),
            st.Page("pages/backprop.py", title="Backpropagation", icon=":material/arrow_back:"),
        ],
    }

    page = st.navigation(PAGES)
    mark_routed()
    resume_wanted_page()
    set_current_page(page.title)  # runs trained now are stored as trained on this page
    try:
        page.run()
    except PageStopped:  # the page ended early (and said why); the sidebar below still belongs on it
        pass
    finally:
        shared_sidebar()  # after the page, so it counts the model the page just trained
else:  # imported by `streamlit run` at server start (any other import of this module starts nothing)
    app = st.App(__file__, lifespan=preload.lifespan)
