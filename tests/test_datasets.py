import gzip

import numpy as np
import pytest

from models.config import POINT_DATASETS, ExperimentConfig
from models.datasets import load_dataset, make_points
from models.keras_datasets import DatasetUnavailable, load_keras_dataset
from models.shapes import SHAPE_CLASSES, make_shapes


@pytest.mark.parametrize("name", POINT_DATASETS)
def test_points_shape_balance_and_range(name):
    x, y = make_points(name, 400, 0.0, np.random.default_rng(0))
    assert x.shape == (400, 2) and x.dtype == np.float32 and y.dtype == np.int32
    assert set(np.unique(y)) == {0, 1}
    assert 0.4 <= y.mean() <= 0.6  # balanced
    assert np.abs(x).max() <= 1.3


@pytest.mark.parametrize("name", POINT_DATASETS)
def test_points_are_deterministic_by_seed(name):
    a = make_points(name, 100, 0.2, np.random.default_rng(3))
    b = make_points(name, 100, 0.2, np.random.default_rng(3))
    c = make_points(name, 100, 0.2, np.random.default_rng(4))
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_clean_circle_labels_follow_the_radius():
    x, y = make_points("circle", 300, 0.0, np.random.default_rng(0))
    r = np.linalg.norm(x, axis=1)
    assert r[y == 1].max() < r[y == 0].min()


def test_clean_xor_labels_follow_the_quadrant():
    x, y = make_points("xor", 300, 0.0, np.random.default_rng(0))
    assert np.array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(int))


def test_split_respects_fraction_and_is_disjoint():
    d = load_dataset(ExperimentConfig(n_samples=200, train_fraction=0.7))
    assert len(d.y_train) == 140 and len(d.y_test) == 60
    train_rows = {tuple(r) for r in d.x_train}
    assert not any(tuple(r) in train_rows for r in d.x_test)


def test_digits_are_scikit_learns_8x8_scaled():
    d = load_dataset(ExperimentConfig(dataset="digits", n_samples=2000))
    assert d.input_shape == (8, 8, 1) and d.n_classes == 10
    assert len(d.y_train) + len(d.y_test) == 1797
    assert 0.0 <= d.x_train.min() and d.x_train.max() == 1.0
    assert np.bincount(d.y_train, minlength=10).min() > 50


def test_shapes_dataset_images_masks_and_balance():
    images, labels, masks = make_shapes(80, 0.0, np.random.default_rng(0))
    assert images.shape == (80, 32, 32, 3) and masks.shape == (80, 32, 32)
    assert np.bincount(labels, minlength=len(SHAPE_CLASSES)).tolist() == [20] * len(SHAPE_CLASSES)
    share = masks.mean(axis=(1, 2))
    assert 0.05 < share.min() and share.max() < 0.6  # the object is a clear part of the image
    for img, mask in zip(images[:10], masks[:10], strict=True):
        inside, outside = img[mask].mean(axis=0), img[~mask].mean(axis=0)
        assert np.abs(inside - outside).max() > 0.05  # the shape stands out from the background
    again = make_shapes(80, 0.0, np.random.default_rng(0))
    assert np.array_equal(images, again[0]) and np.array_equal(masks, again[2])


def test_shapes_split_keeps_masks_aligned():
    d = load_dataset(ExperimentConfig(dataset="shapes", n_samples=40, noise=0.0))
    assert d.masks_train.shape == d.x_train.shape[:3] and d.masks_test.shape == d.x_test.shape[:3]
    assert d.class_names == SHAPE_CLASSES


def _write_idx(path, array, header_len):
    with gzip.open(path, "wb") as fh:
        fh.write(b"\0" * header_len + array.astype(np.uint8).tobytes())


def test_cached_mnist_is_read_without_network(tmp_path):
    rng = np.random.default_rng(0)
    x_tr, x_te = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (4, 28, 28))
    np.savez(tmp_path / "mnist.npz", x_train=x_tr.astype(np.uint8), y_train=np.arange(6, dtype=np.uint8),
             x_test=x_te.astype(np.uint8), y_test=np.arange(4, dtype=np.uint8))
    x, y, names = load_keras_dataset("mnist", cache_dir=tmp_path)
    assert x.shape == (10, 28, 28, 1) and x.max() <= 1.0
    assert np.allclose(x[0, ..., 0], x_tr[0] / 255.0)
    assert y.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3] and names[3] == "3"


def test_cached_fashion_mnist_is_read_without_network(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte.gz", np.full((3, 28, 28), 255), 16)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.array([1, 2, 3]), 8)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)), 16)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([9, 0]), 8)
    x, y, names = load_keras_dataset("fashion_mnist", cache_dir=tmp_path)
    assert x.shape == (5, 28, 28, 1) and y.tolist() == [1, 2, 3, 9, 0]
    assert x[0].min() == 1.0 and x[4].max() == 0.0 and names[9] == "boot"


def test_cached_cifar10_is_read_without_network(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = {b"data": np.full((2, 3072), i, dtype=np.uint8), b"labels": [i, i]}
        (folder / name).write_bytes(pickle.dumps(batch))
    x, y, names = load_keras_dataset("cifar10", cache_dir=tmp_path)
    assert x.shape == (12, 32, 32, 3) and y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert names[0] == "airplane"


def test_offline_download_gives_clear_message(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/mnist.npz: None -- [Errno -3]")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetUnavailable, match="not in the Keras cache .* could not be downloaded"):
        load_keras_dataset("mnist", cache_dir=tmp_path)


def test_keras_set_through_load_dataset_subsamples(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    images = np.random.default_rng(1).integers(0, 256, (30, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=images[:20], y_train=np.arange(20, dtype=np.uint8) % 10,
             x_test=images[20:], y_test=np.arange(10, dtype=np.uint8))
    d = load_dataset(ExperimentConfig(dataset="mnist", n_samples=20, train_fraction=0.5))
    assert len(d.y_train) == 10 and len(d.y_test) == 10 and d.input_shape == (28, 28, 1)


def test_cifar_reader_refuses_pickled_code(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": print, b"labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        load_keras_dataset("cifar10", cache_dir=tmp_path)
