"""Learning curves: test accuracy against the number of training images, for two architectures.

Every size trains on a prefix of one seeded, class-interleaved order of the training images, so the
subsets are nested (the 100 images are among the 200) and stratified (each class's share within one image
of the full set's); all sizes are scored on the same held-out test set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from models.config import ExperimentConfig
from models.datasets import Dataset
from models.engine import train_many

MIN_STEPS = 300  # gradient steps every size gets at least: tiny subsets train for many epochs
MAX_EPOCHS = 150  # ... but not without end
MIN_EPOCHS = 10  # large subsets: passes over the data at least
MONITOR_TEST = 200  # test images scored after each epoch while training (the final score uses all of them)


@dataclass(frozen=True)
class CurvePoint:
    """One trained model of the curve."""

    label: str  # which architecture
    size: int  # training images
    seed: int  # subset order and initial weights
    test_acc: float  # on the whole test set, 0..1
    epochs: int


def sizes_between(low: int, high: int, count: int) -> list[int]:
    """`count` training-set sizes spaced evenly on a log scale from `low` to `high`, rounded, distinct."""
    return sorted({int(round(s)) for s in np.geomspace(low, high, count)})


def nested_order(y: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of range(len(y)) whose every prefix is stratified by class.

    The j-th of a class's n_c images (in a seeded shuffle) is placed at fraction (j + 0.5) / n_c of the order,
    so any prefix holds each class in proportion, within one image.
    """
    rng = np.random.default_rng(seed)
    position = np.empty(len(y))
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.lexsort((y, position))  # ties (equal class sizes) broken by class index


def subset(dataset: Dataset, order: np.ndarray, size: int) -> Dataset:
    """The first `size` training images of `order`; the test set is cut to MONITOR_TEST for per-epoch scores."""
    keep = order[:size]
    return replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep],
                   x_test=dataset.x_test[:MONITOR_TEST], y_test=dataset.y_test[:MONITOR_TEST],
                   masks_train=None, masks_test=None)


def epochs_for(size: int, batch_size: int) -> int:
    """At least MIN_STEPS steps and MIN_EPOCHS passes, at most MAX_EPOCHS passes."""
    steps_per_epoch = math.ceil(size / batch_size)
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))))


def training_images(sizes: list[int], batch_size: int) -> int:
    """Images passed through training over one seed's sizes (for the time estimate)."""
    return sum(size * epochs_for(size, batch_size) for size in sizes)


def run_curves(configs: dict[str, ExperimentConfig], dataset: Dataset, sizes: list[int],
               seeds: tuple[int, ...]) -> Iterator[CurvePoint]:
    """Train every architecture of `configs` (label -> config) at every size and seed; yields each score.

    The architectures of one size and seed train together on the same subset and mini-batches.
    """
    for seed in seeds:
        order = nested_order(dataset.y_train, seed)
        for size in sizes:
            data = subset(dataset, order, size)
            epochs = epochs_for(size, next(iter(configs.values())).batch_size)
            runs = [c.replace(seed=seed, epochs=epochs) for c in configs.values()]
            for label, result in zip(configs, train_many(runs, data), strict=True):
                probs = result.model.predict(dataset.x_test, batch_size=256, verbose=0)
                acc = float(np.mean(np.argmax(probs, axis=1) == dataset.y_test))
                yield CurvePoint(label, size, seed, acc, epochs)


def crossover(sizes: list[int], leader: np.ndarray, other: np.ndarray) -> float | None:
    """The training-set size from which `leader`'s mean accuracy stays above `other`'s, interpolated on the log
    size axis between the last size where it was not ahead and the first where it was; `sizes[0]` if it led
    throughout, None if it is not ahead at the largest size.
    """
    ahead = np.asarray(leader) > np.asarray(other)
    if not ahead[-1]:
        return None
    first = len(ahead) - int(np.argmin(ahead[::-1])) if not ahead.all() else 0
    if first == 0:
        return float(sizes[0])
    gap_before, gap_after = other[first - 1] - leader[first - 1], leader[first] - other[first]
    share = gap_before / (gap_before + gap_after) if gap_before + gap_after > 0 else 0.0
    return float(np.exp(np.log(sizes[first - 1]) + share * (np.log(sizes[first]) - np.log(sizes[first - 1]))))
