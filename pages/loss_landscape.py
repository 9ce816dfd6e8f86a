"""Loss Landscape: 1D and 2D slices of the loss around a trained model, paths, optimisers, sharpness."""

import time

import numpy as np
import pandas as pd
import streamlit as st

from models.config import ExperimentConfig
from models.engine import TrainResult
from models.landscape import (
    SurfaceEvaluator,
    grid_coords,
    hessian_extremes,
    loss_function,
    path_range,
    project,
    random_direction,
    shared_pca_plane,
)
from models.optimizer_race import FUNCTIONS, finite_path, function_grid, race, race_table
from models.registry import OPTIMIZERS
from ui.landscape_charts import interpolation_chart, surface_3d, surface_chart
from ui.progress import collect_with_progress, estimate_note
from ui.routing import require_router, stop_page
from ui.session import memo, memoised, run_label, runs, train_live, train_together
from ui.widgets import warn_if_not_learned

require_router("pages/loss_landscape.py")

QUICK_MODELS = {
    "Digits CNN": ExperimentConfig(dataset="digits", n_samples=1797, architecture="cnn", conv_filters=(8, 16),
                                   hidden_layers=(), activation="relu", epochs=10, batch_size=32,
                                   learning_rate=0.01),
    "Digits MLP": ExperimentConfig(dataset="digits", n_samples=1797, hidden_layers=(32,), activation="relu",
                                   epochs=20, batch_size=32, learning_rate=0.003),
    "Circle MLP (Playground default)": ExperimentConfig(),
}
VIEWS = ("1D interpolation", "2D surface", "Training path", "Optimisers compared", "Sharpness", "Optimiser race")
ASK_ABOVE_SECONDS = 6.0  # longer computations wait for a click, with the estimate shown

st.title("Loss Landscape")
st.caption(
    "The loss is a function of every weight at once. These views slice it along one or two directions "
    "around a model you trained, so you can see valleys, barriers and how optimisers move through them."
)

with st.sidebar:
    st.subheader("Train a model here")
    quick = st.selectbox("Model", list(QUICK_MODELS), key="ll_quick")
    batch = st.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], value=32, key="ll_batch",
                             help="Compare small and large batches in the Sharpness view.")
    if st.button("Train", key="ll_train"):
        train_live(QUICK_MODELS[quick].replace(batch_size=batch), label=f"Training {quick}")

view = st.radio("View", VIEWS, horizontal=True, key="ll_view")
trained = [r for r in reversed(runs().values()) if len(r.history)]
if view != "Optimiser race" and not trained:
    st.info("No trained model yet: train one with the sidebar's **Train** button, or in the Playground or "
            "Activation Lab; every model trained in this session appears here.")
    stop_page()

if view != "Optimiser race":
    labels = {run_label(r): r for r in trained}
    result: TrainResult = labels[st.selectbox("Model to explore", list(labels), key="ll_model")]
    warn_if_not_learned(result)
    left, right = st.columns(2)
    split = left.radio("Evaluate on", ("train", "test"), horizontal=True, key="ll_split")
    samples = right.select_slider("Evaluation samples", [128, 256, 512, 1024], value=512, key="ll_samples")


def evaluator_for(r: TrainResult) -> SurfaceEvaluator:
    data = r.dataset
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    return memo(("evaluator", r.config.key(), split, samples),
                lambda: SurfaceEvaluator(r.model, x[:samples], y[:samples], r.config.loss, data.n_classes))


def seconds_per_point(evaluator: SurfaceEvaluator, key: tuple) -> float:
    """Measured cost of one landscape point (a 32-point chunk, after compiling)."""
    def measure():
        origin = result.snapshots[-1]
        coords = np.zeros((32, 1), dtype="float32")
        evaluator.evaluate(origin, origin[None, :] * 0, coords[:1])  # compile
        start = time.perf_counter()
        evaluator.evaluate(origin, origin[None, :] * 0, coords, chunk=32)
        return (time.perf_counter() - start) / 32
    return memo(("cost",) + key, measure)


def surface(evaluator, origin, directions, coords, key, label) -> np.ndarray | None:
    """Losses on a grid: cached, with a time estimate and, for long ones, a click to start."""
    full_key = ("surface",) + key
    if memoised(full_key):
        return memo(full_key, lambda: None)
    estimate = seconds_per_point(evaluator, key[:3]) * len(coords)
    if estimate > ASK_ABOVE_SECONDS and not st.button(f"Compute ({estimate_note(estimate)})", key=f"go_{label}"):
        st.info(f"{label} has {len(coords)} points: {estimate_note(estimate)} on this machine.")
        return None
    values = collect_with_progress(evaluator.iter_chunks(origin, directions, coords), len(coords), label)
    return memo(full_key, lambda: values)


