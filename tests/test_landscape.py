import numpy as np
import pytest
import tensorflow as tf
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from models.config import ExperimentConfig
from models.engine import per_sample_loss, split_flat, train, train_many, weight_shapes
from models.landscape import (
    SurfaceEvaluator,
    grid_coords,
    hessian_extremes,
    loss_function,
    path_range,
    pca_plane,
    project,
    random_direction,
    shared_pca_plane,
    sharpness_over_training,
    spaced_indices,
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


def _quadratic_with_eigenvalues(eigenvalues, seed=0):
    """0.5 w^T A w with A = Q diag(eigenvalues) Q^T for a random rotation Q: its Hessian's spectrum is known."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues), len(eigenvalues))))
    a = tf.constant((q * np.asarray(eigenvalues)) @ q.T, tf.float32)
    return lambda w: 0.5 * tf.reduce_sum(w * tf.linalg.matvec(a, w))


def test_hessian_extremes_on_a_known_quadratic():
    """Reference: the eigenvalues the quadratic was built from."""
    quadratic = _quadratic_with_eigenvalues([7.5, 3.0, 1.0, 0.5, -0.2, 0.1])
    ends = hessian_extremes(quadratic, np.random.default_rng(1).standard_normal(6).astype("float32"))
    assert ends.top == pytest.approx(7.5, rel=1e-4) and ends.bottom == pytest.approx(-0.2, rel=1e-3)
    assert ends.ratio == pytest.approx(0.2 / 7.5, rel=1e-3)


def test_top_eigenvalue_is_the_most_positive_even_at_a_saddle_that_curves_down_harder():
    """Reference: the quadratic's own eigenvalues; the largest in magnitude, -9, is not the top."""
    quadratic = _quadratic_with_eigenvalues([-9.0, 4.0, 1.0, 0.5, -0.2, 0.1])
    w = np.random.default_rng(1).standard_normal(6).astype("float32")
    assert top_hessian_eigenvalue(quadratic, w) == pytest.approx(4.0, rel=1e-4)
    assert hessian_extremes(quadratic, w).bottom == pytest.approx(-9.0, rel=1e-4)


def _mlp_loss_float64(flat, shapes, x, y):
    """The circle MLP written out by hand in float64: tanh hidden layers, softmax output, mean cross-entropy."""
    parts = split_flat(flat, shapes)
    h = tf.constant(x, tf.float64)
    for kernel, bias in zip(parts[0:-2:2], parts[1:-2:2], strict=True):
        h = tf.tanh(h @ kernel + bias)
    logits = h @ parts[-2] + parts[-1]
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y, tf.int64), logits))


def _full_hessian_eigenvalues(r, weights):
    """The MLP's float64 training loss at `weights` and every eigenvalue of its full Hessian, ascending."""
    x, y, shapes = r.dataset.x_train, r.dataset.y_train, weight_shapes(r.model)
    w64 = tf.constant(weights.astype("float64"))
    with tf.GradientTape() as outer:
        outer.watch(w64)
        with tf.GradientTape() as inner:
            inner.watch(w64)
            loss = _mlp_loss_float64(w64, shapes, x, y)
        grad = inner.gradient(loss, w64)
    hessian = outer.jacobian(grad, w64).numpy()
    return loss, np.linalg.eigvalsh((hessian + hessian.T) / 2)


@pytest.mark.parametrize("moment", ["untrained", "trained"])
def test_hessian_extremes_match_the_full_float64_hessian(mlp_runs, moment):
    """Reference: the full Hessian of a hand-written float64 copy of the 114-weight MLP's loss
    (tf.GradientTape jacobian of the gradient) and numpy.linalg.eigvalsh. 30 products < 114 weights, so the
    estimate is not exact by construction."""
    r = mlp_runs[0]
    x, y = r.dataset.x_train, r.dataset.y_train
    weights = r.snapshots[0 if moment == "untrained" else -1]
    loss, eigenvalues = _full_hessian_eigenvalues(r, weights)
    evaluator = SurfaceEvaluator(r.model, x, y, r.config.loss, r.dataset.n_classes)
    assert float(evaluator.loss_and_accuracy(tf.constant(weights))[0]) == pytest.approx(float(loss), rel=1e-5)
    # a clearly negative direction to find (|min / max| is 0.07-0.13 untrained, 0.035-0.06 trained, over seeds)
    assert eigenvalues[0] < -(0.05 if moment == "untrained" else 0.01) * eigenvalues[-1]
    ends = hessian_extremes(loss_function(evaluator), weights, iterations=30)
    assert ends.top == pytest.approx(eigenvalues[-1], rel=1e-3)  # measured agreement: ~1e-7
    assert ends.bottom == pytest.approx(eigenvalues[0], rel=1e-3)
    assert ends.ratio == pytest.approx(abs(eigenvalues[0] / eigenvalues[-1]), rel=2e-3)


def test_spaced_indices_keep_both_ends():
    assert spaced_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = spaced_indices(101, 10)
    assert len(picked) == 10 and picked[0] == 0 and picked[-1] == 100 and picked == sorted(set(picked))


def test_sharpness_over_training_matches_the_full_hessian_at_each_snapshot(mlp_runs):
    """Reference: numpy's eigvalsh of the full float64 Hessian (as above) at each chosen snapshot, and at the
    last snapshot the trained model's own `hessian_extremes`, which the page's per-model chart shows."""
    r = mlp_runs[0]
    evaluator = SurfaceEvaluator(r.model, r.dataset.x_train, r.dataset.y_train, r.config.loss, r.dataset.n_classes)
    points = list(sharpness_over_training(loss_function(evaluator), r.snapshots, most=4, iterations=30))
    assert [i for i, _ in points] == spaced_indices(len(r.snapshots), 4) and points[-1][0] == len(r.snapshots) - 1
    for index, ends in points:
        _, eigenvalues = _full_hessian_eigenvalues(r, r.snapshots[index])
        assert ends.top == pytest.approx(eigenvalues[-1], rel=1e-3), index
        assert ends.bottom == pytest.approx(eigenvalues[0], rel=1e-3, abs=1e-6), index
    final = hessian_extremes(loss_function(evaluator), r.snapshots[-1], iterations=30)
    assert points[-1][1] == final


