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


# -- the batched surface (models/surface_kernels.py) against the point-by-point path and Keras itself ------

def _sequential_cnn():
    """An 'uploaded' Sequential CNN with layers the dashboard's builder does not use (Flatten after the convs,
    average pooling, a conv's own activation, a dense layer's batch norm), trained briefly on digits."""
    from models.datasets import load_dataset

    data = load_dataset(ExperimentConfig(dataset="digits", n_samples=300))
    model = tf.keras.Sequential([
        tf.keras.Input(shape=data.input_shape),
        tf.keras.layers.Conv2D(5, 3, padding="same", activation="tanh"),
        tf.keras.layers.AveragePooling2D(2),
        tf.keras.layers.Conv2D(6, 2, padding="valid", use_bias=False),
        tf.keras.layers.BatchNormalization(),
        tf.keras.layers.ReLU(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(12),
        tf.keras.layers.BatchNormalization(),
        tf.keras.layers.Activation("elu"),
        tf.keras.layers.Dropout(0.3),
        tf.keras.layers.Dense(data.n_classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=2, batch_size=32, verbose=0)
    return model, data


SURFACE_MODELS = {
    "cnn with batch norm": ExperimentConfig(dataset="digits", n_samples=300, architecture="cnn", conv_filters=(4, 6),
                                            hidden_layers=(12,), batch_norm=True, activation="relu", epochs=2,
                                            batch_size=32, learning_rate=0.01),
    "digits mlp": ExperimentConfig(dataset="digits", n_samples=300, architecture="mlp", hidden_layers=(32, 16),
                                   activation="relu", dropout=0.2, epochs=2, batch_size=32, learning_rate=0.01),
    "playground with input features": ExperimentConfig(n_samples=200, epochs=10, hidden_layers=(6, 4),
                                                       input_features=("x1", "x2", "x1^2", "x1*x2", "sin(x2)")),
    "playground mse loss": ExperimentConfig(n_samples=200, epochs=10, loss="mse", activation="relu"),
    "sequential cnn": None,
    "residual cnn": None,
    "branching mlp": None,
}


def _residual_cnn():
    """A functional CNN with identity skips (the Architectures page's kind of model) and a skip that starts
    at the first conv's pooled output, trained briefly on digits."""
    from models.datasets import load_dataset

    data = load_dataset(ExperimentConfig(dataset="digits", n_samples=300))
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=data.input_shape)
    x = layers.MaxPooling2D(2)(layers.Activation("relu")(layers.BatchNormalization()(
        layers.Conv2D(6, 3, padding="same", use_bias=False)(inputs))))
    for _ in range(2):
        branch = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(6, 3, padding="same")(x)))
        branch = layers.Conv2D(6, 3, padding="same", activation="relu")(branch)
        x = layers.Add()([x, branch])
    outputs = layers.Dense(data.n_classes, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    model = tf.keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=2, batch_size=32, verbose=0)
    return model, data


def _branching_mlp():
    """A functional MLP on 2D points whose hidden layer feeds two dense layers that are added, one of them
    also given the raw input through a second skip."""
    from models.datasets import load_dataset

    data = load_dataset(ExperimentConfig(n_samples=200))
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=(2,))
    hidden = layers.Dense(6, activation="tanh")(inputs)
    merged = layers.Add()([layers.Dense(2)(hidden), layers.Dense(2, activation="tanh")(hidden), inputs])
    model = tf.keras.Model(inputs, layers.Dense(data.n_classes, activation="softmax")(merged))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=5, batch_size=16, verbose=0)
    return model, data


_HAND_BUILT = {"sequential cnn": _sequential_cnn, "residual cnn": _residual_cnn, "branching mlp": _branching_mlp}


@pytest.fixture(scope="module", params=list(SURFACE_MODELS))
def surface_case(request):
    """(model, x, y, loss name, classes, flat weights, two directions) of one kind of model."""
    config = SURFACE_MODELS[request.param]
    if config is None:
        model, data = _HAND_BUILT[request.param]()
        loss, weights = "cross_entropy", np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    else:
        r = train(config)
        model, data, loss, weights = r.model, r.dataset, config.loss, r.snapshots[-1]
    x, y = data.x_train[:96], data.y_train[:96]
    rng = np.random.default_rng(3)
    directions = np.stack([random_direction(model, weights, rng) for _ in range(2)])
    return model, x, y, loss, data.n_classes, weights, directions