def view_interpolation() -> None:
    lo, hi = st.slider("alpha range", -1.0, 2.0, (-0.5, 1.5), 0.1, key="ll_alpha")
    n = st.slider("Points", 11, 201, 61, 10, key="ll_alpha_n")
    ev = evaluator_for(result)
    start, end = result.initial_weights, result.snapshots[-1]
    alphas = np.linspace(lo, hi, n, dtype="float32")
    key = (result.config.key(), split, samples, "1d", lo, hi, n)
    values = surface(ev, start, (end - start)[None, :], alphas[:, None], key, "1D interpolation")
    if values is None:
        return
    st.altair_chart(interpolation_chart(alphas, values[:, 0], values[:, 1]), width="stretch")
    st.caption("Alpha 0 is the untrained network and 1 the trained one. A smooth monotone drop means the "
               "optimiser crossed no barrier; the rise beyond 1 shows how steep the valley wall is.")


def view_surface() -> None:
    c1, c2, c3 = st.columns(3)
    resolution = c1.select_slider("Resolution", [11, 21, 31, 41, 51, 61, 81], value=21, key="ll_res")
    extent = c2.select_slider("Range", [0.1, 0.25, 0.5, 1.0, 2.0], value=1.0, key="ll_range")
    seed = c3.number_input("Direction seed", 0, 9999, 0, key="ll_dir_seed")
    w = result.snapshots[-1]
    rng = np.random.default_rng(int(seed))
    directions = np.stack([random_direction(result.model, w, rng) for _ in range(2)])
    a, b, coords = grid_coords((-extent, extent), (-extent, extent), resolution)
    key = (result.config.key(), split, samples, "2d", resolution, extent, int(seed))
    values = surface(evaluator_for(result), w, directions, coords, key, "2D surface")
    if values is None:
        return
    loss = values[:, 0].reshape(resolution, resolution)
    st.altair_chart(surface_chart(a, b, loss, paths={"trained weights": np.zeros((1, 2))},
                                  axis_titles=("filter-normalised direction 1", "filter-normalised direction 2")),
                    width="content")
    st.caption("Each direction is random but rescaled filter by filter to the size of the trained weights, so "
               "surfaces of different networks can be compared. Wide dark basins generalise better than narrow "
               "ones; red cells are where the loss overflowed.")
    with st.expander("3D view"):
        st.plotly_chart(surface_3d(a, b, loss), width="stretch")


def view_path() -> None:
    if len(result.snapshots) < 3:
        st.warning("This model has too few weight snapshots for a path; train it for at least two epochs.")
        return
    resolution = st.select_slider("Resolution", [11, 21, 31, 41, 51], value=21, key="ll_path_res")
    plane = shared_pca_plane([result.snapshots])
    path = project(plane, result.snapshots)
    a_range, b_range = path_range(path)
    a, b, coords = grid_coords(a_range, b_range, resolution)
    key = (result.config.key(), split, samples, "path", resolution)
    values = surface(evaluator_for(result), plane.origin, plane.directions, coords, key, "Path plane")
    if values is None:
        return
    loss = values[:, 0].reshape(resolution, resolution)
    titles = tuple(f"PC{i + 1} ({plane.explained[i]:.0%} of the path's variance)" for i in range(2))
    st.altair_chart(surface_chart(a, b, loss, paths={"training path": path}, axis_titles=titles,
                                  title="Training path on its own PCA plane"), width="content")
    st.caption(f"The two directions along which the weights varied most explain {sum(plane.explained):.0%} of the "
               "path's variance (Li et al.'s PCA of every snapshot minus the trained weights). The plane passes "
               "through the trained weights at (0, 0); the white square is the starting point; each dot is one "
               "snapshot (epoch).")