def test_hessian_of_a_trained_model_is_positive_and_finite(cnn_result):
    value = top_hessian_eigenvalue(loss_function(_evaluator(cnn_result, 64)), cnn_result.snapshots[-1], 10)
    assert np.isfinite(value) and value > 0


def test_pca_plane_of_a_straight_path():
    """Reference: a straight path has one principal direction, and its points lie at their signed distances
    from the final point along it."""
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(20)
    direction /= np.linalg.norm(direction)
    start = rng.standard_normal(20)
    snapshots = [start + t * direction for t in (0.0, 0.5, 1.5, 3.0)]
    plane = pca_plane(snapshots, snapshots[-1])
    assert plane.explained[0] == pytest.approx(1.0) and plane.explained[1] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(np.abs(plane.path[:, 0]), [3.0, 2.5, 1.5, 0], atol=1e-5)
    assert np.allclose(project(plane, snapshots), plane.path, atol=1e-5)


def test_shared_plane_puts_the_shared_start_at_one_point():
    rng = np.random.default_rng(1)
    start = rng.standard_normal(10)
    paths = [[start, start + rng.standard_normal(10), start + rng.standard_normal(10)] for _ in range(3)]
    plane = shared_pca_plane(paths)
    starts = [project(plane, path)[0] for path in paths]
    assert np.allclose(starts, starts[0], atol=1e-5) and np.allclose(project(plane, paths[0])[-1], 0, atol=1e-6)
    (a_lo, a_hi), (b_lo, b_hi) = path_range(np.vstack([project(plane, p) for p in paths]))
    assert a_lo < 0 < a_hi and b_lo < b_hi


def test_pca_plane_of_a_path_that_never_moved_is_flat_not_nan():
    w = np.ones(5, "float32")
    plane = pca_plane([w, w, w], w)
    assert plane.explained == (0.0, 0.0) and np.all(plane.path == 0)


@pytest.fixture(scope="module")
def mlp_runs():
    """Three tiny circle MLPs (114 weights) from the same start, one optimiser each, 10 epochs."""
    base = ExperimentConfig(n_samples=200, epochs=10)
    return train_many([base.replace(optimizer=o, learning_rate=lr)
                       for o, lr in (("adam", 0.03), ("sgd", 0.1), ("momentum", 0.03))])


def _reference_pca(snapshots: np.ndarray, origin: np.ndarray):
    """Li et al.'s trajectory plane (tomgoldstein/loss-landscape, projection.py: setup_PCA_directions and
    project_trajectory): scikit-learn's PCA of (snapshot - final weights), and the path as the dot products
    of (snapshot - final weights) with the two unit directions."""
    deltas = snapshots.astype("float64") - origin.astype("float64")
    pca = PCA(n_components=2, svd_solver="full").fit(deltas)
    return pca, deltas @ pca.components_.T


def _assert_same_plane(plane, reference, reference_path):
    angles = np.degrees(subspace_angles(plane.directions.T.astype("float64"), reference.components_.T))
    assert angles.max() < 0.01, f"principal angles {angles} degrees"
    assert np.allclose(plane.explained, reference.explained_variance_ratio_, atol=1e-4), plane.explained
    signs = np.sign(np.sum(plane.directions * reference.components_, axis=1))  # a PC's sign is arbitrary
    scale = np.abs(reference_path).max()
    error = np.abs(plane.path - reference_path * signs).max() / scale
    assert error < 1e-4, f"path differs by {error:.3g} of its extent"


def test_training_path_plane_is_li_et_al_pca(mlp_runs):
    """Reference: scikit-learn's PCA as Li et al. use it, and independently of scikit-learn, numpy's eigh of
    the covariance matrix of the centred deltas (float64)."""
    snapshots = mlp_runs[0].snapshots
    plane = shared_pca_plane([snapshots])
    stacked = np.stack(snapshots)
    reference, reference_path = _reference_pca(stacked, stacked[-1])
    _assert_same_plane(plane, reference, reference_path)
    assert np.array_equal(plane.origin, stacked[-1]) and np.allclose(plane.path[-1], 0, atol=1e-6)
    covariance_eigenvalues = np.linalg.eigvalsh(np.cov(stacked.astype("float64"), rowvar=False))[::-1]
    assert np.allclose(plane.explained, covariance_eigenvalues[:2] / covariance_eigenvalues.sum(), atol=1e-4)
    assert np.allclose(project(plane, snapshots), plane.path, atol=1e-5)


def test_shared_plane_is_the_pca_of_every_run_around_the_first_runs_end(mlp_runs):
    """Reference: scikit-learn's PCA of all runs' snapshots minus the first run's final weights (the origin
    whose surface the page draws), as in Li et al.'s setup_PCA_directions."""
    paths = [r.snapshots for r in mlp_runs]
    plane = shared_pca_plane(paths)
    reference, reference_path = _reference_pca(np.vstack([np.stack(p) for p in paths]), paths[0][-1])
    _assert_same_plane(plane, reference, reference_path)
    starts = [project(plane, p)[0] for p in paths]
    assert np.allclose(starts, starts[0], atol=1e-5)  # the runs share their initial weights
    assert np.allclose(project(plane, paths[0])[-1], 0, atol=1e-6)
