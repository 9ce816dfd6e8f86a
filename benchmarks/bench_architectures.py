"""Architectures page: the first visit's default comparison (4 architectures on shapes) against issue 16's budget
of 60 s, and the convexity map's one compiled Hessian-vector product against `landscape.hessian_extremes`, which
compiles one per grid point.

The comparison is timed as the page runs it, from loading the data to the four trained networks, for seeds 0-2;
the note lists each architecture's test accuracy and parameters, so a change that buys speed with accuracy shows.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Row, best_of
from models.architectures import DEFAULT_BASE, contenders
from models.datasets import load_dataset
from models.engine import train_many
from models.landscape import SurfaceEvaluator, grid_coords, hessian_extremes, loss_function, random_direction
from models.skip_landscape import DEEP_PLAIN, convexity_map

BUDGET_S = 60.0  # issue 16: the default comparison in at most 60 s on this machine
SEEDS = (0, 1, 2)


def default_comparison(seed: int) -> tuple[float, list[str]]:
    """Seconds from data to four trained networks, and "kind acc% (params)" for each."""
    start = time.perf_counter()
    base = DEFAULT_BASE.replace(seed=seed)
    data = load_dataset(base)
    kinds = contenders(base, 3, 16, 1, None, data.input_shape, data.n_classes)
    results = train_many([k.config for k in kinds], data)
    seconds = time.perf_counter() - start
    return seconds, [f"{k.kind} {r.history.test_acc[-1]:.1%} ({r.model.count_params():,})"
                     for k, r in zip(kinds, results, strict=True)]


def convexity_grid(grid: int = 3, iterations: int = 10) -> tuple[float, float]:
    """(per-point landscape.hessian_extremes, one compiled product) seconds for a grid x grid map."""
    config = DEEP_PLAIN.replace(epochs=1)
    r = train_many([config])[0]
    evaluator = SurfaceEvaluator(r.model, r.dataset.x_train[:256], r.dataset.y_train[:256], r.config.loss,
                                 r.dataset.n_classes)
    origin = r.snapshots[-1]
    rng = np.random.default_rng(0)
    directions = np.stack([random_direction(r.model, origin, rng) for _ in range(2)])
    _, _, coords = grid_coords((-1, 1), (-1, 1), grid)
    loss = loss_function(evaluator)
    baseline = best_of(lambda: [hessian_extremes(loss, origin + c @ directions, iterations) for c in coords])
    ours = best_of(lambda: convexity_map(evaluator, origin, directions, coords, iterations))
    return baseline, ours


def run() -> list[Row]:
    default_comparison(0)  # warm-up: TensorFlow's kernels and the shapes generator's first call
    timed = [default_comparison(seed) for seed in SEEDS]
    worst = max(t for t, _ in timed)
    note = " | ".join(f"seed {s}: {t:.1f} s, " + ", ".join(figures) for s, (t, figures) in zip(SEEDS, timed,
                                                                                                 strict=True))
    baseline, ours = convexity_grid()
    return [
        Row("Architectures: default comparison (4 on shapes)", "issue 16's budget", BUDGET_S, worst, 1.0, note,
            budget_ok=worst <= BUDGET_S),
        Row("Architectures: 3x3 convexity map, 9-layer CNN", "hessian_extremes per point", baseline, ours, 1.5),
    ]


if __name__ == "__main__":
    from benchmarks.common import print_table

    print_table(run())
