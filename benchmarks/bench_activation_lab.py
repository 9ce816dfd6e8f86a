"""Four activations trained side by side vs four separate runs (engine and plain model.fit)."""

from __future__ import annotations

from benchmarks.bench_engine import CONFIG, plain_fit
from benchmarks.common import Row, best_of
from models.datasets import load_dataset
from models.engine import train, train_many

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")


def run() -> list[Row]:
    data = load_dataset(CONFIG)
    configs = [CONFIG.replace(activation=a) for a in ACTIVATIONS]
    together = best_of(lambda: train_many(configs, data))
    engine_runs = best_of(lambda: [train(c, data) for c in configs])
    fit_runs = best_of(lambda: [plain_fit(c, validate=False) for c in configs])
    return [
        Row("activation lab: 4 activations", "4 plain model.fit runs", fit_runs, together, 5.0),
        Row("activation lab: 4 activations", "4 separate engine runs", engine_runs, together, 0.8,
            "target: about the time of four engine runs"),
    ]
