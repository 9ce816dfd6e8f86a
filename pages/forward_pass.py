"""Forward pass: follow one input through every layer of a model to its prediction."""

import hashlib

import numpy as np
import streamlit as st

from models.config import ExperimentConfig
from models.forward import ModelRejected, forward_trace, load_uploaded_model, top_predictions
from ui.backprop_charts import probability_chart, value_strip_chart
from ui.images import grid_image, intensity_rgb, preview_image, to_rgb_uint8
from ui.routing import require_router, stop_page
from ui.session import memo, model_picker
from ui.widgets import image_upload_ui, warn_if_not_learned

require_router("pages/forward_pass.py")

# What a first visit trains: digits through two conv blocks, so the page shows images passing through conv layers.
# Measured on the 2-core development machine, seeds 0-2: 1.4-1.9 s, test accuracy 0.91-0.95.
DEFAULT = ExperimentConfig(dataset="digits", n_samples=1797, architecture="cnn", conv_filters=(8, 16),
                           hidden_layers=(32,), activation="relu", learning_rate=0.01, batch_size=32, epochs=20)

st.title("Forward pass")
st.caption("Pick a model and an input, then follow the input through every layer: each layer transforms what the "
           "one before it produced, until the softmax turns the last numbers into class probabilities.")

source = st.radio("Model", ["A model trained in this session", "Upload a .keras model"], horizontal=True,
                  key="fp_source")
result, class_names = None, ()
if source.startswith("Upload"):
    upload = st.file_uploader("Keras model (.keras, loaded with safe_mode=True)", type=["keras", "h5", "hdf5"],
                              key="fp_model")
    if upload is None:
        st.info("Upload a model saved with `model.save('name.keras')`. Models with Lambda layers or custom code "
                "are refused: loading them would run their code.")
        stop_page()
    try:
        data = upload.getvalue()
        model = memo(("upload", upload.name, hashlib.sha256(data).hexdigest()),
                     lambda: load_uploaded_model(data, upload.name))
    except ModelRejected as err:
        st.error(str(err))
        stop_page()
else:
    result = model_picker("fp_model_pick", DEFAULT, "a small CNN on 8x8 handwritten digits (two conv blocks of 8 "
                          "and 16 filters, 20 epochs, about 2 s)", label="Trained model")
    if result is None:
        stop_page()
    model, class_names = result.model, result.dataset.class_names
    warn_if_not_learned(result)
shape = tuple(model.inputs[0].shape[1:])


def choose_input() -> np.ndarray | None:
    """An input of the model's shape: a point, a dataset sample or an uploaded image."""
    if shape == (2,):
        c1, c2 = st.columns(2)
        x1 = c1.slider("x1", -1.2, 1.2, 0.2, 0.05, key="fp_x1")
        x2 = c2.slider("x2", -1.2, 1.2, 0.1, 0.05, key="fp_x2")
        return np.array([x1, x2], dtype="float32")
    if len(shape) != 3:
        st.error(f"Inputs of shape {shape} cannot be drawn here; image (H, W, C) and 2D-point models can.")
        return None
    left, right = st.columns([1, 2])
    uploaded = image_upload_ui(right, shape, "fp_")
    if uploaded is not None:
        return uploaded
    if result is None:
        st.info("Upload an image to send through the uploaded model.")
        return None
    index = left.number_input("Test image", 0, len(result.dataset.y_test) - 1, 0, key="fp_index")
    left.caption(f"true class: {class_names[int(result.dataset.y_test[index])]}")
    return result.dataset.x_test[index]


x = choose_input()
if x is None:
    stop_page()
steps = forward_trace(model, x)
probabilities = steps[-1].output
names = [class_names[i] if i < len(class_names) else f"class {i}" for i in range(len(probabilities))]
best = top_predictions(probabilities, tuple(names), k=1)[0]
st.metric("Prediction", f"{best[0]}: {best[1]:.2f}")

if x.ndim == 3:
    st.image(preview_image(to_rgb_uint8(x[None])[0]), caption=f"input {x.shape[0]}x{x.shape[1]}x{x.shape[2]}")
else:
    st.markdown(f"**Input**: x1 = {x[0]:.2f}, x2 = {x[1]:.2f}")

for step in steps:
    out = step.output
    label = f"{step.name} ({step.kind}) → output {' x '.join(map(str, out.shape))}, {step.params:,} parameters"
    if step is steps[-1] and out.ndim == 1:
        st.markdown(f"**{label}**")
        st.altair_chart(probability_chart(names, out), width="stretch")
    elif out.ndim == 3:
        channels = min(out.shape[-1], 16)
        st.image(grid_image(intensity_rgb(np.moveaxis(out[..., :channels], -1, 0)), columns=8, size=56),
                 caption=f"{label}; first {channels} channels, each on its own scale (bright = high)")
    elif out.ndim == 1:
        st.altair_chart(value_strip_chart(out, label), width="stretch")
st.caption("Dense and activation layers are drawn as one bar per unit; convolution and pooling layers as one "
           "small picture per channel. Compare a Dense layer with the Activation after it to see the nonlinearity "
           "at work: negative bars vanish under ReLU, large ones flatten under tanh.")
