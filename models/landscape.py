"""Loss landscapes of a trained model: 1D interpolations, 2D filter-normalised surfaces, PCA planes
of training trajectories and the sharpest Hessian direction (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets").

Every landscape point is a weight vector origin + a * d1 + b * d2. `SurfaceEvaluator` evaluates a
whole chunk of points in one compiled call: the weights are built inside the graph, and the model runs
once for the whole chunk (`models.surface_kernels`: each layer batched over the points), or, for models
that path does not cover, once per point with `stateless_call`; no point pays for `set_weights` + `evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from sklearn.decomposition import PCA

from models.engine import per_sample_loss, split_flat, weight_shapes
from models.epoch_runner import accuracy
from models.surface_kernels import (
    BatchedForward,
    UnsupportedModel,
    cross_entropy_and_accuracy,
    flatten_points,
    softmax_logits,
)

MEMORY_BUDGET_BYTES = 512 * 2**20  # what one chunk of the batched surface evaluation may use
SMALLEST_CHUNK = 32  # points: fewer are padded up to this many (or to what the budget holds)


def filter_norms(w: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """L2 norm of each filter/neuron of a kernel, keeping dims so it broadcasts against `w`."""
    return np.sqrt(np.sum(np.square(w), axis=axes, keepdims=True))


def random_direction(model: keras.Model, weights: np.ndarray, rng: np.random.Generator,
                     filter_normalise: bool = True) -> np.ndarray:
    """A Gaussian direction in weight space, filter-normalised as in Li et al.

    Each filter (conv) or neuron (dense), i.e. each slice along a kernel's last axis, is rescaled to
    the norm of the matching slice of `weights`; 1-D parameters (biases) are zeroed.

    Returns:
        (P,) float32 direction, same layout as `weights`.
    """
    parts = []
    for w in split_flat(weights, weight_shapes(model)):
        d = rng.standard_normal(w.shape).astype("float32")
        if filter_normalise:
            if w.ndim < 2:
                d = np.zeros_like(d)
            else:
                axes = tuple(range(w.ndim - 1))  # every axis but the output-unit axis
                d *= filter_norms(w, axes) / (filter_norms(d, axes) + 1e-10)
        parts.append(d.ravel())
    return np.concatenate(parts).astype("float32")


class SurfaceEvaluator:
    """Loss and accuracy of `model`'s architecture at many weight vectors, on fixed data.

    Where `models.surface_kernels` covers the model's layers (every model the dashboard builds: MLPs, CNNs
    with batch norm, pooling and dropout, CNNs with identity skips, the Playground's `PlaneFeatures` input;
    see its docstring for the list), a chunk of points is one batched forward pass; other models (nested
    models, other layer types) run point by point with `stateless_call`. `fast` says which;
    `fallback_reason` why not, if not. `loss_and_accuracy` (one point, differentiable: the Hessian's) always
    runs the model itself.

    Args:
        memory_budget: bytes a chunk of the batched pass may use; the chunk size (points per call)
            follows from it and the model's largest activation.
        batched: False forces the point-by-point path (the reference the batched one is tested against).
    """

    def __init__(self, model: keras.Model, x: np.ndarray, y: np.ndarray, loss: str, n_classes: int,
                 memory_budget: int = MEMORY_BUDGET_BYTES, batched: bool = True):
        self.model, self.shapes = model, weight_shapes(model)
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.loss_fn = per_sample_loss(loss, n_classes)
        self.loss_name, self.n_classes = loss, n_classes
        self._non_trainable = [v.value for v in model.non_trainable_variables]
        self._evaluate = tf.function(self._chunk, reduce_retracing=True)
        self.memory_budget = memory_budget
        self.batched, self.fallback_reason = None, "switched off" if not batched else None
        if batched:
            try:
                self.batched = BatchedForward(model, x)
            except UnsupportedModel as why:
                self.fallback_reason = str(why)
        # (autograph off: the plan's Python loops are unrolled when tracing, and converting them is slow)
        self._evaluate_batched = tf.function(self._batched_chunk, autograph=False)
        self._prepare = tf.function(lambda origin, directions: self.batched.prepare(origin, directions),
                                    autograph=False)

    @property
    def fast(self) -> bool:
        """Whether chunks go through the batched forward pass."""
        return self.batched is not None

    def points_per_chunk(self, limit: int | None = None) -> int:
        """Points per compiled call: as many as the memory budget holds (batched) or 128 (point by point),
        at most `limit`."""
        most = max(1, self.memory_budget // self.batched.bytes_per_point()) if self.fast else 128
        return max(1, min(most, limit or most))

    def loss_and_accuracy(self, flat: tf.Tensor) -> tf.Tensor:
        """[mean loss, accuracy] of the model with flat weights `flat` (a tensor)."""
        probs, _ = self.model.stateless_call(split_flat(flat, self.shapes), self._non_trainable, self.x,
                                             training=False)
        return tf.stack([tf.reduce_mean(self.loss_fn(self.y, probs)), accuracy(probs, self.y)])

    def _chunk(self, origin, directions, coords):
        # origin (P,), directions (D, P), coords (K, D) -> (K, 2) [loss, accuracy]
        points = origin[None, :] + tf.matmul(coords, directions)  # (K, P)
        return tf.map_fn(self.loss_and_accuracy, points, fn_output_signature=tf.float32, parallel_iterations=4)

    def _batched_chunk(self, prepared, origin, directions, coords):
        outputs = self.batched.outputs(prepared, origin, directions, coords)  # (K, N, outputs)
        logits = softmax_logits(outputs)
        if logits is not None and self.loss_name == "cross_entropy" and self.n_classes and not self.y.dtype.is_floating:
            return cross_entropy_and_accuracy(logits, self.y)
        count, n = outputs.shape[0], outputs.shape[1]
        outputs, labels = flatten_points(outputs), tf.tile(self.y, [count])  # point-major (K * N, ...)
        losses = tf.reduce_mean(tf.reshape(self.loss_fn(labels, outputs), (count, n)), axis=1)
        if self.y.dtype.is_floating:
            hits = tf.fill((count,), float("nan"))
        else:
            correct = tf.equal(tf.argmax(outputs, axis=-1, output_type=tf.int32), labels)
            hits = tf.reduce_mean(tf.reshape(tf.cast(correct, tf.float32), (count, n)), axis=1)
        return tf.stack([losses, hits], axis=1)

    def evaluate(self, origin: np.ndarray, directions: np.ndarray, coords: np.ndarray,
                 chunk: int | None = None) -> np.ndarray:
        """Loss and accuracy at origin + coords @ directions; returns (K, 2)."""
        return np.concatenate(list(self.iter_chunks(origin, directions, coords, chunk)))

    def iter_chunks(self, origin, directions, coords, chunk: int | None = None) -> Iterator[np.ndarray]:
        """Like `evaluate`, one block of at most `points_per_chunk(chunk)` rows at a time so callers can
        report progress or stop."""
        origin = tf.constant(origin, tf.float32)
        directions = tf.constant(np.atleast_2d(directions), tf.float32)
        coords = np.asarray(coords, dtype="float32").reshape(len(coords), -1)
        size = self.points_per_chunk(chunk)
        if not len(coords):
            return
        if not self.fast:
            for start in range(0, len(coords), size):
                yield self._evaluate(origin, directions, tf.constant(coords[start : start + size])).numpy()
            return
        chunks = -(-len(coords) // size)
        # Equal chunks, the last one padded (with the origin) to the same size, and never fewer than
        # SMALLEST_CHUNK points where the budget allows: each chunk size is compiled once, and one point or
        # a few share that compiled size.
        size = min(size, max(-(-len(coords) // chunks), SMALLEST_CHUNK))
        prepared = self._prepare(origin, directions)
        for start in range(0, len(coords), size):
            block = coords[start : start + size]
            padded = np.zeros((size, coords.shape[1]), "float32")
            padded[: len(block)] = block
            yield self._evaluate_batched(prepared, origin, directions, tf.constant(padded)).numpy()[: len(block)]


@dataclass(frozen=True)
class Plane:
    """A 2D slice of weight space: origin + a * directions[0] + b * directions[1]."""

    origin: np.ndarray  # (P,)
    directions: np.ndarray  # (2, P)
    explained: tuple[float, float] | None = None  # PCA explained-variance ratio of each direction
    path: np.ndarray | None = None  # (T, 2) coordinates of a projected trajectory, if any


def grid_coords(a_range: tuple[float, float], b_range: tuple[float, float], resolution: int):
    """Axis values and the (R*R, 2) grid of (a, b) coordinates, row-major with b along rows."""
    a = np.linspace(*a_range, resolution, dtype="float32")
    b = np.linspace(*b_range, resolution, dtype="float32")
    ga, gb = np.meshgrid(a, b)
    return a, b, np.stack([ga.ravel(), gb.ravel()], axis=1)


def pca_plane(snapshots: list[np.ndarray], origin: np.ndarray) -> Plane:
    """The PCA plane of a training path around `origin` (the final weights), with the path on it.

    As in Li et al. (`setup_PCA_directions` and `project_trajectory` in their loss-landscape code): the
    directions are the first two principal components of the mean-centred deltas (snapshot - origin), the
    plane passes through `origin`, and the path's coordinates are the deltas' dot products with the two
    orthonormal directions, so `origin` itself sits at (0, 0).
    """
    deltas = np.stack(snapshots).astype("float64") - origin.astype("float64")[None, :]  # (T, P)
    components = min(2, *deltas.shape)
    with np.errstate(invalid="ignore", divide="ignore"):  # a path that never moved has no variance to share
        pca = PCA(n_components=components, svd_solver="full").fit(deltas)
    directions = np.zeros((2, deltas.shape[1]))
    directions[:components] = pca.components_  # a path with one snapshot spans no second direction
    explained = np.zeros(2)
    if np.isfinite(pca.explained_variance_ratio_).all():
        explained[:components] = pca.explained_variance_ratio_
    path = (deltas @ directions.T).astype("float32")  # (T, 2)
    return Plane(origin.astype("float32"), directions.astype("float32"), (float(explained[0]), float(explained[1])),
                 path)


def path_range(path: np.ndarray, margin: float = 0.25) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges that hold the whole path with `margin` (a share of its extent) around it."""
    lo, hi = path.min(axis=0), path.max(axis=0)
    pad = np.maximum((hi - lo) * margin, 1e-3)
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1]))


