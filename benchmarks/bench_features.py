"""Activation maximisation of all filters of a layer at once vs one filter at a time, same steps."""

from __future__ import annotations

from benchmarks.common import Row, best_of
from models.config import ExperimentConfig
from models.engine import train
from models.maximise import AscentConfig, maximise_filters

CONFIG = ExperimentConfig(dataset="shapes", n_samples=600, noise=0.0, architecture="cnn", conv_filters=(16, 32, 32),
                          hidden_layers=(), activation="relu", epochs=3, batch_size=32, learning_rate=0.003)
LAYER, FILTERS = "conv_3", list(range(16))
ASCENT = AscentConfig(steps=64)


def run() -> list[Row]:
    model = train(CONFIG).model
    batched = best_of(lambda: maximise_filters(model, LAYER, FILTERS, ASCENT))
    single = best_of(lambda: [maximise_filters(model, LAYER, [f], ASCENT) for f in FILTERS])
    return [Row(f"activation max.: {len(FILTERS)} filters of {LAYER}", "one filter at a time, same steps", single,
                batched, 3.0)]
