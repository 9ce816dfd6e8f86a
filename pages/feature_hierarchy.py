"""Feature Hierarchy: what early, middle and late conv layers of a CNN respond to."""

import numpy as np
import pandas as pd
import streamlit as st

from models.builders import build_model
from models.config import ExperimentConfig
from models.engine import TrainResult, set_flat_weights
from models.features import (
    depth_groups,
    first_layer_kernels,
    grad_cam,
    kernel_norms,
    layer_outputs,
    most_active_channels,
    saliency,
    smoothgrad,
)
from models.maximise import AscentConfig, maximise_classes, maximise_filters
from models.pretrained import PRETRAINED, PretrainedUnavailable, load_pretrained, preprocess
from models.registry import ACTIVATIONS, OPTIMIZERS
from ui.images import grid_image, intensity_rgb, overlay, to_rgb_uint8
from ui.routing import require_router
from ui.session import memo, train_live
from ui.widgets import DATASET_LABELS, image_upload_ui

require_router("pages/feature_hierarchy.py")

IMAGE_SETS = ("shapes", "digits", "mnist", "fashion_mnist", "cifar10")
VIEWS = ("Kernels", "Feature maps", "Activation maximisation", "Attribution", "Filmstrip")
STAGE_HELP = {"early": "edges and colours", "middle": "textures and parts", "late": "whole shapes"}

st.title("Feature Hierarchy")
st.caption(
    "A small CNN trained live. Its conv layers are split by depth into early, middle and late thirds: early "
    "filters respond to edges and colours, middle ones to textures and corners, late ones to whole shapes."
)


def cnn_controls() -> ExperimentConfig:
    """The sidebar's CNN settings as a config."""
    st.subheader("Data")
    dataset = st.selectbox("Images", IMAGE_SETS, format_func=DATASET_LABELS.get, key="fh_dataset")
    samples = st.slider("Images to use", 200, 4000, 2000, 100, key="fh_samples")
    st.subheader("Network")
    blocks = st.slider("Conv blocks", 1, 6, 4, key="fh_blocks")
    first = st.select_slider("Filters in the first block (doubled per block, up to 64)", [4, 8, 16, 32], 16,
                             key="fh_filters")
    kernel = st.select_slider("Kernel size", [3, 5, 7], 3, key="fh_kernel")
    activation = st.selectbox("Activation", list(ACTIVATIONS), index=list(ACTIVATIONS).index("relu"), key="fh_act")
    st.subheader("Training")
    optimizer = st.selectbox("Optimiser", list(OPTIMIZERS), index=list(OPTIMIZERS).index("adam"), key="fh_opt")
    lr = st.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03], 3e-3, key="fh_lr")
    epochs = st.slider("Epochs", 1, 60, 20, key="fh_epochs")
    batch = st.select_slider("Batch size", [8, 16, 32, 64, 128], 32, key="fh_batch")
    return ExperimentConfig(
        dataset=dataset, n_samples=samples, noise=0.0, architecture="cnn",
        conv_filters=tuple(min(first * 2**i, 64) for i in range(blocks)), hidden_layers=(), kernel_size=kernel,
        activation=activation, optimizer=optimizer, learning_rate=lr, epochs=epochs, batch_size=batch,
    )


with st.sidebar:
    source = st.radio("Model", ["Train a CNN here", *PRETRAINED], key="fh_source",
                      help="The ImageNet models need their weights in the Keras cache or an internet connection.")
    config = cnn_controls() if source == "Train a CNN here" else None

view = st.radio("View", VIEWS, horizontal=True, key="fh_view")
result: TrainResult | None = None
if config is not None:
    result = train_live(config, label="Training the CNN", updates=10)
    if result is None:
        st.stop()
    if result.status == "diverged":
        st.warning(result.message)
    model, class_names, key = result.model, result.dataset.class_names, config.key()
    h = result.history
    if len(h):
        st.caption(f"{result.message} Test accuracy {h.test_acc[-1]:.0%}, train accuracy {h.train_acc[-1]:.0%}.")
else:
    try:
        model = memo(("pretrained", source), lambda: load_pretrained(source))
    except PretrainedUnavailable as err:
        st.error(str(err))
        st.stop()
    class_names, key = (), source
