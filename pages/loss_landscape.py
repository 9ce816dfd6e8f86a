"""Loss Landscape: 1D and 2D slices of the loss around a trained model, paths, optimisers, sharpness."""

import streamlit as st

from models.config import ExperimentConfig
from ui.landscape_views import (
    LandscapeContext,
    view_interpolation,
    view_optimisers,
    view_path,
    view_race,
    view_sharpness,
    view_surface,
)
from ui.routing import require_router, stop_page
from ui.session import model_picker, select_run, train_live
from ui.widgets import warn_if_not_learned

require_router("pages/loss_landscape.py")

QUICK_MODELS = {
    "Digits CNN": ExperimentConfig(dataset="digits", n_samples=1797, architecture="cnn", conv_filters=(8, 16),
                                   hidden_layers=(), activation="relu", epochs=10, batch_size=32,
                                   learning_rate=0.01),
    "Digits MLP": ExperimentConfig(dataset="digits", n_samples=1797, hidden_layers=(32,), activation="relu",
                                   epochs=20, batch_size=32, learning_rate=0.003),
    "Circle MLP (Playground default)": ExperimentConfig(),
}
DEFAULT_MODEL = "Circle MLP (Playground default)"  # trains in about 1.5 s on two CPU cores
VIEWS = {
    "1D interpolation": view_interpolation,
    "2D surface": view_surface,
    "Training path": view_path,
    "Optimisers compared": view_optimisers,
    "Sharpness": view_sharpness,
    "Optimiser race": view_race,
}
PICKER = "ll_model"

st.title("Loss Landscape")
st.caption(
    "The loss is a function of every weight at once. These views slice it along one or two directions "
    "around a model you trained, so you can see valleys, barriers and how optimisers move through them."
)

with st.sidebar:
    st.subheader("Train a model here")
    quick = st.selectbox("Model", list(QUICK_MODELS), key="ll_quick")
    batch = st.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], value=32, key="ll_batch",
                             help="Compare small and large batches in the Sharpness view.")
    if st.button("Train", key="ll_train"):
        trained = train_live(QUICK_MODELS[quick].replace(batch_size=batch), label=f"Training {quick}")
        if trained is not None and len(trained.history):
            select_run(PICKER, trained)

view = st.radio("View", list(VIEWS), horizontal=True, key="ll_view")
context = None
if view != "Optimiser race":
    result = model_picker(PICKER, QUICK_MODELS[DEFAULT_MODEL], "the Playground's default circle MLP (two hidden "
                          "layers of 8 tanh units, Adam at 0.03, 100 epochs)", label="Model to explore")
    if result is None:
        stop_page()
    warn_if_not_learned(result)
    left, right = st.columns(2)
    split = left.radio("Evaluate on", ("train", "test"), horizontal=True, key="ll_split")
    samples = right.select_slider("Evaluation samples", [128, 256, 512, 1024], value=512, key="ll_samples")
    context = LandscapeContext(result, split, samples)

VIEWS[view](context)
