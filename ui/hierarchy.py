"""The Feature Hierarchy page's sidebar and the model context every one of its views reads."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import streamlit as st

from models.config import ExperimentConfig
from models.engine import TrainResult
from models.features import depth_groups
from models.pretrained import preprocess, preprocess_tensor
from models.recipes import DEFAULT_CNN
from models.registry import ACTIVATIONS, OPTIMIZERS
from ui.widgets import DATASET_LABELS, image_upload_ui

IMAGE_SETS = ("shapes", "digits", "mnist", "fashion_mnist", "cifar10")
TRAIN_HERE = "Train a CNN here"
SCHEDULE_LABELS = {"warmup_cosine": "warm-up, then cosine decay", "constant": "constant"}


@dataclass(frozen=True)
class HierarchyContext:
    """The model on screen and what the views need to know about it."""

    model: keras.Model  # the CNN (or ImageNet conv base) being explained
    result: TrainResult | None  # its training run; None for an ImageNet conv base
    source: str  # TRAIN_HERE or a name from models.pretrained.PRETRAINED
    class_names: tuple[str, ...]  # class of each softmax output; () for a conv base without classifier
    key: str  # cache key of the model: the config key, or the pretrained model's name
    groups: dict[str, list[str]]  # stage -> its conv layer names, input to output; empty stages left out
    learned: bool  # False when the trained model stayed near chance (captions must not narrate features)

    @property
    def stage_layers(self) -> dict[str, str]:
        """The deepest conv layer of each stage: the one the views show for that stage."""
        return {stage: names[-1] for stage, names in self.groups.items()}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.model.inputs[0].shape[1:])

    def model_input(self, images: np.ndarray) -> np.ndarray:
        """Images in [0, 1] scaled as the model expects (ImageNet bases have their own preprocessing)."""
        return images if self.result is not None else preprocess(self.source, images)

    @property
    def tensor_preprocess(self):
        """`model_input` for tensors (activation maximisation), or None when images go in as they are."""
        return None if self.result is not None else (lambda x: preprocess_tensor(self.source, x))


def make_context(model, result: TrainResult | None, source: str, class_names, key: str, learned: bool):
    """A HierarchyContext with the model's conv layers split into stages."""
    groups = {stage: names for stage, names in depth_groups(model).items() if names}
    return HierarchyContext(model, result, source, tuple(class_names), key, groups, learned)


def _index(options, value) -> int:
    return list(options).index(value)


def cnn_controls() -> ExperimentConfig:
    """The sidebar's CNN settings as a config; the defaults are models.recipes.DEFAULT_CNN."""
    d = DEFAULT_CNN
    st.subheader("Data")
    dataset = st.selectbox("Images", IMAGE_SETS, format_func=DATASET_LABELS.get, key="fh_dataset")
    samples = st.slider("Images to use (half train, half test)", 200, 4000, d.n_samples, 100, key="fh_samples")
    st.subheader("Network")
    blocks = st.slider("Conv blocks", 1, 6, len(d.conv_filters), key="fh_blocks")
    first = st.select_slider("Filters in the first block (doubled per block, up to 64)", [4, 8, 16, 32],
                             d.conv_filters[0], key="fh_filters")
    kernel = st.select_slider("Kernel size", [3, 5, 7], d.kernel_size, key="fh_kernel")
    batch_norm = st.checkbox("Batch normalisation", d.batch_norm, key="fh_bn",
                             help="Normalises each conv's outputs over the batch. Without it this CNN often sits "
                                  "at chance for many epochs before it starts to learn, or never does.")
    activation = st.selectbox("Activation", list(ACTIVATIONS), index=_index(ACTIVATIONS, d.activation), key="fh_act")
    st.subheader("Training")
    optimizer = st.selectbox("Optimiser", list(OPTIMIZERS), index=_index(OPTIMIZERS, d.optimizer), key="fh_opt")
    lr = st.select_slider("Learning rate (peak)", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03], d.learning_rate, key="fh_lr")
    schedule = st.selectbox("Learning-rate schedule", list(SCHEDULE_LABELS), format_func=SCHEDULE_LABELS.get,
                            index=_index(SCHEDULE_LABELS, d.lr_schedule), key="fh_schedule")
    epochs = st.slider("Epochs", 1, 60, d.epochs, key="fh_epochs")
    batch = st.select_slider("Batch size", [8, 16, 32, 64, 128], d.batch_size, key="fh_batch")
    return d.replace(
        dataset=dataset, n_samples=samples, conv_filters=tuple(min(first * 2**i, 64) for i in range(blocks)),
        kernel_size=kernel, batch_norm=batch_norm, activation=activation, optimizer=optimizer, learning_rate=lr,
        lr_schedule=schedule, epochs=epochs, batch_size=batch,
    )


def pick_input(ctx: HierarchyContext, prefix: str = "fh_") -> tuple[np.ndarray, int | None, np.ndarray | None]:
    """An input image: a test sample or a safe upload.

    Returns:
        the image, its true class (None when unknown) and its object mask (None when unknown).
    """
    left, right = st.columns([1, 2])
    uploaded = image_upload_ui(right, ctx.input_shape, prefix, label="Or upload an image")
    if uploaded is not None:
        return uploaded, None, None
    if ctx.result is None:
        from models.shapes import make_shapes

        shapes, _, _ = make_shapes(8, 0.0, np.random.default_rng(0), size=ctx.input_shape[0])
        index = left.number_input("Generated shape", 0, 7, 0, key=f"{prefix}sample_pre")
        return shapes[index], None, None
    data = ctx.result.dataset
    index = left.number_input("Test image", 0, len(data.y_test) - 1, 0, key=f"{prefix}sample")
    mask = None if data.masks_test is None else data.masks_test[index]
    return data.x_test[index], int(data.y_test[index]), mask
