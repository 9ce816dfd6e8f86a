"""Feature Hierarchy: what early, middle and late conv layers of a CNN respond to, with measured evidence."""

import streamlit as st

from models.pretrained import PRETRAINED, PretrainedUnavailable, load_pretrained
from ui.hierarchy import TRAIN_HERE, cnn_controls, make_context
from ui.hierarchy_evidence import view_evidence, view_filmstrip
from ui.hierarchy_views import STAGE_TEXTBOOK, view_attribution, view_feature_maps, view_filters, view_kernels
from ui.routing import require_router, stop_page
from ui.session import memo, train_live
from ui.widgets import warn_if_not_learned

require_router("pages/feature_hierarchy.py")

VIEWS = {
    "What filters respond to": view_filters,
    "Evidence": view_evidence,
    "Kernels": view_kernels,
    "Feature maps": view_feature_maps,
    "Attribution": view_attribution,
    "Filmstrip": view_filmstrip,
}

st.title("Feature Hierarchy")
st.caption("A small CNN trained live on your choice of images. Its conv layers are split by depth into early, middle "
           "and late thirds; each view shows what those stages respond to, and the Evidence view measures it.")

with st.sidebar:
    source = st.radio("Model", [TRAIN_HERE, *PRETRAINED], key="fh_source",
                      help="The ImageNet models need their weights in the Keras cache or an internet connection.")
    config = cnn_controls() if source == TRAIN_HERE else None

view = st.radio("View", list(VIEWS), horizontal=True, key="fh_view")
if config is not None:
    result = train_live(config, label="Training the CNN", updates=10)
    if result is None:
        stop_page()
    if result.status == "diverged":
        st.warning(result.message)
    h = result.history
    if len(h):
        st.caption(f"{result.message} Test accuracy {h.test_acc[-1]:.1%}, train accuracy {h.train_acc[-1]:.1%}.")
    learned = not warn_if_not_learned(result)
    ctx = make_context(result.model, result, source, result.dataset.class_names, config.key(), learned)
else:
    try:
        model = memo(("pretrained", source), lambda: load_pretrained(source))
    except PretrainedUnavailable as err:
        st.error(str(err))
        stop_page()
    ctx = make_context(model, None, source, (), source, learned=True)

st.caption(" · ".join(f"**{stage}**: {', '.join(names)}" for stage, names in ctx.groups.items()) +
           ". The textbook expects " + ", ".join(f"{s} layers to see {STAGE_TEXTBOOK[s]}" for s in ctx.groups) +
           "; the Evidence view measures whether this model does.")
VIEWS[view](ctx)
