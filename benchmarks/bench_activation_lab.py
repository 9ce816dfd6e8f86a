"""Activation Lab: 4 and 6 activations trained side by side (one stacked model, models/stacked.py) vs the
same configs trained one after another by the engine, and vs plain model.fit runs.

The problem is the page's own default (pages/activation_lab.py DEFAULT: the Playground's default circle,
2 hidden layers of 8, Adam, 60 epochs of batch 10). Other sessions share this machine, so each figure is
the median of `REPEATS` runs, together and separate interleaved (in alternating order), after one warm-up
of each. Each timed call starts from a collected heap: a full garbage collection here takes ~0.5 s, as long
as a whole stacked run, and would otherwise land in whichever call happens to trigger it.
"""

from __future__ import annotations

import gc
import statistics
import time

from benchmarks.bench_engine import plain_fit
from benchmarks.common import Row, best_of
from models.config import ExperimentConfig
from models.datasets import load_dataset
from models.engine import train, train_many

CONFIG = ExperimentConfig(epochs=60)  # the Activation Lab's DEFAULT
SIX = ("relu", "tanh", "sigmoid", "gelu", "elu", "linear")
REPEATS = 5


def _seconds(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def together_vs_separate(n: int, data) -> tuple[float, float]:
    """Median seconds of `n` activations trained together and of the same configs trained one by one."""
    configs = [CONFIG.replace(activation=a) for a in SIX[:n]]
    together, separate = [], []
    for repeat in range(REPEATS):
        for which in (("together", "separate") if repeat % 2 == 0 else ("separate", "together")):
            if which == "together":
                together.append(_seconds(lambda: train_many(configs, data)))
            else:
                separate.append(_seconds(lambda: [train(c, data) for c in configs]))
    return statistics.median(together), statistics.median(separate)


def run() -> list[Row]:
    data = load_dataset(CONFIG)
    warm = [CONFIG.replace(activation=a, epochs=1) for a in SIX]  # first traces, lazily loaded TF kernels
    train_many(warm, data)
    [train(c, data) for c in warm]
    rows = []
    for n, target in ((4, 2.0), (6, 2.5)):
        together, separate = together_vs_separate(n, data)
        rows.append(Row(f"activation lab: {n} activations together", f"{n} separate engine runs", separate,
                        together, target, f"median of {REPEATS}; the page's default problem, 60 epochs"))
        if n == 4:
            fit = best_of(lambda: [plain_fit(CONFIG.replace(activation=a), validate=False) for a in SIX[:4]])
            rows.append(Row("activation lab: 4 activations together", "4 plain model.fit runs", fit, together, 5.0,
                            "fit: one run each, no per-epoch evaluation"))
    return rows
