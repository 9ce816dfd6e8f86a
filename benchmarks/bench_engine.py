"""Engine vs plain `model.fit` on the default Playground problem, same steps, same data."""

from __future__ import annotations

import keras

from benchmarks.common import Row, best_of
from models.builders import build_model
from models.config import ExperimentConfig
from models.datasets import load_dataset
from models.engine import train
from models.registry import make_optimizer

# The default problem: 500 circle points (250 train), 2 hidden layers of 8, 100 epochs of batch 10.
CONFIG = ExperimentConfig()


def plain_fit(config: ExperimentConfig, validate: bool) -> None:
    data = load_dataset(config)
    model = build_model(config, data.input_shape, data.n_classes)
    model.compile(make_optimizer(config.optimizer, config.learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=config.batch_size, epochs=config.epochs, verbose=0,
              validation_data=(data.x_test, data.y_test) if validate else None)


def run() -> list[Row]:
    data = load_dataset(CONFIG)
    ours = best_of(lambda: train(CONFIG, data), repeats=2)
    fit = best_of(lambda: plain_fit(CONFIG, validate=False))
    fit_val = best_of(lambda: plain_fit(CONFIG, validate=True))
    keras.backend.clear_session()
    return [
        Row("engine: default 2D problem", "model.fit, no per-epoch test eval", fit, ours, 5.0,
            "ours also evaluates train+test, grad norms, snapshots each epoch"),
        Row("engine: default 2D problem", "model.fit with validation_data", fit_val, ours, 5.0),
    ]