def view_optimisers() -> None:
    chosen = st.multiselect("Optimisers (2-4)", list(OPTIMIZERS), default=["sgd", "momentum", "adam"],
                            max_selections=4, key="ll_opts")
    if len(chosen) < 2:
        st.warning("Pick at least two optimisers.")
        return
    cols = st.columns(len(chosen))
    rates = {name: col.select_slider(f"{name} learning rate", [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
                                     value=0.1 if name in ("sgd", "momentum", "nesterov") else 0.01,
                                     key=f"ll_lr_{name}") for name, col in zip(chosen, cols, strict=True)}
    configs = [result.config.replace(optimizer=n, learning_rate=rates[n], optimizer_options=()) for n in chosen]
    trained_paths = train_together(configs, label="Training with each optimiser")
    if trained_paths is None:
        return
    plane = shared_pca_plane([r.snapshots for r in trained_paths])
    paths = {f"{r.config.optimizer} (lr {r.config.learning_rate:g})": project(plane, r.snapshots)
             for r in trained_paths}
    a_range, b_range = path_range(np.vstack(list(paths.values())))
    resolution = st.select_slider("Resolution", [11, 21, 31, 41], value=21, key="ll_opt_res")
    a, b, coords = grid_coords(a_range, b_range, resolution)
    key = tuple(c.key() for c in configs) + (split, samples, "opts", resolution)
    values = surface(evaluator_for(trained_paths[0]), plane.origin, plane.directions, coords, key, "Shared plane")
    if values is None:
        return
    st.altair_chart(surface_chart(a, b, values[:, 0].reshape(resolution, resolution), paths=paths,
                                  axis_titles=tuple(f"PC{i + 1} ({plane.explained[i]:.0%})" for i in range(2)),
                                  title="Optimisers from the same start, on one shared plane"), width="content")
    st.caption("All runs start from the same weights (the white square) and see the same batches; only the "
               "optimiser differs. The plane is the PCA plane of all their snapshots together, through the first "
               "run's trained weights at (0, 0).")
    st.dataframe(pd.DataFrame([{"optimiser": name, "final train loss": r.history.train_loss[-1],
                                "final test accuracy": r.history.test_acc[-1], "status": r.status}
                               for name, r in zip(paths, trained_paths, strict=True)]), hide_index=True)


def view_sharpness() -> None:
    st.caption("The Hessian's eigenvalues are the loss's curvatures along its principal directions at the trained "
               "weights. The top (most positive) one is the sharpness: how fast the slope steepens along the most "
               "sharply upward-curved direction. The bottom (most negative) one is how fast the loss bends down "
               "along the most downward-curved direction: a true minimum has none below zero. Their ratio "
               "|bottom / top| is Li et al.'s measure of non-convexity: near 0 the loss looks convex around the "
               "weights. Both come from Lanczos iterations on Hessian-vector products, never forming the Hessian. "
               "Small batches tend to find flatter minima.")
    iterations = st.slider("Lanczos steps (Hessian-vector products)", 5, 100, 30, 5, key="ll_iters")
    rows = []
    for r in trained:
        key = ("hessian_extremes", r.config.key(), split, samples, iterations)
        if not memoised(key) and r is not result:
            continue
        with st.spinner(f"Lanczos iterations for {run_label(r)}..."):
            ends = memo(key, lambda r=r: hessian_extremes(loss_function(evaluator_for(r)), r.snapshots[-1],
                                                          iterations))
        rows.append({"model": run_label(r), "batch size": r.config.batch_size, "learning rate": r.config.learning_rate,
                     "top eigenvalue (sharpness)": ends.top, "bottom eigenvalue (most negative)": ends.bottom,
                     "|bottom / top| (non-convexity)": ends.ratio, "test accuracy": r.history.test_acc[-1]})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Each model you pick above is added to this table. Train the same model with batch 8 and batch 512 "
               "in the sidebar to compare their sharpness.")


def view_race() -> None:
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
    key = ("race", name, tuple(chosen), steps, x0, y0, lr)
    paths = memo(key, lambda: race(name, {o: (o, lr) for o in chosen}, (x0, y0), steps))
    shown = st.slider("Show steps", 0, steps, steps, key="ll_race_show")
    xs, ys, f = function_grid(name)
    f = f - float(f.min()) + 1.0  # log(1 + f - min f): positive, and the valley floor stays visible
    chart_paths = {o: finite_path(p)[: shown + 1, :2] for o, p in paths.items()}
    st.altair_chart(surface_chart(xs, ys, f, paths=chart_paths, axis_titles=("x", "y"),
                                  title=f"{name}: {spec.formula}", clip_factor=None), width="content")
    st.dataframe(pd.DataFrame(race_table(paths)), hide_index=True)
    st.caption(f"Known minimum at {', '.join(str(m) for m in spec.minima)}. The optimisers are Keras' own, stepped "
               "on exact gradients; drag 'Show steps' to replay the race. An optimiser whose steps overflowed is "
               "drawn and listed up to its last finite point.")


{
    "1D interpolation": view_interpolation,
    "2D surface": view_surface,
    "Training path": view_path,
    "Optimisers compared": view_optimisers,
    "Sharpness": view_sharpness,
    "Optimiser race": view_race,
}[view]()
