"""The Architectures page's part 4, skip connections and the loss landscape: a deep plain CNN and the same CNN with
identity skips, trained together, their loss surfaces and convexity maps measured with progress bars, and in words
whether the residual one's landscape is the smoother (Li et al. 2018)."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from models.architectures import MACS_PER_SECOND, estimated_seconds, forward_macs
from models.engine import TrainResult
from models.landscape import SurfaceEvaluator, grid_coords, random_direction
from models.skip_landscape import DEEP_PLAIN, RATIO_THRESHOLD, ConvexityMap, HessianProbe, convexity_points
from ui.architectures_charts import ratio_map_chart
from ui.architectures_views import PREFIX, SHAPES, split_sizes
from ui.landscape_charts import surface_chart
from ui.progress import collect_with_progress, estimate_note
from ui.session import memo, memoised, train_together

LANDSCAPE_SAMPLES = 256  # training images the surfaces and Hessians are measured on


def view_skip_landscape() -> None:
    c1, c2, c3 = st.columns(3)
    depth = c1.select_slider("Conv layers", [5, 7, 9, 11], value=9, key=f"{PREFIX}sk_depth")
    grid = c2.select_slider("Convexity grid", [3, 5, 7, 9, 11], value=9, key=f"{PREFIX}sk_grid")
    iterations = c3.select_slider("Lanczos steps per point", [5, 10, 15, 20, 30], value=15, key=f"{PREFIX}sk_iters")
    plain = DEEP_PLAIN.replace(conv_filters=(16,) * depth)
    residual = plain.replace(architecture="resnet")
    shape, classes = SHAPES[plain.dataset]
    n_train, n_test = split_sizes(plain)
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
