"""Feature Hierarchy views that look at one model: kernels, what filters respond to, feature maps, attribution."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import streamlit as st

from models.evidence import example_crops, strongest_filters
from models.features import (
    first_layer_kernels,
    grad_cam,
    kernel_channels,
    kernel_norms,
    layer_outputs,
    most_active_channels,
    rectified_output,
    saliency,
    smoothgrad,
)
from models.maximise import AscentConfig, maximise_classes, maximise_filters
from models.receptive_field import receptive_fields
from ui.hierarchy import HierarchyContext, pick_input
from ui.images import (
    grid_image,
    intensity_rgb,
    kernel_tiles,
    labelled_strip,
    overlay,
    preview_image,
    tile,
    to_rgb_uint8,
)
from ui.session import memo

STAGE_TEXTBOOK = {"early": "edges and colours", "middle": "textures and parts", "late": "whole shapes"}
EXAMPLE_PIXELS = 64  # drawn side of every filter image and example crop


def view_kernels(ctx: HierarchyContext) -> None:
    rgb, signed = first_layer_kernels(ctx.model), kernel_channels(ctx.model)
    shown = min(len(rgb), 32)
    channel_names = "R, G, B" if signed.shape[1] == 3 else ", ".join(f"channel {c}" for c in range(signed.shape[1]))
    st.image(tile(kernel_tiles(rgb[:shown], signed[:shown], size=48), columns=4, gap=16, background=128),
             caption=f"First conv layer: {shown} of {len(rgb)} filters of {rgb.shape[1]}x{rgb.shape[2]} weights. "
                     f"Each tile: the filter as a colour picture, then its signed weights on {channel_names}.")
    st.caption("The colour picture scales each filter to its own range (smallest weight black, largest white). "
               "The signed maps share one scale per filter: blue weights add the input, orange ones subtract it, "
               "so a blue column beside an orange one is a detector of a vertical edge.")
    norms = kernel_norms(ctx.model)
    rows = [{"layer": name, "filter": i, "norm": float(v)}
            for name, values in norms.items() for i, v in enumerate(values)]
    st.bar_chart(pd.DataFrame(rows), x="filter", y="norm", color="layer", stack=False, height=260)
    st.caption("Deeper kernels are too many to draw, so each filter is summarised by its weight norm; a norm near "
               "zero is a filter the network stopped using.")


def ascent_controls(ctx: HierarchyContext) -> AscentConfig:
    """Activation-maximisation settings; the defaults are models.maximise.AscentConfig's."""
    d = AscentConfig()
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.slider("Optimisation steps", 16, 512, d.steps if ctx.result is not None else 32, 16, key="fh_steps")
    jitter = c2.slider("Jitter (px)", 0, 8, d.jitter, key="fh_jitter")
    scale = c3.select_slider("Zoom (±)", [0.0, 0.05, 0.1, 0.2], d.scale, key="fh_scale")
    fourier = c4.checkbox("Fourier, decorrelated", d.fourier, key="fh_fourier",
                          help="Optimise a 1/f-weighted spectrum in a decorrelated colour space (Olah et al. 2017) "
                               "instead of raw pixels: fewer high-frequency artefacts.")
    return dataclasses.replace(d, steps=steps, jitter=jitter, scale=scale, fourier=fourier)


def _stage_examples(ctx: HierarchyContext, layer: str, n: int, k: int):
    """Top-k test images of the n strongest filters of `layer`'s rectified maps, cropped to the receptive field."""
    data = ctx.result.dataset
    images = data.x_test

    def compute():
        strongest, examples = strongest_filters(ctx.model, layer, ctx.model_input(images), n, k)
        rf = receptive_fields(ctx.model)[layer]
        return strongest, example_crops(images, examples, rf, EXAMPLE_PIXELS), rf

    return memo(("examples", ctx.key, layer, n, k), compute)