@dataclass(frozen=True)
class HessianExtremes:
    """Both ends of the Hessian's spectrum at some weights."""

    top: float  # most positive eigenvalue: the curvature along the sharpest upward direction
    bottom: float  # most negative eigenvalue (or the smallest, if none is negative): the steepest downward curve

    @property
    def ratio(self) -> float:
        """|bottom / top|, Li et al.'s measure of non-convexity: near 0 looks convex, large is far from it
        (infinite where no eigenvalue is positive)."""
        return abs(self.bottom / self.top) if self.top > 0 else float("inf")


def hessian_vector_product(loss_of_flat: Callable[[tf.Tensor], tf.Tensor],
                           weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """v -> H v at `weights`, by double backprop; the Hessian itself is never formed."""
    w = tf.constant(weights, tf.float32)

    @tf.function
    def hvp(v):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(w)
                loss = loss_of_flat(w)
            directional = tf.reduce_sum(inner.gradient(loss, w) * v)
        return outer.gradient(directional, w)

    return lambda v: hvp(tf.constant(v, tf.float32)).numpy()


def hessian_extremes(loss_of_flat: Callable[[tf.Tensor], tf.Tensor], weights: np.ndarray,
                     iterations: int = 30, seed: int = 0) -> HessianExtremes:
    """The most positive and most negative Hessian eigenvalues of `loss_of_flat` at `weights`.

    Lanczos with full reorthogonalisation: `iterations` Hessian-vector products span the Krylov space of a
    random vector, and the extreme eigenvalues of the Hessian restricted to that space approach both ends of
    the spectrum at once. Power iteration's iterates lie in the same space, so the top is at least as
    accurate as power iteration's for the same products, and the bottom needs no second, slowly converging
    shifted power iteration. With `iterations` >= the number of weights both are exact.
    """
    hvp = hessian_vector_product(loss_of_flat, weights)
    steps = min(iterations, weights.size)
    basis = np.zeros((steps, weights.size), "float32")  # orthonormal Lanczos vectors; float32 halves the memory
    v = np.random.default_rng(seed).standard_normal(weights.size)
    basis[0] = v / np.linalg.norm(v)
    alphas, betas = [], []  # the diagonal and off-diagonal of the Hessian projected on the basis
    for k in range(steps):
        w = hvp(basis[k])
        alphas.append(float(w @ basis[k]))
        for _ in range(2):  # full reorthogonalisation, twice: float32 products lose orthogonality otherwise
            w -= basis[: k + 1].T @ (basis[: k + 1] @ w)
        beta = float(np.linalg.norm(w))
        if k + 1 == steps or beta <= 1e-6 * np.max(np.abs(alphas)):
            break  # the budget is spent, or the Krylov space is exhausted and its eigenvalues are exact
        betas.append(beta)
        basis[k + 1] = w / beta
    projected = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    ritz = np.linalg.eigvalsh(projected)
    return HessianExtremes(top=float(ritz[-1]), bottom=float(ritz[0]))


def top_hessian_eigenvalue(loss_of_flat: Callable[[tf.Tensor], tf.Tensor], weights: np.ndarray,
                           iterations: int = 30, seed: int = 0) -> float:
    """Most positive Hessian eigenvalue (the sharpness) of `loss_of_flat` at `weights`; see `hessian_extremes`."""
    return hessian_extremes(loss_of_flat, weights, iterations, seed).top


def spaced_indices(count: int, most: int = 10) -> list[int]:
    """Indices of at most `most` of `count` items, evenly spread and always including the first and last."""
    if count <= most:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, most)})


