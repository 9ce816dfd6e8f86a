"""The Loss Landscape page's views: each draws its controls, computes (cached, with progress) and charts.

A view reads the model on screen from a `LandscapeContext`; only the optimiser race needs no model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from models.engine import TrainResult
from models.landscape import (
    HessianExtremes,
    SurfaceEvaluator,
    grid_coords,
    hessian_extremes,
    loss_function,
    path_range,
    project,
    random_direction,
    shared_pca_plane,
    sharpness_over_training,
    spaced_indices,
)
from models.optimizer_race import FUNCTIONS, finite_path, function_grid, race, race_table
from models.registry import OPTIMIZERS
from ui.landscape_charts import (
    interpolation_chart,
    sharpness_chart,
    sharpness_over_training_chart,
    surface_3d,
    surface_chart,
)
from ui.progress import collect_with_progress, estimate_note
from ui.session import memo, memoised, run_labels, train_together, trained_runs

ASK_ABOVE_SECONDS = 6.0  # longer computations wait for a click, with the estimate shown
SHARPNESS_SNAPSHOTS = 10  # at most this many snapshots get a Lanczos run in the sharpness-over-training chart


@dataclass(frozen=True)
class LandscapeContext:
    """The model on screen and the data its landscape is measured on."""

    result: TrainResult  # the trained model being explored
    split: str  # "train" or "test": which part of its dataset the loss is measured on
    samples: int  # how many samples of that split (the first ones)

    def evaluator(self, r: TrainResult | None = None) -> SurfaceEvaluator:
        """A compiled loss evaluator for `r` (default: the model on screen) on this context's data."""
        r = r or self.result
        data = r.dataset
        x, y = (data.x_train, data.y_train) if self.split == "train" else (data.x_test, data.y_test)
        return memo(("evaluator", r.config.key(), self.split, self.samples),
                    lambda: SurfaceEvaluator(r.model, x[: self.samples], y[: self.samples], r.config.loss,
                                             data.n_classes))

    def key(self, r: TrainResult | None = None) -> tuple:
        return ((r or self.result).config.key(), self.split, self.samples)


def _loss_at(evaluator: SurfaceEvaluator, weights: np.ndarray) -> float:
    return float(evaluator.evaluate(weights, np.zeros((1, weights.size), "float32"), np.zeros((1, 1)))[0, 0])


def _seconds_per_point(evaluator: SurfaceEvaluator, weights: np.ndarray, key: tuple) -> float:
    """Measured cost of one landscape point (a 32-point chunk, after compiling)."""
    def measure():
        coords = np.zeros((32, 1), dtype="float32")
        evaluator.evaluate(weights, weights[None, :] * 0, coords[:1])  # compile
        start = time.perf_counter()
        evaluator.evaluate(weights, weights[None, :] * 0, coords, chunk=32)
        return (time.perf_counter() - start) / 32
    return memo(("cost",) + key, measure)


def _surface(ctx: LandscapeContext, evaluator, origin, directions, coords, key, label) -> np.ndarray | None:
    """Losses on a grid: cached, with a time estimate and, for long ones, a click to start."""
    full_key = ("surface",) + key
    if memoised(full_key):
        return memo(full_key, lambda: None)
    estimate = _seconds_per_point(evaluator, origin, ctx.key()) * len(coords)
    if estimate > ASK_ABOVE_SECONDS and not st.button(f"Compute ({estimate_note(estimate)})", key=f"go_{label}"):
        st.info(f"{label} has {len(coords)} points: {estimate_note(estimate)} on this machine.")
        return None
    values = collect_with_progress(evaluator.iter_chunks(origin, directions, coords), len(coords), label)
    return memo(full_key, lambda: values)


def _climb_back(loss: np.ndarray) -> tuple[float, int]:
    """The most the loss rises again after falling (0 for a monotone drop), and where it peaks."""
    rises = loss - np.minimum.accumulate(loss)
    peak = int(np.nanargmax(rises)) if np.isfinite(rises).any() else 0
    return float(np.nan_to_num(rises[peak])), peak