groups = {stage: names for stage, names in depth_groups(model).items() if names}
st.caption(" · ".join(f"**{stage}** ({STAGE_HELP[stage]}): {', '.join(names)}" for stage, names in groups.items()))


def pick_input() -> tuple[np.ndarray, int | None]:
    """An input image for the model: a test sample or a safe upload; returns it and its true class if known."""
    shape = tuple(model.input.shape[1:])
    left, right = st.columns([1, 2])
    uploaded = image_upload_ui(right, shape, "fh_", label="Or upload an image")
    if uploaded is not None:
        return uploaded, None
    if result is None:
        from models.shapes import make_shapes

        shapes, labels, _ = make_shapes(8, 0.0, np.random.default_rng(0), size=shape[0])
        index = left.number_input("Generated shape", 0, 7, 0, key="fh_sample_pre")
        return shapes[index], None
    data = result.dataset
    index = left.number_input("Test image", 0, len(data.y_test) - 1, 0, key="fh_sample")
    return data.x_test[index], int(data.y_test[index])


def model_input(images: np.ndarray) -> np.ndarray:
    return preprocess(source, images) if result is None else images


def view_kernels() -> None:
    kernels = first_layer_kernels(model)
    st.image(grid_image(to_rgb_uint8(kernels), columns=16, size=48),
             caption=f"First conv layer: {len(kernels)} filters of {kernels.shape[1]}x{kernels.shape[2]} pixels")
    st.caption("Each filter is shown on its own colour scale (its smallest weight black, its largest white), so "
               "compare patterns, not brightness. RGB filters show which colour edges they look for.")
    norms = kernel_norms(model)
    rows = [{"layer": name, "filter": i, "norm": float(v)}
            for name, values in norms.items() for i, v in enumerate(values)]
    st.bar_chart(pd.DataFrame(rows), x="filter", y="norm", color="layer", stack=False, height=260)
    st.caption("Deeper kernels are too many to draw, so each filter is summarised by its weight norm; a norm near "
               "zero is a filter the network stopped using.")


def view_feature_maps() -> None:
    image, label = pick_input()
    k = st.slider("Channels per stage", 4, 16, 8, key="fh_channels")
    stage_layers = {stage: names[-1] for stage, names in groups.items()}
    maps = layer_outputs(model, list(stage_layers.values()), model_input(image[None]))
    cols = st.columns(len(stage_layers) + 1)
    cols[0].image(to_rgb_uint8(image[None])[0], caption="input" + (f" ({class_names[label]})" if label is not None
                                                                   else ""), width=160)
    for col, (stage, layer) in zip(cols[1:], stage_layers.items(), strict=True):
        fmap = maps[layer][0]
        top = most_active_channels(fmap, k)
        col.image(grid_image(intensity_rgb(np.moveaxis(fmap[..., top], -1, 0)), columns=4, size=64),
                  caption=f"{stage}: {layer}, {fmap.shape[0]}x{fmap.shape[1]}, channels {', '.join(map(str, top))}")
    st.caption("The most active channels of the last layer in each stage (bright = strong response). Early maps "
               "keep the image's layout and trace its edges; late maps are coarse and fire on whole parts.")


def ascent_controls() -> AscentConfig:
    c1, c2, c3, c4, c5 = st.columns(5)
    steps = c1.slider("Steps", 16, 256, 64 if result is not None else 32, 16, key="fh_steps")
    tv = c2.select_slider("Smoothness (TV)", [0.0, 0.01, 0.05, 0.1, 0.3], 0.05, key="fh_tv")
    jitter = c3.slider("Jitter (px)", 0, 8, 2, key="fh_jitter")
    scale = c4.select_slider("Zoom (±)", [0.0, 0.05, 0.1, 0.2], 0.1, key="fh_scale")
    fourier = c5.checkbox("Fourier parameterisation", False, key="fh_fourier",
                          help="Optimise a 1/f-weighted spectrum instead of pixels: smoother, more natural images.")
    return AscentConfig(steps=steps, tv_weight=tv, jitter=jitter, scale=scale, fourier=fourier)