def sharpness_over_training(loss_of_flat: Callable[[tf.Tensor], tf.Tensor], snapshots: list[np.ndarray],
                            most: int = 10, iterations: int = 30) -> Iterator[tuple[int, HessianExtremes]]:
    """Both ends of the Hessian's spectrum at up to `most` snapshots spread over training, the last included.

    Yields (snapshot index, extremes) one snapshot at a time, so a caller can show progress; each is
    `hessian_extremes` at that snapshot's weights, so the last equals the trained model's own.
    """
    for index in spaced_indices(len(snapshots), most):
        yield index, hessian_extremes(loss_of_flat, snapshots[index], iterations)


def project(plane: Plane, snapshots: list[np.ndarray]) -> np.ndarray:
    """Coordinates (T, 2) of weight vectors on an orthonormal plane (e.g. a PCA plane)."""
    return (np.stack(snapshots) - plane.origin[None, :]) @ plane.directions.T


def shared_pca_plane(paths: list[list[np.ndarray]]) -> Plane:
    """One PCA plane for several training paths that start from the same weights.

    The same definition as `pca_plane`, on every path's snapshots at once, around the first path's final
    weights: that run ends at (0, 0) and the shared start projects to one point for all of them.
    """
    return pca_plane([w for path in paths for w in path], paths[0][-1])


def loss_function(evaluator: SurfaceEvaluator) -> Callable[[tf.Tensor], tf.Tensor]:
    """The evaluator's mean loss as a function of the flat weights (for Hessian products)."""
    return lambda flat: evaluator.loss_and_accuracy(flat)[0]
