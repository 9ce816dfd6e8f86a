"""Loaders for the `keras.datasets` image sets, cache first and offline-safe.

A set already in the Keras cache (`$KERAS_HOME` or `~/.keras`, in the layout Keras itself writes) is
read from there without touching the network. Otherwise Keras downloads it; when that fails (no
network) the user gets `DatasetUnavailable` with what to do, never a raw URL error.
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class DatasetUnavailable(RuntimeError):
    """A keras.datasets set is not cached and could not be downloaded."""


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: `$KERAS_HOME/datasets`, by default `~/.keras/datasets`."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def load_keras_dataset(name: str, cache_dir: Path | None = None):
    """All images of a keras.datasets set, train and test joined, scaled to [0, 1].

    Args:
        name: "mnist", "fashion_mnist" or "cifar10".
        cache_dir: the Keras datasets cache to read; defaults to `keras_cache_dir()`.

    Returns:
        x (N, H, W, C) float32, y (N,) int32, class names.

    Raises:
        DatasetUnavailable: not cached and the download failed.
        ValueError: an unknown name.
    """
    readers = {"mnist": _read_mnist, "fashion_mnist": _read_fashion, "cifar10": _read_cifar10}
    if name not in readers:
        raise ValueError(f"Unknown keras dataset {name!r}; choose one of {', '.join(readers)}.")
    cache_dir = Path(cache_dir) if cache_dir is not None else keras_cache_dir()
    try:
        x, y, classes = readers[name](cache_dir)
    except FileNotFoundError:
        x, y, classes = _download(name)
    x = x.astype("float32") / 255.0
    if x.ndim == 3:
        x = x[..., None]
    return x, y.reshape(-1).astype("int32"), classes


def _read_mnist(cache_dir: Path):
    with np.load(cache_dir / "mnist.npz", allow_pickle=False) as f:
        x = np.concatenate([f["x_train"], f["x_test"]])
        y = np.concatenate([f["y_train"], f["y_test"]])
    return x, y, tuple(str(d) for d in range(10))


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def _read_fashion(cache_dir: Path):
    folder = cache_dir / "fashion-mnist"
    train_x, train_y, test_x, test_y = (folder / f for f in _FASHION_FILES)
    y = np.concatenate([_read_idx(train_y, 8), _read_idx(test_y, 8)])
    x = np.concatenate([_read_idx(train_x, 16), _read_idx(test_x, 16)]).reshape(len(y), 28, 28)
    return x, y, FASHION_CLASSES


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches (dicts of numpy arrays and lists) and refuses any other class."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")
        return super().find_class(module, name)


def _load_cifar_batch(path: Path):
    with open(path, "rb") as fh:
        batch = _ArraysOnlyUnpickler(fh, encoding="bytes").load()
    return np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"])


def _read_cifar10(cache_dir: Path):
    folder = cache_dir / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).exists() for n in names):
        raise FileNotFoundError(folder)
    parts = [_load_cifar_batch(folder / n) for n in names]
    x = np.concatenate([p[0] for p in parts]).transpose(0, 2, 3, 1)  # (N, 3, 32, 32) -> (N, 32, 32, 3)
    y = np.concatenate([p[1] for p in parts])
    return x, np.asarray(y), CIFAR10_CLASSES


def _download(name: str):
    import keras

    module = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as err:  # Keras raises a bare Exception for URL failures
        raise DatasetUnavailable(
            f"{name} is not in the Keras cache ({keras_cache_dir()}) and could not be downloaded "
            f"({type(err).__name__}). Connect to the internet once so Keras can cache it, or use the "
            "built-in digits or shapes datasets, which work offline."
        ) from err
    classes = {"mnist": tuple(str(d) for d in range(10)), "fashion_mnist": FASHION_CLASSES}.get(name, CIFAR10_CLASSES)
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), classes