def _keras_evaluate(model, x, y, loss, flat):
    """Reference: the model's own weights set to `flat`, and Keras' evaluate (the original weights are put back)."""
    from models.engine import set_flat_weights

    before = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    model.compile(loss="sparse_categorical_crossentropy" if loss == "cross_entropy" else None, metrics=["accuracy"])
    if loss != "cross_entropy":  # the dashboard's squared error against one-hot labels
        n_classes = model.output_shape[-1]
        def squared_error(t, p):
            return tf.reduce_mean(tf.square(tf.one_hot(tf.cast(tf.reshape(t, (-1,)), tf.int32), n_classes) - p), -1)

        model.compile(loss=squared_error, metrics=["accuracy"])
    set_flat_weights(model, flat)
    try:
        return model.evaluate(x, y, batch_size=len(x), verbose=0)
    finally:
        set_flat_weights(model, before)


def test_batched_surface_equals_point_by_point_and_keras(surface_case):
    """Reference: the point-by-point path (stateless_call per point), and at the centre and the four corners
    Keras' own evaluate with the weights set (`set_weights` + `evaluate`)."""
    model, x, y, loss, n_classes, w, d = surface_case
    batched = SurfaceEvaluator(model, x, y, loss, n_classes)
    reference = SurfaceEvaluator(model, x, y, loss, n_classes, batched=False)
    assert batched.fast and not reference.fast, batched.fallback_reason
    _, _, coords = grid_coords((-1, 1), (-1, 1), 5)
    fast, slow = batched.evaluate(w, d, coords), reference.evaluate(w, d, coords)
    assert np.allclose(fast[:, 0], slow[:, 0], rtol=1e-4, atol=0), np.abs(fast[:, 0] / slow[:, 0] - 1).max()
    assert np.allclose(fast[:, 1], slow[:, 1], atol=1e-6)
    assert np.ptp(fast[:, 0]) > 1e-3 * fast[:, 0].max()  # a surface, not a constant
    for i in (12, 0, 4, 20, 24):  # the centre and the corners of the 5x5 grid
        keras_loss, keras_acc = _keras_evaluate(model, x, y, loss, w + coords[i] @ d)
        assert fast[i, 0] == pytest.approx(keras_loss, rel=1e-4), i
        assert fast[i, 1] == pytest.approx(keras_acc, abs=1e-6), i


def test_chunking_does_not_change_the_surface(surface_case):
    """A memory budget that forces many small chunks (and a padded last one) gives the same surface as one
    chunk, and as the point-by-point path."""
    model, x, y, loss, n_classes, w, d = surface_case
    _, _, coords = grid_coords((-0.5, 1), (-1, 0.5), 7)
    one = SurfaceEvaluator(model, x, y, loss, n_classes, memory_budget=2**40)
    many = SurfaceEvaluator(model, x, y, loss, n_classes, memory_budget=5 * one.batched.bytes_per_point())
    assert one.points_per_chunk() >= len(coords) and many.points_per_chunk() == 5
    chunks = list(many.iter_chunks(w, d, coords))
    assert [len(c) for c in chunks] == [5] * 9 + [4]  # 49 points: ten chunks of 5, the last padded
    assert np.allclose(np.concatenate(chunks), one.evaluate(w, d, coords), rtol=1e-6, atol=1e-7)
    assert np.allclose(many.evaluate(w, d, coords, chunk=3), one.evaluate(w, d, coords), rtol=1e-6, atol=1e-7)


def test_one_direction_and_the_origin_alone(surface_case):
    """A 1D interpolation (one direction) and a single point: the same as point by point."""
    model, x, y, loss, n_classes, w, d = surface_case
    batched = SurfaceEvaluator(model, x, y, loss, n_classes)
    reference = SurfaceEvaluator(model, x, y, loss, n_classes, batched=False)
    alphas = np.linspace(-1, 2, 9, dtype="float32")[:, None]
    assert np.allclose(batched.evaluate(w, d[:1], alphas), reference.evaluate(w, d[:1], alphas), rtol=1e-4)
    zero = np.zeros((1, 1), "float32")
    assert np.allclose(batched.evaluate(w, d[:1] * 0, zero), reference.evaluate(w, d[:1] * 0, zero), rtol=1e-4)


