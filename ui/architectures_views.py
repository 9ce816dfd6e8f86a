"""The Architectures page's widget groups and views: each view trains (or reopens) what it shows, with a time
estimate first and a progress bar, and says in words what the measured numbers show."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from models.activation_lab import gradient_ratio
from models.architectures import (
    COMPILE_S,
    DEFAULT_BASE,
    EPOCH_OVERHEAD_S,
    MACS_PER_SECOND,
    Contender,
    contenders,
    depth_of,
    depth_width_ladder,
    estimated_seconds,
    forward_macs,
)
from models.config import ExperimentConfig
from models.engine import TrainResult
from models.landscape import SurfaceEvaluator, grid_coords, random_direction
from models.learning_curves import CurvePoint, crossover, run_curves, sizes_between, training_images
from models.skip_landscape import DEEP_PLAIN, RATIO_THRESHOLD, ConvexityMap, HessianProbe, convexity_points
from ui.architectures_charts import (
    depth_width_charts,
    learning_curve_chart,
    loss_curves_chart,
    params_accuracy_chart,
    ratio_map_chart,
)
from ui.landscape_charts import surface_chart
from ui.progress import collect_with_progress, estimate_note
from ui.session import cached_dataset, memo, memoised, train_together

PREFIX = "arch_"
SHAPES = {"shapes": ((32, 32, 3), 4), "digits": ((8, 8, 1), 10)}
LANDSCAPE_SAMPLES = 256  # training images the surfaces and Hessians are measured on


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


def _split_sizes(base: ExperimentConfig) -> tuple[int, int]:
    n_train = int(round(base.train_fraction * base.n_samples))
    return n_train, base.n_samples - n_train


def view_comparison(settings: ComparisonSettings) -> list[tuple[Contender, TrainResult]] | None:
    """Train (or reopen) the four architectures on one split; table, charts and what they show."""
    kinds = contenders(settings.base, settings.conv_layers, settings.filters, settings.mlp_depth, settings.mlp_width,
                       settings.input_shape, settings.n_classes)
    n_train, n_test = _split_sizes(settings.base)
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


# --- Learning curves -------------------------------------------------------------------------------------------


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


# --- Depth vs width --------------------------------------------------------------------------------------------

LADDERS = {"cnn": (2, 3, 4, 6, 8), "mlp": (1, 2, 3, 4, 6, 8)}


def view_depth_width(settings: ComparisonSettings) -> None:
    c1, c2 = st.columns(2)
    kind = c1.selectbox("Networks", ["cnn", "mlp"], format_func={"cnn": "CNNs", "mlp": "MLPs"}.get,
                        key=f"{PREFIX}dw_kind")
    budgets = (2000, 5000, 10000, 20000) if kind == "cnn" else (20000, 50000, 100000, 200000)
    if settings.base.dataset == "digits" and kind == "mlp":
        budgets = (2000, 5000, 10000, 20000)
    budget = c2.select_slider("Parameter budget", budgets, value=budgets[1], key=f"{PREFIX}dw_budget")
    base = settings.base.replace(hidden_layers=(), batch_norm=False)
    # CNNs twice: plain, where depth costs gradient flow, and with batch norm, which restores it.
    variants = (False, True) if kind == "cnn" else (False,)
    configs = [c for bn in variants for c, _ in depth_width_ladder(base.replace(batch_norm=bn), kind, LADDERS[kind],
                                                                   budget, settings.input_shape, settings.n_classes)]
    if len(configs) < 2 * len(variants):
        st.info("This budget is too large for the widest network allowed at most depths; pick a smaller one.")
        return
    n_train, n_test = _split_sizes(base)
    estimate = estimated_seconds(configs, settings.input_shape, settings.n_classes, n_train, n_test)
    st.caption(f"{len(configs)} networks of about {budget:,} parameters each (widths solved per depth"
               f"{', plain and with batch norm' if kind == 'cnn' else ''}), trained together on the comparison's "
               f"data: {estimate_note(estimate)} (estimated).")
    key = ("arch_dw", tuple(c.key() for c in configs))
    if not memoised(key) and not st.button(f"Train the depth-vs-width ladder ({estimate_note(estimate)})",
                                           key=f"{PREFIX}dw_go"):
        return
    results = train_together(configs, label="Depth vs width")
    if results is None:
        return
    memo(key, lambda: True)
    table = depth_width_table(results)
    for chart in depth_width_charts(table):  # one under the other: each needs the column's whole width
        st.altair_chart(chart, width="stretch")
    st.dataframe(table, hide_index=True,
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    st.caption(depth_width_summary(table))


def depth_width_table(results: list[TrainResult]) -> pd.DataFrame:
    return pd.DataFrame([{
        "network": "{} x {}".format(*depth_of(r.config)), "variant": _variant(r.config),
        "layers": depth_of(r.config)[0], "width": depth_of(r.config)[1], "parameters": r.model.count_params(),
        "test accuracy": r.history.test_acc[-1] if len(r.history) else np.nan,
        "gradient ratio": gradient_ratio(r) if len(r.history) else np.nan} for r in results])


def _variant(config: ExperimentConfig) -> str:
    if config.architecture == "mlp":
        return "MLP"
    return "CNN + batch norm" if config.batch_norm else "plain CNN"


def depth_width_summary(table: pd.DataFrame) -> str:
    parts = []
    for variant, rows in table.groupby("variant", sort=False):
        best, shallow, deep = rows.loc[rows["test accuracy"].idxmax()], rows.iloc[0], rows.iloc[-1]
        parts.append(f"{variant}: best {best['test accuracy']:.1%} ({best['network']}); shallowest "
                     f"{shallow['network']} {shallow['test accuracy']:.1%} with gradient ratio "
                     f"{shallow['gradient ratio']:.2g}, deepest {deep['network']} {deep['test accuracy']:.1%} with "
                     f"{deep['gradient ratio']:.2g}.")
    return ("Measured: " + " ".join(parts) + " The gradient ratio is the mean over epochs of the first weight "
            "layer's gradient norm over the last's (as on the Backpropagation page): far below 1, the first layers "
            "barely learn.")


# --- Skip connections and the landscape ------------------------------------------------------------------------


def view_skip_landscape() -> None:
    c1, c2, c3 = st.columns(3)
    depth = c1.select_slider("Conv layers", [5, 7, 9, 11], value=9, key=f"{PREFIX}sk_depth")
    grid = c2.select_slider("Convexity grid", [3, 5, 7, 9, 11], value=9, key=f"{PREFIX}sk_grid")
    iterations = c3.select_slider("Lanczos steps per point", [5, 10, 15, 20, 30], value=15, key=f"{PREFIX}sk_iters")
    plain = DEEP_PLAIN.replace(conv_filters=(16,) * depth)
    residual = plain.replace(architecture="resnet")
    shape, classes = SHAPES[plain.dataset]
    n_train, n_test = _split_sizes(plain)
    train_s = estimated_seconds([plain, residual], shape, classes, n_train, n_test)
    hvp_s = 3 * 4 * LANDSCAPE_SAMPLES * forward_macs(plain, shape, classes) / MACS_PER_SECOND + 0.004
    maths_s = 2 * (grid * grid * iterations * hvp_s + 21 * 21 * LANDSCAPE_SAMPLES * forward_macs(plain, shape, classes)
                   / MACS_PER_SECOND + 5)
    st.caption(f"A plain CNN and the same CNN with identity skips ({depth} conv layers of 16 filters, batch norm in "
               f"both, as in Li et al.), trained on the digits; 21x21 surfaces and a {grid}x{grid} convexity map each, "
               f"on {LANDSCAPE_SAMPLES} training images: {estimate_note(train_s + maths_s)} (estimated).")
    key = ("arch_skip", plain.key(), grid, iterations)
    if not memoised(key) and not st.button(f"Train both and map their landscapes ({estimate_note(train_s + maths_s)})",
                                           key=f"{PREFIX}sk_go"):
        return
    results = train_together([plain, residual], label="Plain and residual CNN")
    if results is None:
        return
    maps = memo(key, lambda: [_landscape(r, grid, iterations) for r in results])
    columns = st.columns(2)
    for column, r, (a, b, loss, cmap, _) in zip(columns, results, maps, strict=True):
        name = "residual" if r.config.architecture == "resnet" else "plain"  # short: titles share a column
        with column:
            st.altair_chart(surface_chart(a, b, loss, markers={"trained weights": np.zeros((1, 2))},
                                          axis_titles=("filter-normalised direction 1",
                                                       "filter-normalised direction 2"),
                                          title=f"{name.capitalize()}, {depth} layers"),
                            width="stretch")  # two 520 px surfaces do not fit side by side at 1000 px
            ga, gb = np.unique(cmap.coords[:, 0]), np.unique(cmap.coords[:, 1])
            st.altair_chart(ratio_map_chart(ga, gb, cmap.ratio.reshape(len(gb), len(ga)), cmap.threshold,
                                            f"Convexity: {name}"), width="stretch")
    st.caption(skip_summary(results, maps))


def _landscape(r: TrainResult, grid: int, iterations: int):
    x, y = r.dataset.x_train[:LANDSCAPE_SAMPLES], r.dataset.y_train[:LANDSCAPE_SAMPLES]
    evaluator = SurfaceEvaluator(r.model, x, y, r.config.loss, r.dataset.n_classes)
    origin = r.snapshots[-1]
    rng = np.random.default_rng(0)  # the same seed for both: their weights have the same layout
    directions = np.stack([random_direction(r.model, origin, rng) for _ in range(2)])
    a, b, coords = grid_coords((-1.0, 1.0), (-1.0, 1.0), 21)
    name = r.config.architecture
    values = collect_with_progress(evaluator.iter_chunks(origin, directions, coords), len(coords), f"Surface ({name})")
    _, _, coarse = grid_coords((-1.0, 1.0), (-1.0, 1.0), grid)
    bar = st.progress(0.0, text=f"Convexity map ({name}): starting...")
    pairs, start = [], time.perf_counter()
    for pair in convexity_points(evaluator, origin, directions, coarse, iterations):
        pairs.append(pair)
        left = (time.perf_counter() - start) / len(pairs) * (len(coarse) - len(pairs))
        bar.progress(len(pairs) / len(coarse), text=f"Convexity map ({name}): {len(pairs)}/{len(coarse)} points, "
                                                    f"about {left:.0f} s left")
    bar.empty()
    top = HessianProbe(lambda w: evaluator.loss_and_accuracy(w)[0]).extremes(origin, 30)[0]
    pairs = np.array(pairs)
    cmap = ConvexityMap(coarse, pairs[:, 0], pairs[:, 1], RATIO_THRESHOLD)
    return a, b, values[:, 0].reshape(len(b), len(a)), cmap, top


def skip_summary(results: list[TrainResult], maps: list) -> str:
    """The measured difference between the plain and the residual CNN, and whether it shows at this scale."""
    plain, residual = ({"acc": r.history.test_acc[-1] if len(r.history) else float("nan"),
                        "share": m[3].non_convex_share, "top": m[4], "loss": m[2]}
                       for r, m in zip(results, maps, strict=True))

    def within(loss):  # share of the 21x21 surface within 2x the trained weights' loss
        centre = float(loss[loss.shape[0] // 2, loss.shape[1] // 2])
        return float(np.mean(loss[np.isfinite(loss)] <= 2 * centre))
    shown = residual["share"] < plain["share"] or residual["top"] < plain["top"]
    verdict = ("The residual network's landscape is the smoother one on "
               + " and ".join(x for x, ok in (("non-convex share", residual["share"] < plain["share"]),
                                              ("sharpness", residual["top"] < plain["top"])) if ok) + "."
               if shown else "At this scale the difference Li et al. report does not appear: the residual network's "
                             "landscape is not smoother on either measure.")
    return (f"Measured: test accuracy plain {plain['acc']:.1%}, residual {residual['acc']:.1%}. Share of the convexity "
            f"grid where |min / max Hessian eigenvalue| > {RATIO_THRESHOLD:g}: plain {plain['share']:.0%}, residual "
            f"{residual['share']:.0%}. Top Hessian eigenvalue at the trained weights (30 Lanczos steps): plain "
            f"{plain['top']:.3g}, residual {residual['top']:.3g}. Share of the 2D surface within 2x the trained loss: "
            f"plain {within(plain['loss']):.0%}, residual {within(residual['loss']):.0%}. {verdict} Li et al. see "
            f"this with 20-110 layers on CIFAR-10; here the networks are {len(results[0].config.conv_filters)} conv "
            "layers on 8x8 digits.")
