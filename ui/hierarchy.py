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


FILTER_CHOICES = (4, 8, 16, 32)  # filters in the first block; each later block doubles them, up to 64
KERNEL_CHOICES = (3, 5, 7)
LR_CHOICES = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03)
BATCH_CHOICES = (8, 16, 32, 64, 128)
SAMPLES_RANGE = (200, 4000, 100)  # the images slider: low, high, step
MAX_BLOCKS, MAX_EPOCHS = 6, 60


def _config_from(values: dict) -> ExperimentConfig:
    """The CNN the sidebar's values (by widget key) describe; everything else is models.recipes.DEFAULT_CNN."""
    first, blocks = values["fh_filters"], values["fh_blocks"]
    return DEFAULT_CNN.replace(
        dataset=values["fh_dataset"], n_samples=values["fh_samples"],
        conv_filters=tuple(min(first * 2**i, 64) for i in range(blocks)), kernel_size=values["fh_kernel"],
        batch_norm=values["fh_bn"], activation=values["fh_act"], optimizer=values["fh_opt"],
        learning_rate=values["fh_lr"], lr_schedule=values["fh_schedule"], epochs=values["fh_epochs"],
        batch_size=values["fh_batch"],
    )


def sidebar_values(config: ExperimentConfig) -> dict | None:
    """The sidebar values (by widget key) that train exactly `config` (the same config key), or None when the
    sidebar cannot express it: not a CNN on one of its image sets, filters that do not double per block, a
    setting outside a slider's choices, or any field the sidebar does not have that differs from the recipe's."""
    if config.architecture != "cnn" or config.dataset not in IMAGE_SETS or not config.conv_filters:
        return None
    low, high, step = SAMPLES_RANGE
    values = {
        "fh_dataset": config.dataset, "fh_samples": config.n_samples, "fh_blocks": len(config.conv_filters),
        "fh_filters": config.conv_filters[0], "fh_kernel": config.kernel_size, "fh_bn": config.batch_norm,
        "fh_act": config.activation, "fh_opt": config.optimizer, "fh_lr": config.learning_rate,
        "fh_schedule": config.lr_schedule, "fh_epochs": config.epochs, "fh_batch": config.batch_size,
    }
    allowed = (low <= config.n_samples <= high and (config.n_samples - low) % step == 0
               and values["fh_blocks"] <= MAX_BLOCKS and values["fh_filters"] in FILTER_CHOICES
               and config.kernel_size in KERNEL_CHOICES and config.activation in ACTIVATIONS
               and config.optimizer in OPTIMIZERS and config.learning_rate in LR_CHOICES
               and config.lr_schedule in SCHEDULE_LABELS and 1 <= config.epochs <= MAX_EPOCHS
               and config.batch_size in BATCH_CHOICES)
    return values if allowed and _config_from(values).key() == config.key() else None


def cnn_controls() -> ExperimentConfig:
    """The sidebar's CNN settings as a config; the defaults are models.recipes.DEFAULT_CNN, and a run opened
    from the Runs page sets them beforehand (`sidebar_values`), so the widgets take no default of their own."""
    defaults = sidebar_values(DEFAULT_CNN)
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    st.subheader("Data")
    st.selectbox("Images", IMAGE_SETS, format_func=DATASET_LABELS.get, key="fh_dataset")
    st.slider("Images to use (half train, half test)", *SAMPLES_RANGE[:2], step=SAMPLES_RANGE[2], key="fh_samples")
    st.subheader("Network")
    st.slider("Conv blocks", 1, MAX_BLOCKS, key="fh_blocks")
    st.select_slider("Filters in the first block (doubled per block, up to 64)", FILTER_CHOICES, key="fh_filters")
    st.select_slider("Kernel size", KERNEL_CHOICES, key="fh_kernel")
    st.checkbox("Batch normalisation", key="fh_bn",
                help="Normalises each conv's outputs over the batch. Without it this CNN often sits "
                     "at chance for many epochs before it starts to learn, or never does.")
    st.selectbox("Activation", list(ACTIVATIONS), key="fh_act")
    st.subheader("Training")
    st.selectbox("Optimiser", list(OPTIMIZERS), key="fh_opt")
    st.select_slider("Learning rate (peak)", LR_CHOICES, key="fh_lr")
    st.selectbox("Learning-rate schedule", list(SCHEDULE_LABELS), format_func=SCHEDULE_LABELS.get, key="fh_schedule")
    st.slider("Epochs", 1, MAX_EPOCHS, key="fh_epochs")
    st.select_slider("Batch size", BATCH_CHOICES, key="fh_batch")
    return _config_from({key: st.session_state[key] for key in defaults})


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