def view_maximisation() -> None:
    ascent = ascent_controls()
    n = st.slider("Filters per stage", 2, 16, 8, key="fh_n_filters")
    for stage, names in groups.items():
        layer = names[-1]
        filters = list(range(min(n, model.get_layer(layer).filters)))
        with st.spinner(f"Optimising {len(filters)} filters of {layer} together..."):
            images = memo(("max", key, layer, tuple(filters), ascent),
                          lambda layer=layer, filters=filters: maximise_filters(model, layer, filters, ascent))
        st.image(grid_image(to_rgb_uint8(images), columns=8, size=96),
                 caption=f"{stage} ({layer}): inputs that most excite filters {filters[0]}-{filters[-1]}")
    if class_names:
        with st.spinner("Optimising one image per class..."):
            images = memo(("classes", key, ascent), lambda: maximise_classes(model, list(range(len(class_names))),
                                                                             ascent))
        st.image(grid_image(to_rgb_uint8(images), columns=len(class_names), size=96),
                 caption="What the network thinks each class looks like: " + ", ".join(class_names))
    st.caption("Each image starts as noise and climbs the gradient of one filter's mean activation, with random "
               "shifts and zooms, a smoothness (total variation) and an L2 penalty keeping it natural. All filters "
               "of a layer are optimised as one batch.")


def view_attribution() -> None:
    if not class_names:
        st.info("The ImageNet models are loaded without their classifier, so there is no class to explain; "
                "attribution works on the CNN trained here.")
        return
    image, label = pick_input()
    probs = np.asarray(model(image[None], training=False))[0]
    predicted = int(np.argmax(probs))
    st.markdown(f"Prediction: **{class_names[predicted]}** ({probs[predicted]:.0%})" +
                (f", true class: {class_names[label]}" if label is not None else ""))
    maps = {"vanilla gradient": saliency(model, image, predicted),
            "SmoothGrad": smoothgrad(model, image, predicted),
            "Grad-CAM (last conv layer)": grad_cam(model, image, predicted)}
    cols = st.columns(len(maps) + 1)
    size = max(1, 160 // image.shape[0])
    cols[0].image(grid_image(to_rgb_uint8(image[None]), 1, size * image.shape[0]), caption="input")
    for col, (name, heat) in zip(cols[1:], maps.items(), strict=True):
        col.image(grid_image(overlay(image, heat)[None], 1, size * image.shape[0]), caption=name)
    st.caption("Where the evidence for the predicted class sits. Gradients show which pixels would change the "
               "score most (SmoothGrad averages them over noisy copies); Grad-CAM weights the last conv layer's "
               "maps by their gradients and shows which region the late filters found the object in.")


def view_filmstrip() -> None:
    if result is None:
        st.info("The filmstrip replays training, so it needs the CNN trained here.")
        return
    epochs = result.snapshot_epochs
    picks = sorted({epochs[int(round(i))] for i in np.linspace(0, len(epochs) - 1, min(5, len(epochs)))})
    layer = groups[list(groups)[-1]][-1]
    filters = list(range(min(4, model.get_layer(layer).filters)))
    replay = build_model(result.config, result.dataset.input_shape, result.dataset.n_classes)
    cols = st.columns(len(picks))
    for col, epoch in zip(cols, picks, strict=True):
        set_flat_weights(replay, result.snapshots[epochs.index(epoch)])
        kernels = first_layer_kernels(replay)
        images = memo(("film", result.config.key(), epoch, layer), lambda: maximise_filters(
            replay, layer, filters, AscentConfig(steps=32)))
        col.image(grid_image(to_rgb_uint8(kernels), columns=4, size=24), caption=f"epoch {epoch}: first-layer kernels")
        col.image(grid_image(to_rgb_uint8(images), columns=2, size=64), caption=f"epoch {epoch}: {layer} filters")
    st.caption("Left to right: training time. Kernels start as noise and turn into edge and colour detectors; the "
               "late filters' preferred inputs grow from noise into shape parts.")


{
    "Kernels": view_kernels,
    "Feature maps": view_feature_maps,
    "Activation maximisation": view_maximisation,
    "Attribution": view_attribution,
    "Filmstrip": view_filmstrip,
}[view]()
