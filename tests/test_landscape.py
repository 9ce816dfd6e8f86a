import numpy as np
import pytest
import tensorflow as tf

from models.config import ExperimentConfig
from models.engine import per_sample_loss, split_flat, train, weight_shapes
from models.landscape import (
    SurfaceEvaluator,
    grid_coords,
    loss_function,
    path_range,
    pca_plane,
    project,
    random_direction,
    shared_pca_plane,
    top_hessian_eigenvalue,
)


@pytest.fixture(scope="module")
def cnn_result():
    c = ExperimentConfig(dataset="digits", n_samples=400, architecture="cnn", conv_filters=(4, 6), hidden_layers=(),
                         activation="relu", epochs=3, batch_size=32, learning_rate=0.01)
    return train(c)


def _evaluator(r, n=128):
    return SurfaceEvaluator(r.model, r.dataset.x_train[:n], r.dataset.y_train[:n], r.config.loss,
                            r.dataset.n_classes)


def test_surface_at_origin_equals_the_models_own_loss(cnn_result):
    r, ev = cnn_result, _evaluator(cnn_result)
    x, y = r.dataset.x_train[:128], r.dataset.y_train[:128]
    own = float(np.mean(per_sample_loss("cross_entropy", 10)(y, r.model(x))))
    r.model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_loss, keras_acc = r.model.evaluate(x, y, verbose=0, batch_size=128)
    w = r.snapshots[-1]
    d = np.stack([random_direction(r.model, w, np.random.default_rng(i)) for i in range(2)])
    a, b, coords = grid_coords((-1, 1), (-1, 1), 5)
    values = ev.evaluate(w, d, coords, chunk=7)  # chunks that do not divide the grid
    centre = values[12]  # (0, 0) is the middle of a 5x5 grid
    assert centre[0] == pytest.approx(own, rel=1e-5) and centre[0] == pytest.approx(keras_loss, rel=1e-4)
    assert centre[1] == pytest.approx(keras_acc, abs=1e-6)
    assert values[0, 0] > centre[0]  # moving away from the trained weights costs loss


def test_interpolation_ends_equal_initial_and_final_losses(cnn_result):
    r, ev = cnn_result, _evaluator(cnn_result)
    start, end = r.initial_weights, r.snapshots[-1]
    values = ev.evaluate(start, (end - start)[None, :], np.array([[0.0], [1.0]], dtype="float32"))
    x, y = r.dataset.x_train[:128], r.dataset.y_train[:128]
    final = float(np.mean(per_sample_loss("cross_entropy", 10)(y, r.model(x))))
    from models.builders import build_model

    fresh = build_model(r.config, r.dataset.input_shape, 10)
    initial = float(np.mean(per_sample_loss("cross_entropy", 10)(y, fresh(x))))
    assert values[0, 0] == pytest.approx(initial, rel=1e-5)
    assert values[1, 0] == pytest.approx(final, rel=1e-5)


def test_filter_normalised_direction_matches_each_filters_norm(cnn_result):
    r = cnn_result
    w = r.snapshots[-1]
    d = random_direction(r.model, w, np.random.default_rng(0))
    for wi, di in zip(split_flat(w, weight_shapes(r.model)), split_flat(d, weight_shapes(r.model)), strict=True):
        if wi.ndim == 1:
            assert np.all(di == 0)  # biases are not moved
        else:
            axes = tuple(range(wi.ndim - 1))
            w_norms = np.sqrt((wi**2).sum(axis=axes))
            d_norms = np.sqrt((di**2).sum(axis=axes))
            assert np.allclose(d_norms, w_norms, rtol=1e-4)


def test_hessian_power_iteration_on_a_known_quadratic():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    eigenvalues = np.array([7.5, 3.0, 1.0, 0.5, -0.2, 0.1])
    a = tf.constant((q * eigenvalues) @ q.T, tf.float32)

    def quadratic(w):
        return 0.5 * tf.reduce_sum(w * tf.linalg.matvec(a, w))

    top = top_hessian_eigenvalue(quadratic, rng.standard_normal(6).astype("float32"), iterations=200)
    assert top == pytest.approx(7.5, rel=1e-3)


def test_hessian_of_a_trained_model_is_positive_and_finite(cnn_result):
    value = top_hessian_eigenvalue(loss_function(_evaluator(cnn_result, 64)), cnn_result.snapshots[-1], 10)
    assert np.isfinite(value) and value > 0


def test_pca_plane_of_a_straight_path():
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(20)
    direction /= np.linalg.norm(direction)
    start = rng.standard_normal(20)
    snapshots = [start + t * direction for t in (0.0, 0.5, 1.5, 3.0)]
    plane = pca_plane(snapshots, snapshots[0])
    assert plane.explained[0] == pytest.approx(1.0) and plane.explained[1] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(np.abs(plane.path[:, 0]), [0, 0.5, 1.5, 3.0], atol=1e-5)
    assert np.allclose(project(plane, snapshots), plane.path, atol=1e-5)


def test_shared_plane_starts_every_path_at_the_origin():
    rng = np.random.default_rng(1)
    start = rng.standard_normal(10)
    paths = [[start, start + rng.standard_normal(10), start + rng.standard_normal(10)] for _ in range(3)]
    plane = shared_pca_plane(paths)
    for path in paths:
        assert np.allclose(project(plane, path)[0], 0)
    (a_lo, a_hi), (b_lo, b_hi) = path_range(np.vstack([project(plane, p) for p in paths]))
    assert a_lo < 0 < a_hi and b_lo < b_hi