def view_interpolation(ctx: LandscapeContext) -> None:
    lo, hi = st.slider("alpha range", -1.0, 2.0, (-0.5, 1.5), 0.1, key="ll_alpha")
    n = st.slider("Points", 11, 201, 61, 10, key="ll_alpha_n")
    r = ctx.result
    start, end = r.initial_weights, r.snapshots[-1]
    alphas = np.linspace(lo, hi, n, dtype="float32")
    coords = np.concatenate([alphas, [0.0, 1.0]]).astype("float32")[:, None]  # the two ends, measured exactly
    values = _surface(ctx, ctx.evaluator(), start, (end - start)[None, :], coords, ctx.key() + ("1d", lo, hi, n),
                      "1D interpolation")
    if values is None:
        return
    loss, (initial, trained) = values[:n, 0], values[n:, 0]
    st.altair_chart(interpolation_chart(alphas, loss, values[:n, 1]), width="stretch")
    between = (alphas >= 0) & (alphas <= 1)
    rise, at = _climb_back(loss[between]) if between.sum() > 1 else (0.0, 0)
    barrier = ("falls without climbing back on the way" if rise <= 1e-3 * initial else
               f"climbs back by {rise:.3g} on the way (at alpha {alphas[between][at]:.2f}): a barrier")
    st.caption(f"Alpha 0 is the untrained network (loss {initial:.3g} on the {ctx.samples} {ctx.split} samples "
               f"here) and 1 the trained one (loss {trained:.3g}). Between them the loss {barrier}. "
               + _beyond_trained(alphas, loss, trained))


def _beyond_trained(alphas: np.ndarray, loss: np.ndarray, trained: float) -> str:
    """What the curve does past alpha 1, in one sentence of measured numbers ('' if the range stops at 1)."""
    beyond = alphas > 1
    if not beyond.any() or not np.isfinite(loss[beyond]).any():
        return ""
    low = int(np.nanargmin(np.where(beyond & np.isfinite(loss), loss, np.nan)))
    if loss[low] < 0.99 * trained:
        return (f"Past 1 the loss keeps falling, to {loss[low]:.3g} at alpha {alphas[low]:.2f}: along this line "
                "training stopped before the bottom of the valley.")
    return (f"Past 1 the valley wall rises to {loss[-1]:.3g} at alpha {alphas[-1]:.2f}, {loss[-1] / trained:.3g}x "
            "the trained loss: the steeper, the narrower the valley along this line.")


