"""A 51x51 loss surface of the digits CNN on 512 samples: batched evaluation vs the naive loop."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks.common import Row, best_of
from models.config import ExperimentConfig
from models.engine import set_flat_weights, train
from models.landscape import SurfaceEvaluator, grid_coords, random_direction

CONFIG = ExperimentConfig(dataset="digits", n_samples=1797, architecture="cnn", conv_filters=(8, 16), hidden_layers=(),
                          activation="relu", epochs=3, batch_size=32, learning_rate=0.01)
SAMPLES, RESOLUTION, NAIVE_ROWS = 512, 51, 2


def forward_flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of one sample's forward pass through the conv and dense layers."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            flops += 2 * kh * kw * layer.input.shape[-1] * c_out * h * w
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return flops


def matmul_peak_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured float32 matrix-multiply throughput of this machine through TensorFlow."""
    a = tf.random.normal((n, n))
    matmul = tf.function(lambda m: tf.matmul(m, m))
    matmul(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a)
    result.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def run() -> list[Row]:
    result = train(CONFIG)
    x, y = result.dataset.x_train[:SAMPLES], result.dataset.y_train[:SAMPLES]
    w = result.snapshots[-1]
    rng = np.random.default_rng(0)
    directions = np.stack([random_direction(result.model, w, rng) for _ in range(2)])
    _, _, coords = grid_coords((-1, 1), (-1, 1), RESOLUTION)

    evaluator = SurfaceEvaluator(result.model, x, y, "cross_entropy", 10)
    evaluator.evaluate(w, directions, coords[:8])  # compile outside the timing, as the page does once
    ours = best_of(lambda: evaluator.evaluate(w, directions, coords))

    model = result.model
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    sample = coords[: NAIVE_ROWS * RESOLUTION]

    def naive():
        for point in sample:
            set_flat_weights(model, w + point @ directions)
            model.evaluate(x, y, batch_size=SAMPLES, verbose=0)

    naive_s = best_of(naive) * len(coords) / len(sample)
    set_flat_weights(model, w)
    gflops = forward_flops(model) * SAMPLES * len(coords) / ours / 1e9
    peak = matmul_peak_gflops()
    return [Row("loss surface 51x51, digits CNN, 512 samples", f"set_weights+evaluate ({NAIVE_ROWS} rows, scaled)",
                naive_s, ours, 10.0, f"{gflops:.1f} GFLOP/s = {gflops / peak:.0%} of measured matmul peak "
                f"{peak:.0f} GFLOP/s")]
