"""The Architectures page's shared settings and its first part: the sidebar widgets every part reads, and the view
that trains (or reopens) the four architectures on one split, with a time estimate first and a progress bar, and says
in words what the measured numbers show. The other parts' views are in ui/architectures_curves_views.py (learning
curves), ui/architectures_depth_views.py (depth vs width) and ui/architectures_skip_views.py (skip connections)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from models.architectures import DEFAULT_BASE, Contender, contenders, estimated_seconds
from models.config import ExperimentConfig
from models.engine import TrainResult
from ui.architectures_charts import loss_curves_chart, params_accuracy_chart
from ui.progress import estimate_note
from ui.session import train_together

PREFIX = "arch_"
SHAPES = {"shapes": ((32, 32, 3), 4), "digits": ((8, 8, 1), 10)}



@dataclass(frozen=True)
class ComparisonSettings:
    """What the user chose in the sidebar."""

    base: ExperimentConfig  # data and training settings shared by every architecture
    conv_layers: int  # conv layers of each CNN (odd: the residual CNN is a stem and blocks of two)
    filters: int  # filters of every conv layer
    mlp_depth: int  # hidden layers of the MLP
    mlp_width: int | None  # None: solved to match the plain CNN's parameter count

    @property
    def input_shape(self) -> tuple[int, ...]:
        return SHAPES[self.base.dataset][0]

    @property
    def n_classes(self) -> int:
        return SHAPES[self.base.dataset][1]


def comparison_ui() -> ComparisonSettings:
    """Sidebar widgets for the comparison; their defaults are the first visit's small run."""
    st.subheader("Data and training")
    dataset = st.selectbox("Images", list(SHAPES), key=f"{PREFIX}dataset",
                           format_func={"shapes": "Shapes (generated, 32x32 RGB)",
                                        "digits": "Digits (8x8, scikit-learn)"}.get)
    most = 1797 if dataset == "digits" else 4000
    n_samples = st.select_slider("Images (80% train, 20% test)", [200, 500, 1000, 1500, 2000, 3000, 4000],
                                 value=1500, key=f"{PREFIX}n_samples")
    epochs = st.slider("Epochs", 2, 40, DEFAULT_BASE.epochs, key=f"{PREFIX}epochs")
    seed = st.number_input("Seed", 0, 9999, 0, key=f"{PREFIX}seed")
    st.subheader("Networks")
    conv_layers = st.select_slider("Conv layers (each CNN)", [3, 5, 7, 9], value=3, key=f"{PREFIX}conv_layers")
    filters = st.select_slider("Filters per conv layer", [4, 8, 12, 16, 24, 32], value=16, key=f"{PREFIX}filters")
    mlp_depth = st.slider("MLP hidden layers", 1, 3, 1, key=f"{PREFIX}mlp_depth")
    match = st.checkbox("Match the MLP's parameters to the plain CNN's", value=True, key=f"{PREFIX}match",
                        help="The MLP's width is solved so both have about as many parameters: what is left to "
                             "differ is how the parameters are used.")
    width = None if match else st.slider("MLP width", 1, 128, 64, key=f"{PREFIX}mlp_width")
    base = DEFAULT_BASE.replace(dataset=dataset, n_samples=min(n_samples, most), epochs=epochs, seed=int(seed))
    return ComparisonSettings(base, conv_layers, filters, mlp_depth, width)


def split_sizes(base: ExperimentConfig) -> tuple[int, int]:
    """Training and test images in the split of `base`."""
    n_train = int(round(base.train_fraction * base.n_samples))
    return n_train, base.n_samples - n_train


def view_comparison(settings: ComparisonSettings) -> list[tuple[Contender, TrainResult]] | None:
    """Train (or reopen) the four architectures on one split; table, charts and what they show."""
    kinds = contenders(settings.base, settings.conv_layers, settings.filters, settings.mlp_depth, settings.mlp_width,
                       settings.input_shape, settings.n_classes)
    n_train, n_test = split_sizes(settings.base)
    estimate = estimated_seconds([k.config for k in kinds], settings.input_shape, settings.n_classes, n_train, n_test)
    st.caption(f"Four networks, {n_train:,} training and {n_test:,} test images, {settings.base.epochs} epochs, "
               f"trained side by side on the same mini-batches: {estimate_note(estimate)} on this machine "
               "(estimated), or instant when these settings were trained before.")
    results = train_together([k.config for k in kinds], label="Training four architectures")
    if results is None:
        return None
    pairs = list(zip(kinds, results, strict=True))
    table = comparison_table(pairs)
    # One under the other: side by side, a 1000 px window leaves each too narrow for its title and legend.
    st.altair_chart(params_accuracy_chart(table.assign(seed=settings.base.seed)), width="stretch")
    st.altair_chart(loss_curves_chart(_curves(pairs)), width="stretch")
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                                "parameters": st.column_config.NumberColumn(format="localized")})
    st.caption(comparison_summary(pairs))
    return pairs


def comparison_table(pairs: list[tuple[Contender, TrainResult]]) -> pd.DataFrame:
    rows = []
    for kind, r in pairs:
        h = r.history
        rows.append({"architecture": kind.kind, "parameters": r.model.count_params(),
                     "test accuracy": h.test_acc[-1] if len(h) else np.nan,
                     "test loss": h.test_loss[-1] if len(h) else np.nan,
                     "training time (s)": round(float(np.sum(h.step_seconds)), 2), "status": r.status,
                     "how it was sized": kind.note})
    return pd.DataFrame(rows)


def _curves(pairs: list[tuple[Contender, TrainResult]]) -> pd.DataFrame:
    frames = []
    for kind, r in pairs:
        epochs = np.arange(1, len(r.history) + 1)
        for split, loss in (("train", r.history.train_loss), ("test", r.history.test_loss)):
            frames.append(pd.DataFrame({"architecture": kind.kind, "epoch": epochs, "split": split, "loss": loss}))
    return pd.concat(frames, ignore_index=True)


def comparison_summary(pairs: list[tuple[Contender, TrainResult]]) -> str:
    """What the numbers on screen say: the CNN against the MLP at (about) equal parameters, and the best."""
    acc = {k.kind: (r.history.test_acc[-1] if len(r.history) else float("nan")) for k, r in pairs}
    params = {k.kind: r.model.count_params() for k, r in pairs}
    mlp, cnn = acc["MLP"], acc["CNN"]
    verdict = (f"the plain CNN beat the MLP by {100 * (cnn - mlp):.1f} points" if cnn > mlp else
               f"the plain CNN did not beat the MLP here ({cnn:.1%} against {mlp:.1%})")
    best = max(acc, key=lambda k: acc[k])
    times = {k.kind: float(np.sum(r.history.step_seconds)) for k, r in pairs}
    chance = 1 / len(pairs[0][1].dataset.class_names)
    return (f"Measured on {len(pairs[0][1].dataset.y_test)} test images: MLP {mlp:.1%} with {params['MLP']:,} "
            f"parameters, CNN {cnn:.1%} with {params['CNN']:,} parameters, so {verdict}. Best: {best} at "
            f"{acc[best]:.1%} (chance is {chance:.0%}). A conv layer reuses one small kernel at every position, so "
            f"its parameters go into detecting local patterns anywhere in the image; the MLP spends nearly all of "
            f"its parameters on one weight per pixel per unit. Training time (the networks' own steps): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + ".")