def view_surface(ctx: LandscapeContext) -> None:
    c1, c2, c3 = st.columns(3)
    resolution = c1.select_slider("Resolution", [11, 21, 31, 41, 51, 61, 81], value=21, key="ll_res")
    extent = c2.select_slider("Range", [0.1, 0.25, 0.5, 1.0, 2.0], value=1.0, key="ll_range")
    seed = c3.number_input("Direction seed", 0, 9999, 0, key="ll_dir_seed")
    r = ctx.result
    w = r.snapshots[-1]
    rng = np.random.default_rng(int(seed))
    directions = np.stack([random_direction(r.model, w, rng) for _ in range(2)])
    a, b, coords = grid_coords((-extent, extent), (-extent, extent), resolution)
    values = _surface(ctx, ctx.evaluator(), w, directions, coords, ctx.key() + ("2d", resolution, extent, int(seed)),
                      "2D surface")
    if values is None:
        return
    loss = values[:, 0].reshape(resolution, resolution)
    st.altair_chart(surface_chart(a, b, loss, markers={"trained weights": np.zeros((1, 2))},
                                  axis_titles=("filter-normalised direction 1", "filter-normalised direction 2")),
                    width="content")
    centre = float(loss[resolution // 2, resolution // 2])
    near = float(np.mean(loss[np.isfinite(loss)] <= 10 * centre)) if np.isfinite(loss).any() else 0.0
    low = np.unravel_index(np.nanargmin(np.where(np.isfinite(loss), loss, np.nan)), loss.shape)
    lowest = (f"The map's lowest loss, {loss[low]:.3g}, is at ({a[low[1]]:.2f}, {b[low[0]]:.2f}): on this data the "
              "trained weights sit beside, not in, this slice's lowest point." if loss[low] < centre * 0.99 else
              "No point of the map is lower than the trained weights.")
    st.caption(f"Measured on {ctx.samples} {ctx.split} samples: the trained weights (the diamond) have loss "
               f"{centre:.3g}, and {near:.0%} of this map is within 10x that: the wider that share, the flatter the "
               f"basin. {lowest} Each direction is random but rescaled filter by filter to the size of the trained "
               "weights, so maps of different networks can be compared.")
    with st.expander("3D view"):
        st.plotly_chart(surface_3d(a, b, loss), width="stretch")


def view_path(ctx: LandscapeContext) -> None:
    r = ctx.result
    if len(r.snapshots) < 3:
        st.warning("This model has too few weight snapshots for a path; train it for at least two epochs.")
        return
    resolution = st.select_slider("Resolution", [11, 21, 31, 41, 51], value=21, key="ll_path_res")
    plane = shared_pca_plane([r.snapshots])
    path = project(plane, r.snapshots)
    a_range, b_range = path_range(path)
    a, b, coords = grid_coords(a_range, b_range, resolution)
    evaluator = ctx.evaluator()
    values = _surface(ctx, evaluator, plane.origin, plane.directions, coords, ctx.key() + ("path", resolution),
                      "Path plane")
    if values is None:
        return
    loss = values[:, 0].reshape(resolution, resolution)
    titles = tuple(f"PC{i + 1} ({plane.explained[i]:.0%} of the path's variance)" for i in range(2))
    st.altair_chart(surface_chart(a, b, loss, paths={"training path": path}, axis_titles=titles,
                                  markers={"start": path[:1], "trained weights": np.zeros((1, 2))},
                                  title="Training path on its own PCA plane"), width="content")
    start_loss, end_loss = _loss_at(evaluator, r.snapshots[0]), _loss_at(evaluator, r.snapshots[-1])
    st.caption(f"The two directions along which the weights varied most explain {sum(plane.explained):.0%} of the "
               "path's variance (Li et al.'s PCA of every snapshot minus the trained weights). The plane passes "
               "through the trained weights at (0, 0, the diamond); the square is the starting point; each dot is "
               f"one snapshot (epoch). The loss fell from {start_loss:.3g} at the start to {end_loss:.3g}; the colour "
               "under a dot is the loss on the plane, which differs where the path leaves the plane.")


def view_optimisers(ctx: LandscapeContext) -> None:
    chosen = st.multiselect("Optimisers (2-4)", list(OPTIMIZERS), default=["sgd", "momentum", "adam"],
                            max_selections=4, key="ll_opts")
    if len(chosen) < 2:
        st.warning("Pick at least two optimisers.")
        return
    cols = st.columns(len(chosen))
    rates = {name: col.select_slider(f"{name} learning rate", [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
                                     value=0.1 if name in ("sgd", "momentum", "nesterov") else 0.01,
                                     key=f"ll_lr_{name}") for name, col in zip(chosen, cols, strict=True)}
    configs = [ctx.result.config.replace(optimizer=n, learning_rate=rates[n], optimizer_options=()) for n in chosen]
    runs = train_together(configs, label="Training with each optimiser")
    if runs is None:
        return
    plane = shared_pca_plane([r.snapshots for r in runs])
    paths = {f"{r.config.optimizer} (lr {r.config.learning_rate:g})": project(plane, r.snapshots) for r in runs}
    a_range, b_range = path_range(np.vstack(list(paths.values())))
    resolution = st.select_slider("Resolution", [11, 21, 31, 41], value=21, key="ll_opt_res")
    a, b, coords = grid_coords(a_range, b_range, resolution)
    key = tuple(c.key() for c in configs) + (ctx.split, ctx.samples, "opts", resolution)
    values = _surface(ctx, ctx.evaluator(runs[0]), plane.origin, plane.directions, coords, key, "Shared plane")
    if values is None:
        return
    st.altair_chart(surface_chart(a, b, values[:, 0].reshape(resolution, resolution), paths=paths,
                                  markers={"start": next(iter(paths.values()))[:1]},
                                  axis_titles=tuple(f"PC{i + 1} ({plane.explained[i]:.0%})" for i in range(2)),
                                  title="Optimisers from the same start, on one shared plane"), width="content")
    table = pd.DataFrame([{"optimiser": name, "final train loss": r.history.train_loss[-1],
                           "final test accuracy": r.history.test_acc[-1], "status": r.status}
                          for name, r in zip(paths, runs, strict=True)])
    best, worst = table.loc[table["final train loss"].idxmin()], table.loc[table["final train loss"].idxmax()]
    st.caption(f"All runs start from the same weights (the square) and see the same batches; only the optimiser "
               f"differs. After {configs[0].epochs} epochs {best.optimiser} reached the lowest train loss "
               f"({best['final train loss']:.3g}) and {worst.optimiser} the highest ({worst['final train loss']:.3g}). "
               "The plane is the PCA plane of all their snapshots together, through the first run's trained weights "
               "at (0, 0).")
    st.dataframe(table, hide_index=True)


def _extremes(ctx: LandscapeContext, r: TrainResult, iterations: int) -> HessianExtremes:
    return memo(("hessian_extremes",) + ctx.key(r) + (iterations,),
                lambda: hessian_extremes(loss_function(ctx.evaluator(r)), r.snapshots[-1], iterations))


def _extremes_over_training(ctx: LandscapeContext, iterations: int) -> list[tuple[int, HessianExtremes]]:
    """Lanczos at up to SHARPNESS_SNAPSHOTS snapshots of the model on screen, with a progress bar."""
    key = ("sharpness_over_training",) + ctx.key() + (iterations, SHARPNESS_SNAPSHOTS)
    if memoised(key):
        return memo(key, lambda: None)
    r = ctx.result
    total = len(spaced_indices(len(r.snapshots), SHARPNESS_SNAPSHOTS))
    bar = st.progress(0.0, text=f"Lanczos iterations at {total} snapshots...")
    points = []
    for index, ends in sharpness_over_training(loss_function(ctx.evaluator()), r.snapshots, SHARPNESS_SNAPSHOTS,
                                               iterations):
        points.append((r.snapshot_epochs[index], ends))
        bar.progress(len(points) / total, text=f"Lanczos iterations: epoch {points[-1][0]} ({len(points)}/{total})")
    bar.empty()
    return memo(key, lambda: points)


def view_sharpness(ctx: LandscapeContext) -> None:
    iterations = st.slider("Lanczos steps (Hessian-vector products)", 5, 100, 30, 5, key="ll_iters")
    r = ctx.result
    points = _extremes_over_training(ctx, iterations)
    labels = run_labels(trained_runs())
    rows = []
    for other in trained_runs():
        if other is not r and not memoised(("hessian_extremes",) + ctx.key(other) + (iterations,)):
            continue
        ends = _extremes(ctx, other, iterations)
        rows.append({"model": labels[other.config.key()], "batch size": other.config.batch_size,
                     "learning rate": other.config.learning_rate, "top": ends.top, "bottom": ends.bottom,
                     "ratio": ends.ratio, "test accuracy": other.history.test_acc[-1]})
    st.altair_chart(sharpness_chart(rows), width="stretch")
    ends = _extremes(ctx, r, iterations)
    st.caption(f"For the model on screen ({ctx.samples} {ctx.split} samples) the top eigenvalue, the sharpness, is "
               f"{ends.top:.4g}: along the most sharply upward-curved direction the slope steepens by that much per "
               f"unit step. The bottom one, {ends.bottom:.4g}, is how fast the loss bends down along the most "
               f"downward-curved direction (a true minimum has none below zero); |bottom / top| = {ends.ratio:.3g} is "
               "Li et al.'s measure of non-convexity, near 0 where the loss looks convex. Each model you pick above is "
               "added here: train the same model with batch 8 and batch 512 in the sidebar to compare them.")
    epochs = [e for e, _ in points]
    sharpest = max(points, key=lambda p: p[1].top)
    st.altair_chart(sharpness_over_training_chart(epochs, [p.top for _, p in points], [p.bottom for _, p in points],
                                                  f"Curvature during training ({len(points)} snapshots)"),
                    width="stretch")
    note = " (with the final batch-norm statistics at every epoch)" if r.config.batch_norm else ""
    first, last = points[0][1], points[-1][1]
    st.caption(f"The same two eigenvalues at snapshots taken during training{note}: the sharpness went from "
               f"{first.top:.4g} at epoch {epochs[0]} to {last.top:.4g} at epoch {epochs[-1]}, highest at "
               f"epoch {sharpest[0]} ({sharpest[1].top:.4g}). Both come from Lanczos iterations on Hessian-vector "
               "products, never forming the Hessian.")
    table = pd.DataFrame(rows).rename(columns={"top": "top eigenvalue (sharpness)",
                                               "bottom": "bottom eigenvalue (most negative)",
                                               "ratio": "|bottom / top| (non-convexity)"})
    st.dataframe(table, hide_index=True, width="stretch")


def view_race(_: LandscapeContext | None = None) -> None:
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Function", list(FUNCTIONS), key="ll_fn")
    spec = FUNCTIONS[name]
    steps = c2.slider("Steps", 10, 1000, 300, 10, key="ll_race_steps")
    chosen = c3.multiselect("Optimisers", list(OPTIMIZERS), default=["sgd", "momentum", "adam", "rmsprop"],
                            key="ll_race_opts")
    start = st.columns(2)
    x0 = start[0].slider("Start x", *map(float, spec.x_range), float(spec.start[0]), key=f"ll_x0_{name}")
    y0 = start[1].slider("Start y", *map(float, spec.y_range), float(spec.start[1]), key=f"ll_y0_{name}")
    lr = st.select_slider("Learning rate (all optimisers)", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3],
                          value=1e-3 if name == "rosenbrock" else 0.01, key="ll_race_lr")
    if not chosen:
        st.warning("Pick at least one optimiser.")
        return
    paths = memo(("race", name, tuple(chosen), steps, x0, y0, lr),
                 lambda: race(name, {o: (o, lr) for o in chosen}, (x0, y0), steps))
    shown = st.slider("Show steps", 0, steps, steps, key="ll_race_show")
    xs, ys, f = function_grid(name)
    shifted = f - float(f.min()) + 1.0  # positive for the log colours; the valley floor stays visible
    chart_paths = {o: finite_path(p)[: shown + 1, :2] for o, p in paths.items()}
    st.altair_chart(surface_chart(xs, ys, shifted, paths=chart_paths, axis_titles=("x", "y"),
                                  markers={"start": np.array([[x0, y0]]), "known minimum": np.array(spec.minima)},
                                  title=f"{name}: {spec.formula}", colour_title="f - min f + 1"), width="content")
    table = pd.DataFrame(race_table({o: p[: shown + 1] for o, p in paths.items()}, name))
    closest = table.loc[table["distance to nearest minimum"].idxmin()]
    distance = closest["distance to nearest minimum"]
    st.caption(f"Known minimum at {', '.join(str(m) for m in spec.minima)} (the stars). After {shown} steps "
               f"{closest.optimiser} is closest: f = {closest['final f']:.3g}, {distance:.3g} from the nearest "
               "minimum. The optimisers are Keras' own, stepped on exact gradients; drag 'Show steps' to replay the "
               "race. An optimiser whose steps overflowed is drawn and listed up to its last finite point.")
    st.dataframe(table, hide_index=True)
