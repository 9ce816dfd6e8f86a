"""The Architectures page's part 2, learning curves: the MLP and the CNN trained on nested training sets of growing
size over several seeds, with a time estimate first and a progress bar, and in words where the CNN overtakes."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from models.architectures import COMPILE_S, EPOCH_OVERHEAD_S, MACS_PER_SECOND, forward_macs
from models.config import ExperimentConfig
from models.learning_curves import CurvePoint, crossover, run_curves, sizes_between, training_images
from ui.architectures_charts import learning_curve_chart
from ui.architectures_views import PREFIX, ComparisonSettings
from ui.progress import estimate_note
from ui.session import cached_dataset, memo, memoised


def view_learning_curves(settings: ComparisonSettings) -> None:
    c1, c2, c3 = st.columns(3)
    most = c1.select_slider("Largest training set", [500, 1000, 2000, 4000], value=2000, key=f"{PREFIX}lc_most")
    count = c2.slider("Sizes", 3, 8, 6, key=f"{PREFIX}lc_count")
    mlp_width = c3.select_slider("MLP width", [16, 32, 64, 128], value=64, key=f"{PREFIX}lc_mlp_width")
    dataset = _curve_dataset(settings.base, most)
    most = min(most, len(dataset.y_train))
    sizes = sizes_between(50, most, count)
    seeds = (0, 1, 2)
    configs = {"MLP": settings.base.replace(architecture="mlp", hidden_layers=(mlp_width,)),
               "CNN": settings.base.replace(architecture="cnn", conv_filters=(settings.filters,) * settings.conv_layers,
                                            batch_norm=True)}
    estimate = _curve_estimate(configs, settings, sizes, len(seeds))
    key = ("arch_curves", tuple(c.key() for c in configs.values()), tuple(sizes), seeds, dataset.x_train.shape)
    st.caption(f"{len(sizes)} sizes from {sizes[0]} to {sizes[-1]:,} images, seeds {', '.join(map(str, seeds))}, "
               f"an MLP ({mlp_width} units) and the CNN with batch norm above, scored on the same "
               f"{len(dataset.y_test):,} test images: {len(sizes) * len(seeds) * 2} trainings, "
               f"{estimate_note(estimate)} (estimated). Small sets train for more epochs (at least 300 steps).")
    if not memoised(key) and not st.button(f"Measure the learning curves ({estimate_note(estimate)})",
                                           key=f"{PREFIX}lc_go"):
        return
    points = memo(key, lambda: _run_curves_with_progress(configs, dataset, sizes, seeds))
    frame = pd.DataFrame([{"architecture": p.label, "size": p.size, "seed": p.seed, "test accuracy": p.test_acc}
                          for p in points])
    means = frame.groupby(["architecture", "size"])["test accuracy"].mean().unstack(0)
    cross = crossover(sizes, means["CNN"].to_numpy(), means["MLP"].to_numpy())
    st.altair_chart(learning_curve_chart(frame, cross), width="stretch")
    st.caption(_curve_summary(sizes, means, cross))


def _curve_dataset(base: ExperimentConfig, most: int):
    if base.dataset == "digits":
        config = base.replace(n_samples=1797, train_fraction=0.8, seed=0)
    else:
        config = base.replace(n_samples=most + 1000, train_fraction=most / (most + 1000), seed=0)
    return cached_dataset(ExperimentConfig(dataset=config.dataset, n_samples=config.n_samples, noise=config.noise,
                                           train_fraction=config.train_fraction, seed=0))


def _curve_estimate(configs: dict, settings: ComparisonSettings, sizes: list[int], seeds: int) -> float:
    images = training_images(sizes, settings.base.batch_size) * seeds
    macs = sum(forward_macs(c, settings.input_shape, settings.n_classes) for c in configs.values())
    overhead = len(sizes) * seeds * (2 * COMPILE_S + 20 * EPOCH_OVERHEAD_S)
    return images * 4 * macs / MACS_PER_SECOND + overhead


def _run_curves_with_progress(configs, dataset, sizes, seeds) -> list[CurvePoint]:
    total = len(sizes) * len(seeds) * len(configs)
    bar = st.progress(0.0, text="Learning curves: starting...")
    points, start = [], time.perf_counter()
    for point in run_curves(configs, dataset, sizes, seeds):
        points.append(point)  # each progress call is where a widget change stops the run
        left = (time.perf_counter() - start) / len(points) * (total - len(points))
        bar.progress(len(points) / total, text=f"Learning curves: {point.label} on {point.size} images, seed "
                                               f"{point.seed}: {point.test_acc:.1%} · about {left:.0f} s left")
    bar.empty()
    return points


def _curve_summary(sizes: list[int], means: pd.DataFrame, cross: float | None) -> str:
    mlp, cnn = means["MLP"], means["CNN"]
    ends = (f"Mean test accuracy over 3 seeds: MLP {mlp.iloc[0]:.1%} -> {mlp.iloc[-1]:.1%}, CNN {cnn.iloc[0]:.1%} -> "
            f"{cnn.iloc[-1]:.1%} from {sizes[0]} to {sizes[-1]:,} training images.")
    if cross is None:
        where = (f"The CNN did not overtake the MLP within this range (at {sizes[-1]:,} images: CNN "
                 f"{cnn.iloc[-1]:.1%}, MLP {mlp.iloc[-1]:.1%}).")
    elif cross <= sizes[0]:
        where = f"The CNN was ahead at every size measured, from {sizes[0]} images on."
    else:
        where = (f"The CNN overtakes the MLP at about {cross:,.0f} training images (interpolated on the log axis) "
                 "and stays ahead at every larger size measured.")
    return f"{ends} {where} Both keep climbing while the curve slopes up: more data still helps there."
