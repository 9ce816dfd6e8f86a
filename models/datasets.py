"""Datasets, deterministic by seed and offline: the Playground's 2D problems, digits and shapes.

Every loader returns a `Dataset` with a fixed train/test split, so two runs with the same config
see exactly the same samples in the same order. The 2D problems are classification (a class per
point) or, as the Playground's "plane" and "multi_gaussian", regression (a number per point); an
uploaded CSV table is either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.config import ConfigError, ExperimentConfig
from models.keras_datasets import DatasetUnavailable, load_keras_dataset
from models.shapes import SHAPE_CLASSES, make_shapes

# The Playground draws points in [-6, 6]; dividing by this keeps inputs near [-1, 1] for training.
_PLAYGROUND_SCALE = 6.0

POINT_CLASS_NAMES = {
    "circle": ("outer ring", "inner disc"),
    "xor": ("odd quadrants", "even quadrants"),
    "gaussians": ("lower-left blob", "upper-right blob"),
    "spiral": ("arm A", "arm B"),
    "moons": ("upper moon", "lower moon"),
}

# The Playground's multi-gaussian target: bumps at (x, y) with a sign, in its [-6, 6] units. Each bump
# falls linearly from its sign at the centre to 0 at distance 2; a point takes the bump largest in |value|.
_BUMPS = ((-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0), (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0))
_BUMP_RADIUS = 2.0


@dataclass(frozen=True)
class Dataset:
    """A train/test split ready for Keras."""

    name: str  # dataset key, as in ExperimentConfig.dataset
    x_train: np.ndarray  # (N, 2) points or (N, H, W, C) images in [0, 1], float32
    y_train: np.ndarray  # (N,) int32 class indices, or float32 targets for regression
    x_test: np.ndarray  # same layout as x_train
    y_test: np.ndarray  # (M,) int32, or float32 targets for regression
    class_names: tuple[str, ...]  # human name of each class index; () for regression
    masks_train: np.ndarray | None = None  # (N, H, W) bool object masks, shapes dataset only
    masks_test: np.ndarray | None = None  # (M, H, W) bool
    task: str = "classification"  # or "regression"
    feature_names: tuple[str, str] = ("x1", "x2")  # names of the two input columns of 2D points

    @property
    def n_classes(self) -> int:
        """Number of classes; 0 for regression (the model then has one linear output)."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4


def load_dataset(config: ExperimentConfig) -> Dataset:
    """The dataset the config names, split by `config.train_fraction` with `config.seed`.

    Raises:
        DatasetUnavailable: a keras.datasets set is neither cached nor downloadable, or an uploaded CSV
            table is no longer in memory.
        ConfigError: the config's `csv_task` is not the uploaded table's task.
    """
    rng = np.random.default_rng(config.seed)
    if config.dataset in POINT_CLASS_NAMES:
        x, y = make_points(config.dataset, config.n_samples, config.noise, rng)
        return _split(config, x, y, POINT_CLASS_NAMES[config.dataset], rng)
    if config.dataset in _TARGET_MAKERS:
        x, y = make_targets(config.dataset, config.n_samples, config.noise, rng)
        return _split(config, x, y, (), rng)
    if config.dataset == "csv":
        return _uploaded(config, rng)
    if config.dataset == "digits":
        from sklearn.datasets import load_digits  # here: the 2D problems need no scikit-learn loaders

        bunch = load_digits()
        x = (bunch.images / 16.0).astype("float32")[..., None]  # (N, 8, 8, 1)
        x, y = _subsample(x, bunch.target.astype("int32"), config.n_samples, rng)
        return _split(config, x, y, tuple(str(d) for d in range(10)), rng)
    if config.dataset == "shapes":
        x, y, masks = make_shapes(config.n_samples, config.noise, rng)
        return _split(config, x, y, SHAPE_CLASSES, rng, masks)
    x, y, names = load_keras_dataset(config.dataset)
    x, y = _subsample(x, y, config.n_samples, rng)
    return _split(config, x, y, names, rng)