def view_filters(ctx: HierarchyContext) -> None:
    """Per stage: for each filter, the image optimised to excite it beside the test images that excite it most."""
    if ctx.result is None:
        st.info("Dataset examples need the labelled test images of the CNN trained here; the optimised images of an "
                "ImageNet model are under the next controls.")
    ascent = ascent_controls(ctx)
    left, right = st.columns(2)
    n = left.slider("Filters per stage", 2, 16, 6, key="fh_n_filters")
    k = right.slider("Dataset examples per filter", 1, 9, 6, key="fh_k")
    for stage, conv in ctx.stage_layers.items():
        layer = rectified_output(ctx.model, conv)
        if ctx.result is not None:
            filters, crops, rf = _stage_examples(ctx, layer, n, k)
        else:
            filters, crops, rf = list(range(min(n, ctx.model.get_layer(layer).output.shape[-1]))), None, None
        with st.spinner(f"Optimising {len(filters)} filters of {layer} together..."):
            optimised = memo(("max", ctx.key, layer, tuple(filters), ascent),
                             lambda layer=layer, filters=filters: maximise_filters(ctx.model, layer, filters, ascent,
                                                                                   ctx.tensor_preprocess))
        st.markdown(f"**{stage}** · {conv} · filters {', '.join(map(str, filters))}" +
                    (f" · receptive field {rf.size}x{rf.size} px" if rf is not None else ""))
        rows = []
        for i in range(len(filters)):
            row = [labelled_strip(optimised[i : i + 1], EXAMPLE_PIXELS)]
            if crops is not None:
                row.append(np.full((EXAMPLE_PIXELS, 10, 3), 128, "uint8"))
                row.append(labelled_strip(crops[i], EXAMPLE_PIXELS))
            rows.append(np.concatenate(row, axis=1))
        st.image(tile(np.stack(rows), columns=2, gap=16, background=128),
                 caption=f"{stage} ({layer}): left, the optimised input of each filter; right, the "
                         f"{k} test images that excite it most, cropped to its receptive field")
    if ctx.class_names:
        with st.spinner("Optimising one image per class..."):
            images = memo(("classes", ctx.key, ascent),
                          lambda: maximise_classes(ctx.model, list(range(len(ctx.class_names))), ascent))
        st.image(grid_image(to_rgb_uint8(images), columns=len(ctx.class_names), size=96),
                 caption="What the network thinks each class looks like: " + ", ".join(ctx.class_names))
    st.caption("Dataset examples (Zeiler & Fergus 2014) are real images, cut to the window of pixels the filter's "
               "strongest unit can see, so early crops are a few pixels and late ones the whole object. The optimised "
               "image starts as noise and climbs the filter's mean activation under random shifts and zooms.")


def view_feature_maps(ctx: HierarchyContext) -> None:
    image, label, _ = pick_input(ctx)
    k = st.slider("Channels per stage", 4, 16, 8, key="fh_channels")
    layers = {stage: rectified_output(ctx.model, conv) for stage, conv in ctx.stage_layers.items()}
    maps = layer_outputs(ctx.model, list(layers.values()), ctx.model_input(image[None]))
    cols = st.columns(len(layers) + 1)
    truth = f" ({ctx.class_names[label]})" if label is not None else ""
    cols[0].image(preview_image(to_rgb_uint8(image[None])[0]), caption=f"input{truth}")
    for col, (stage, layer) in zip(cols[1:], layers.items(), strict=True):
        fmap = maps[layer][0]
        top = most_active_channels(fmap, k)
        col.image(grid_image(intensity_rgb(np.moveaxis(fmap[..., top], -1, 0)), columns=4, size=64),
                  caption=f"{stage}: {layer}, {fmap.shape[0]}x{fmap.shape[1]}, channels {', '.join(map(str, top))}")
    st.caption("The most active channels of each stage's last layer after its activation (bright = strong). Maps "
               "shrink with depth: each unit of a later map sees a larger window of the input.")


def view_attribution(ctx: HierarchyContext) -> None:
    if not ctx.class_names:
        st.info("The ImageNet models are loaded without their classifier, so there is no class to explain; "
                "attribution works on the CNN trained here.")
        return
    image, label, mask = pick_input(ctx)
    probs = np.asarray(ctx.model(image[None], training=False))[0]
    predicted = int(np.argmax(probs))
    st.markdown(f"Prediction: **{ctx.class_names[predicted]}** ({probs[predicted]:.0%})" +
                (f", true class: {ctx.class_names[label]}" if label is not None else ""))
    last = ctx.stage_layers[list(ctx.stage_layers)[-1]]
    cam = grad_cam(ctx.model, image, predicted, last)
    maps = {"vanilla gradient": saliency(ctx.model, image, predicted),
            "SmoothGrad": smoothgrad(ctx.model, image, predicted),
            f"Grad-CAM ({rectified_output(ctx.model, last)})": cam}
    cols = st.columns(len(maps) + 1)
    size = 160
    cols[0].image(preview_image(to_rgb_uint8(image[None])[0], size), caption="input")
    for col, (name, heat) in zip(cols[1:], maps.items(), strict=True):
        col.image(preview_image(overlay(image, heat), size), caption=name)
    st.caption(_cam_on_object(cam, mask))


def _cam_on_object(cam: np.ndarray, mask: np.ndarray | None) -> str:
    """What Grad-CAM found, in numbers where the object's mask is known (the generated shapes)."""
    text = ("Gradients show which pixels would change the class score most (SmoothGrad averages them over noisy "
            "copies); Grad-CAM weights the last conv layer's rectified maps by their average gradient.")
    if mask is None:
        return text
    inside = float(cam[mask].sum() / max(cam.sum(), 1e-12))
    return (f"{text} On this image {inside:.0%} of the Grad-CAM heat falls on the shape, which covers "
            f"{mask.mean():.0%} of the pixels ({inside / max(mask.mean(), 1e-12):.1f}x an even spread).")