def test_unsupported_models_fall_back_to_the_point_by_point_path():
    """A layer without a batched version (layer normalisation): the evaluator runs the model point by point,
    and its values still equal Keras' evaluate."""
    inputs = tf.keras.Input(shape=(2,))
    hidden = tf.keras.layers.LayerNormalization()(tf.keras.layers.Dense(6, activation="tanh")(inputs))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3, activation="softmax")(hidden))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 2)).astype("float32"), rng.integers(0, 3, 40).astype("int32")
    evaluator = SurfaceEvaluator(model, x, y, "cross_entropy", 3)
    assert not evaluator.fast and "LayerNormalization" in evaluator.fallback_reason
    w = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    d = np.stack([random_direction(model, w, rng) for _ in range(2)])
    values = evaluator.evaluate(w, d, np.array([[0, 0], [1, -1]], "float32"))
    for i, point in enumerate(([0, 0], [1, -1])):
        keras_loss, keras_acc = _keras_evaluate(model, x, y, "cross_entropy", w + np.asarray(point, "float32") @ d)
        assert values[i, 0] == pytest.approx(keras_loss, rel=1e-4) and values[i, 1] == pytest.approx(keras_acc)


def test_the_fast_path_covers_every_model_the_dashboard_builds(cnn_result):
    """The builder's layer kinds (conv, batch norm, pooling, global pooling, dense, dropout, PlaneFeatures) all
    have a batched version."""
    import models.config
    from models.builders import build_model
    from models.recipes import DEFAULT_CNN

    configs = [DEFAULT_CNN, cnn_result.config.replace(dropout=0.3, hidden_layers=(8,)),
               ExperimentConfig(hidden_layers=(4, 4), dropout=0.1, input_features=("x1", "x2", "sin(x1)")),
               ExperimentConfig(dataset="digits", architecture="mlp", hidden_layers=(16,), l2=0.01)]
    if "resnet" in getattr(models.config, "ARCHITECTURES", ()):  # CNNs with identity skips
        configs.append(cnn_result.config.replace(architecture="resnet", conv_filters=(4, 4, 4), batch_norm=True))
    for config in configs:
        shape = (32, 32, 3) if config.dataset == "shapes" else (8, 8, 1) if config.dataset == "digits" else (2,)
        if config.architecture == "mlp" and config.dataset == "digits":
            shape = (8, 8, 1)
        model = build_model(config, shape, 3)
        x = np.zeros((4, *shape), "float32")
        assert SurfaceEvaluator(model, x, np.zeros(4, "int32"), "cross_entropy", 3).fast, config


@pytest.mark.parametrize("classes", [3, 10, 40])  # unrolled over the classes up to 32, reductions above
def test_fused_cross_entropy_equals_keras(classes):
    """Reference: Keras' SparseCategoricalCrossentropy on the softmax of the logits (it takes the logits from
    the softmax, unclipped) and argmax accuracy; ties go to the first class, as argmax's do."""
    from models.surface_kernels import cross_entropy_and_accuracy

    rng = np.random.default_rng(classes)
    logits = (rng.standard_normal((4, 50, classes)) * np.array([1, 5, 40, 0])[:, None, None]).astype("float32")
    labels = rng.integers(0, classes, 50).astype("int32")
    got = cross_entropy_and_accuracy(tf.constant(logits), tf.constant(labels)).numpy()
    keras_loss = tf.keras.losses.SparseCategoricalCrossentropy(reduction=None)
    # in a graph, as the evaluator runs it (eagerly Keras cannot find the logits and clips the probabilities)
    reference = tf.function(lambda z: tf.reduce_mean(keras_loss(labels, tf.keras.activations.softmax(z))))
    for p in range(4):
        assert got[p, 0] == pytest.approx(float(reference(tf.constant(logits[p]))), rel=1e-5)
        assert got[p, 1] == pytest.approx(np.mean(np.argmax(logits[p], axis=1) == labels), abs=1e-7)
    assert got[3, 1] == pytest.approx(np.mean(labels == 0))  # all logits equal: every argmax is class 0