def make_points(name: str, n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One of the Playground's 2D problems (plus moons), scaled to about [-1, 1].

    Returns:
        x: (n, 2) float32 points; y: (n,) int32 labels in {0, 1}, half of each.
    """
    makers = {"circle": _circle, "xor": _xor, "gaussians": _gaussians, "spiral": _spiral, "moons": _moons}
    if name not in makers:
        raise ValueError(f"Unknown 2D dataset {name!r}; choose one of {', '.join(makers)}.")
    x, y = makers[name](n, noise, rng)
    order = rng.permutation(len(y))
    return x[order].astype("float32"), y[order].astype("int32")


def _circle(n, noise, rng):
    radius = 5.0
    halves = (n // 2, n - n // 2)
    xs, ys = [], []
    for label, (r_lo, r_hi), count in ((1, (0.0, 0.5), halves[0]), (0, (0.7, 1.0), halves[1])):
        r = rng.uniform(r_lo * radius, r_hi * radius, count)
        angle = rng.uniform(0, 2 * np.pi, count)
        pts = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
        # As in the Playground, noise moves the point that decides the label, not the drawn point.
        jitter = rng.uniform(-radius, radius, (count, 2)) * noise
        labels = (np.linalg.norm(pts + jitter, axis=1) < radius * 0.6).astype(int) if noise else np.full(count, label)
        xs.append(pts)
        ys.append(labels)
    return np.concatenate(xs) / _PLAYGROUND_SCALE, np.concatenate(ys)


def _xor(n, noise, rng):
    pts = rng.uniform(-5, 5, (n, 2))
    pts += np.where(pts > 0, 0.3, -0.3)  # keep points off the axes, as the Playground does
    jitter = rng.uniform(-5, 5, (n, 2)) * noise
    shifted = pts + jitter
    labels = (shifted[:, 0] * shifted[:, 1] >= 0).astype(int)
    return pts / _PLAYGROUND_SCALE, labels


def _gaussians(n, noise, rng):
    std = np.sqrt(0.5 + 3.5 * noise / 0.5)  # variance grows from 0.5 to 4 as noise goes 0 -> 0.5
    halves = (n // 2, n - n // 2)
    a = rng.normal((-2, -2), std, (halves[0], 2))
    b = rng.normal((2, 2), std, (halves[1], 2))
    return np.concatenate([a, b]) / _PLAYGROUND_SCALE, np.repeat([0, 1], halves)


def _spiral(n, noise, rng):
    halves = (n // 2, n - n // 2)
    xs = []
    for delta, count in ((0.0, halves[0]), (np.pi, halves[1])):
        i = np.arange(count)
        r = i / count * 5
        t = 1.75 * i / count * 2 * np.pi + delta
        pts = np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + rng.uniform(-1, 1, (count, 2)) * noise
        xs.append(pts)
    return np.concatenate(xs) / _PLAYGROUND_SCALE, np.repeat([0, 1], halves)


def _moons(n, noise, rng):
    from sklearn.datasets import make_moons  # here: the other 2D problems need no scikit-learn loaders

    x, y = make_moons(n, noise=noise * 0.5, random_state=int(rng.integers(2**31 - 1)))
    x = (x - np.array([0.5, 0.25])) / 1.6  # centre the pair of moons and fit them in about [-1, 1]
    return x, y


def make_targets(name: str, n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One of the Playground's 2D regression problems, points scaled to about [-1, 1].

    As in the Playground, points are uniform over its [-6, 6] square and noise moves the point the
    target is computed at (by up to `noise` times the square's half-width on each axis), not the point.

    Returns:
        x: (n, 2) float32 points; y: (n,) float32 targets, in [-1, 1] ("plane" reaches +-1.2 in the corners,
        as in the Playground).
    """
    if name not in _TARGET_MAKERS:
        raise ValueError(f"Unknown 2D regression dataset {name!r}; choose one of {', '.join(_TARGET_MAKERS)}.")
    pts = rng.uniform(-_PLAYGROUND_SCALE, _PLAYGROUND_SCALE, (n, 2))
    moved = pts + rng.uniform(-_PLAYGROUND_SCALE, _PLAYGROUND_SCALE, (n, 2)) * noise
    return (pts / _PLAYGROUND_SCALE).astype("float32"), _TARGET_MAKERS[name](moved).astype("float32")


def _plane_target(pts):
    return (pts[:, 0] + pts[:, 1]) / 10.0  # the Playground maps x + y over [-10, 10] to [-1, 1]


def _bumps_target(pts):
    centres, signs = np.array([b[:2] for b in _BUMPS]), np.array([b[2] for b in _BUMPS])
    dist = np.linalg.norm(pts[:, None, :] - centres[None], axis=-1)  # (n, bumps)
    values = signs * np.clip(1.0 - dist / _BUMP_RADIUS, 0.0, 1.0)  # (n, bumps)
    return values[np.arange(len(pts)), np.argmax(np.abs(values), axis=1)]


_TARGET_MAKERS = {"plane": _plane_target, "multi_gaussian": _bumps_target}


def _uploaded(config: ExperimentConfig, rng: np.random.Generator) -> Dataset:
    from models.csv_data import lookup  # the upload store; imported here so the built-in sets never need it

    table = lookup(config.data_id)
    if table is None:
        raise DatasetUnavailable("The uploaded CSV table this run was trained on is no longer in memory; "
                                 "upload it again.")
    if table.task != config.task:
        raise ConfigError(f"csv_task: the uploaded table {table.target_name!r} is a {table.task} table; "
                          f"got csv_task {config.csv_task!r}.")
    return _split(config, table.x, table.y, table.class_names, rng, task=table.task,
                  feature_names=tuple(table.feature_names))


def _subsample(x, y, n, rng):
    if n >= len(y):
        return x, y
    keep = np.sort(rng.choice(len(y), n, replace=False))
    return x[keep], y[keep]


def _split(config, x, y, class_names, rng, masks=None, task=None, feature_names=("x1", "x2")) -> Dataset:
    task = task or config.task
    order = rng.permutation(len(y))
    n_train = int(round(config.train_fraction * len(y)))
    tr, te = order[:n_train], order[n_train:]
    y_type = "float32" if task == "regression" else "int32"
    return Dataset(
        name=config.dataset,
        x_train=x[tr].astype("float32"),
        y_train=y[tr].astype(y_type),
        x_test=x[te].astype("float32"),
        y_test=y[te].astype(y_type),
        class_names=tuple(class_names),
        masks_train=None if masks is None else masks[tr],
        masks_test=None if masks is None else masks[te],
        task=task,
        feature_names=feature_names,
    )
