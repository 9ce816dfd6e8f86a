"""Do skip connections smooth the loss landscape? Li et al. (2018), Fig. 5 and its eigenvalue-ratio maps, at
small scale: a deep plain CNN against the same CNN with identity skips.

The surfaces come from models/landscape.py (filter-normalised directions, `SurfaceEvaluator`). The convexity
map needs both ends of the Hessian's spectrum at every point of a grid: `landscape.hessian_extremes` compiles
a fresh Hessian-vector product for each weight vector, which on a grid costs more in tracing than in maths,
so here one compiled product takes the weights as an argument and serves the whole grid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from models.config import ExperimentConfig
from models.landscape import SurfaceEvaluator, loss_function

# The pair the page compares: 9 conv layers of 16 filters on the digits (a stem and four blocks for the
# residual one), batch norm in both as in Li et al.'s ResNet-56 and ResNet-56-noshort.
DEEP_PLAIN = ExperimentConfig(
    dataset="digits", n_samples=1797, noise=0.0, train_fraction=0.8, architecture="cnn", conv_filters=(16,) * 9,
    hidden_layers=(), kernel_size=3, batch_norm=True, activation="relu", optimizer="adam", learning_rate=3e-3,
    lr_schedule="warmup_cosine", batch_size=32, epochs=20,
)
DEEP_RESIDUAL = DEEP_PLAIN.replace(architecture="resnet")
RATIO_THRESHOLD = 0.1  # Li et al.'s maps saturate around here; above it a point is called "clearly non-convex"


class HessianProbe:
    """Hessian-vector products of a loss of flat weights, compiled once for any weights and direction."""

    def __init__(self, loss_of_flat: Callable[[tf.Tensor], tf.Tensor]):
        self._loss = loss_of_flat
        self._hvp = tf.function(self._product, reduce_retracing=True)

    def _product(self, w, v):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(w)
                loss = self._loss(w)
            directional = tf.reduce_sum(inner.gradient(loss, w) * v)
        return outer.gradient(directional, w)

    def product(self, weights: np.ndarray, v: np.ndarray) -> np.ndarray:
        """H(weights) @ v."""
        return self._hvp(tf.constant(weights, tf.float32), tf.constant(v, tf.float32)).numpy()

    def extremes(self, weights: np.ndarray, iterations: int = 20, seed: int = 0) -> tuple[float, float]:
        """(top, bottom) Hessian eigenvalues at `weights`: Lanczos with full reorthogonalisation on
        `iterations` products, as `landscape.hessian_extremes` (exact once `iterations` >= the weight count)."""
        steps = min(iterations, weights.size)
        basis = np.zeros((steps, weights.size), "float32")
        v = np.random.default_rng(seed).standard_normal(weights.size)
        basis[0] = v / np.linalg.norm(v)
        alphas, betas = [], []  # the tridiagonal projection of H on the Krylov basis
        for k in range(steps):
            w = self.product(weights, basis[k])
            alphas.append(float(w @ basis[k]))
            for _ in range(2):  # float32 products lose orthogonality without reorthogonalising twice
                w -= basis[: k + 1].T @ (basis[: k + 1] @ w)
            beta = float(np.linalg.norm(w))
            if k + 1 == steps or beta <= 1e-6 * np.max(np.abs(alphas)):
                break
            betas.append(beta)
            basis[k + 1] = w / beta
        ritz = np.linalg.eigvalsh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1))
        return float(ritz[-1]), float(ritz[0])


def curvature_ratio(top: float, bottom: float) -> float:
    """Li et al.'s |lambda_min / lambda_max|: 0 where no direction curves down (locally convex); inf where
    nothing curves up."""
    if bottom >= 0:
        return 0.0
    return abs(bottom) / top if top > 0 else float("inf")


@dataclass(frozen=True)
class ConvexityMap:
    """Both ends of the Hessian's spectrum on a grid of a 2D slice."""

    coords: np.ndarray  # (K, 2) grid points (a, b)
    top: np.ndarray  # (K,) largest eigenvalue
    bottom: np.ndarray  # (K,) smallest eigenvalue
    threshold: float

    @property
    def ratio(self) -> np.ndarray:
        return np.array([curvature_ratio(t, b) for t, b in zip(self.top, self.bottom, strict=True)])

    @property
    def non_convex_share(self) -> float:
        """Share of grid points whose ratio exceeds the threshold."""
        return float(np.mean(self.ratio > self.threshold))


def convexity_points(evaluator: SurfaceEvaluator, origin: np.ndarray, directions: np.ndarray, coords: np.ndarray,
                     iterations: int = 20) -> Iterator[tuple[float, float]]:
    """(top, bottom) eigenvalues at origin + coords @ directions, one grid point at a time."""
    probe = HessianProbe(loss_function(evaluator))
    for k, point in enumerate(np.asarray(coords, "float32")):
        yield probe.extremes(origin + point @ directions, iterations, seed=k)


def convexity_map(evaluator: SurfaceEvaluator, origin: np.ndarray, directions: np.ndarray, coords: np.ndarray,
                  iterations: int = 20, threshold: float = RATIO_THRESHOLD) -> ConvexityMap:
    """`convexity_points` collected into a map (for tests and the benchmark; the page shows progress)."""
    pairs = np.array(list(convexity_points(evaluator, origin, directions, coords, iterations)))
    return ConvexityMap(np.asarray(coords), pairs[:, 0], pairs[:, 1], threshold)
