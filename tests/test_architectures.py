"""Oracles for the Architectures page's models: hand parameter counts, identity residual blocks, equal-budget
widths, nested stratified learning-curve subsets and the convexity map's eigenvalues."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.architectures import (
    DEFAULT_BASE,
    contenders,
    conv_width_for,
    depth_width_ladder,
    mlp_width_for,
    param_count,
)
from models.builders import build_model, weight_layers
from models.config import ConfigError, ExperimentConfig
from models.datasets import load_dataset
from models.engine import train
from models.landscape import SurfaceEvaluator, loss_function, random_direction
from models.learning_curves import crossover, epochs_for, nested_order, run_curves, sizes_between
from models.skip_landscape import HessianProbe, convexity_map, curvature_ratio

SHAPES, DIGITS = ((32, 32, 3), 4), ((8, 8, 1), 10)


def _hand_count(c, input_shape, n_classes):
    """Written out for the two-layer cases below, independently of `param_count`'s loop."""
    h, w, ch = input_shape
    if c.architecture == "mlp":
        (u,) = c.hidden_layers
        return (h * w * ch * u + u) + (u * n_classes + n_classes)
    f, k = c.conv_filters[0], c.kernel_size
    per_extra = k * k * f * f + (4 * f if c.batch_norm else f)
    first = k * k * ch * f + (4 * f if c.batch_norm else f)
    return first + (len(c.conv_filters) - 1) * per_extra + f * n_classes + n_classes


@pytest.mark.parametrize("data", [SHAPES, DIGITS])
@pytest.mark.parametrize("changes", [
    dict(architecture="mlp", hidden_layers=(7,)),
    dict(architecture="cnn", conv_filters=(5, 5, 5)),
    dict(architecture="cnn", conv_filters=(5, 5, 5), batch_norm=True),
    dict(architecture="resnet", conv_filters=(6,) * 5, batch_norm=True),
    dict(architecture="resnet", conv_filters=(6,) * 3, kernel_size=5),
])
def test_parameter_counts_match_keras_and_the_hand_formula(data, changes):
    (shape, classes) = data
    c = DEFAULT_BASE.replace(dataset="shapes" if classes == 4 else "digits", **changes)
    model = build_model(c, shape, classes)
    assert param_count(c, shape, classes) == model.count_params() == _hand_count(c, shape, classes)


def test_param_count_with_dense_head_matches_keras():
    c = DEFAULT_BASE.replace(conv_filters=(4, 8), hidden_layers=(9, 3), batch_norm=True)
    assert param_count(c, *SHAPES) == build_model(c, *SHAPES).count_params()


def test_residual_block_with_zero_weights_is_the_identity():
    """conv weights zeroed: F(x) = act(bn(conv(...))) = 0, so every block passes its input through unchanged."""
    for batch_norm in (False, True):
        c = DEFAULT_BASE.replace(architecture="resnet", conv_filters=(4,) * 5, batch_norm=batch_norm, activation="tanh")
        model = build_model(c, *SHAPES)
        for layer in model.layers:
            if layer.name.startswith("conv_") and isinstance(layer, keras.layers.Conv2D) and layer.name != "conv_1":
                layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
        x = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")
        taps = keras.Model(model.input, [model.get_layer(n).output for n in ("pool_1", "skip_1", "pool_3", "skip_2")])
        before_1, after_1, before_2, after_2 = (np.asarray(t) for t in taps(x, training=False))
        np.testing.assert_array_equal(before_1, after_1)
        np.testing.assert_array_equal(before_2, after_2)


def test_resnet_layout_names_and_weight_layers():
    c = DEFAULT_BASE.replace(architecture="resnet", conv_filters=(4,) * 5)
    model = build_model(c, *SHAPES)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith("skip_")] == ["skip_1", "skip_2"]
    assert [layer.name for layer in weight_layers(model)] == [f"conv_{i}" for i in range(1, 6)] + ["output"]
    plain = build_model(c.replace(architecture="cnn"), *SHAPES)
    assert model.count_params() == plain.count_params()  # skips add no parameters


@pytest.mark.parametrize("filters, message", [((4, 4), "3, 5, 7"), ((4, 8, 8), "same number of filters")])
def test_resnet_config_errors_name_the_rule(filters, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(dataset="shapes", architecture="resnet", conv_filters=filters)
    with pytest.raises(ConfigError, match="needs an image dataset"):
        ExperimentConfig(dataset="circle", architecture="resnet", conv_filters=(4, 4, 4))


def test_resnet_round_trips_through_the_url():
    c = ExperimentConfig(dataset="digits", architecture="resnet", conv_filters=(8,) * 11, batch_norm=True)
    assert ExperimentConfig.from_query(c.to_query()) == c


@pytest.mark.parametrize("budget", [3000, 20000, 60000])
def test_mlp_width_hits_the_budget_within_one_units_worth(budget):
    """Tolerance: half the parameters one more hidden unit adds (the count moves in steps of that size)."""
    for depth in (1, 2):
        w = mlp_width_for(budget, depth, *SHAPES, DEFAULT_BASE)
        c = DEFAULT_BASE.replace(architecture="mlp", hidden_layers=(w,) * depth)
        step = param_count(c.replace(hidden_layers=(w + 1,) * depth), *SHAPES) - param_count(c, *SHAPES)
        assert abs(param_count(c, *SHAPES) - budget) <= step / 2 + 1


def test_ladder_widths_hit_the_budget_within_ten_percent():
    ladder = depth_width_ladder(DEFAULT_BASE, "cnn", (2, 3, 4, 6, 8), 10000, *SHAPES)
    assert [len(c.conv_filters) for c, _ in ladder] == [2, 3, 4, 6, 8]
    widths = [c.conv_filters[0] for c, _ in ladder]
    assert widths == sorted(widths, reverse=True)  # shallow-wide to deep-narrow
    for c, count in ladder:
        assert count == build_model(c, *SHAPES).count_params()
        assert abs(count - 10000) <= 0.1 * 10000
    mlp = depth_width_ladder(DEFAULT_BASE.replace(dataset="digits"), "mlp", (1, 2, 4, 8), 8000, *DIGITS)
    assert all(abs(count - 8000) <= 0.1 * 8000 for _, count in mlp)
    assert conv_width_for(10**9, 2, *SHAPES, DEFAULT_BASE) == 64  # capped at the widest allowed


def test_contenders_match_the_mlp_to_the_plain_cnn():
    kinds = contenders(DEFAULT_BASE, 3, 16, 1, None, *SHAPES)
    assert [k.config.architecture for k in kinds] == ["mlp", "cnn", "cnn", "resnet"]
    counts = [param_count(k.config, *SHAPES) for k in kinds]
    assert abs(counts[0] - counts[1]) <= 3072 / 2 + 10  # one MLP unit on 32x32x3 inputs is 3,077 parameters
    assert str(kinds[0].config.hidden_layers[0]) in kinds[0].note


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learning_curve_subsets_are_nested_and_stratified(seed):
    y = load_dataset(ExperimentConfig(dataset="digits", n_samples=1797, train_fraction=0.8, seed=seed)).y_train
    order = nested_order(y, seed)
    assert sorted(order) == list(range(len(y)))
    full = np.bincount(y, minlength=10) / len(y)
    sizes = sizes_between(20, len(y), 12)
    for small, large in zip(sizes, sizes[1:], strict=False):
        assert set(order[:small]) <= set(order[:large])  # nested
    for size in sizes:
        counts = np.bincount(y[order[:size]], minlength=10)
        assert np.all(np.abs(counts - full * size) <= 1.0), (size, counts, full * size)  # stratified within 1


def test_sizes_epochs_and_crossover():
    assert sizes_between(50, 4000, 6)[0] == 50 and sizes_between(50, 4000, 6)[-1] == 4000
    assert epochs_for(50, 32) == 150 and epochs_for(4000, 32) == 10
    sizes = [10, 100, 1000]
    assert crossover(sizes, np.array([0.3, 0.5, 0.9]), np.array([0.4, 0.5, 0.8])) == pytest.approx(100)
    assert crossover(sizes, np.array([0.3, 0.7, 0.9]), np.array([0.5, 0.5, 0.8])) == pytest.approx(10 ** 1.5)
    assert crossover(sizes, np.array([0.6, 0.7, 0.9]), np.array([0.5, 0.5, 0.8])) == 10
    assert crossover(sizes, np.array([0.6, 0.7, 0.7]), np.array([0.5, 0.5, 0.8])) is None


def test_run_curves_scores_every_size_seed_and_architecture():
    base = ExperimentConfig(dataset="digits", n_samples=400, train_fraction=0.5, architecture="mlp", hidden_layers=(8,),
                            activation="relu", batch_size=32, learning_rate=0.01)
    data = load_dataset(base)
    configs = {"MLP": base, "CNN": base.replace(architecture="cnn", conv_filters=(4,), hidden_layers=())}
    points = list(run_curves(configs, data, [30, 60], (0, 1)))
    assert len(points) == 8 and {p.label for p in points} == {"MLP", "CNN"}
    assert all(0.0 <= p.test_acc <= 1.0 for p in points)


def test_curvature_ratio_cases():
    assert curvature_ratio(2.0, 0.5) == 0.0
    assert curvature_ratio(2.0, -0.5) == 0.25
    assert curvature_ratio(-1.0, -2.0) == float("inf")


@pytest.fixture(scope="module")
def tiny_resnet():
    c = ExperimentConfig(dataset="digits", n_samples=200, architecture="resnet", conv_filters=(2, 2, 2),
                         hidden_layers=(), activation="tanh", epochs=2, batch_size=32, learning_rate=0.01)
    return train(c)


def _full_hessian(evaluator, weights) -> np.ndarray:
    """The loss's full Hessian at `weights`: the jacobian of the gradient, by nested tapes."""
    w = tf.constant(weights)
    with tf.GradientTape() as outer:
        outer.watch(w)
        with tf.GradientTape() as inner:
            inner.watch(w)
            loss = evaluator.loss_and_accuracy(w)[0]
        grad = inner.gradient(loss, w)
    return outer.jacobian(grad, w).numpy()


def _full_eigenvalues(evaluator, weights):
    hessian = _full_hessian(evaluator, weights).astype("float64")
    return np.linalg.eigvalsh((hessian + hessian.T) / 2)


def test_convexity_map_matches_full_hessian_eigendecomposition(tiny_resnet):
    """Reference: the full Hessian (jacobian of the gradient, 126 weights) and numpy's eigvalsh at each point."""
    r = tiny_resnet
    evaluator = SurfaceEvaluator(r.model, r.dataset.x_train[:64], r.dataset.y_train[:64], r.config.loss,
                                 r.dataset.n_classes)
    origin = r.snapshots[-1]
    rng = np.random.default_rng(0)
    directions = np.stack([random_direction(r.model, origin, rng) for _ in range(2)])
    coords = np.array([[0.0, 0.0], [0.5, -0.5], [-1.0, 1.0]], "float32")
    result = convexity_map(evaluator, origin, directions, coords, iterations=origin.size)
    for k, point in enumerate(coords):
        eig = _full_eigenvalues(evaluator, origin + point @ directions)
        assert result.top[k] == pytest.approx(eig[-1], rel=1e-3, abs=1e-5)
        assert result.bottom[k] == pytest.approx(eig[0], rel=1e-3, abs=1e-5)
        assert result.ratio[k] == pytest.approx(curvature_ratio(eig[-1], eig[0]), rel=5e-3, abs=1e-5)
    assert result.non_convex_share == np.mean(result.ratio > result.threshold)
    probe = HessianProbe(loss_function(evaluator))
    v = rng.standard_normal(origin.size).astype("float32")
    w = origin + coords[1] @ directions
    np.testing.assert_allclose(probe.product(w, v), _full_hessian(evaluator, w) @ v, rtol=1e-3, atol=1e-5)


def test_standalone_script_refuses_a_residual_cnn_with_a_reason():
    from models.export import standalone_script

    c = ExperimentConfig(dataset="digits", n_samples=100, architecture="resnet", conv_filters=(4, 4, 4))
    with pytest.raises(ValueError, match="skip connections"):
        standalone_script(c, load_dataset(c))


def test_runs_table_names_a_resnet():
    from models.run_table import architecture_text

    c = ExperimentConfig(dataset="digits", architecture="resnet", conv_filters=(16,) * 5, batch_norm=True,
                         hidden_layers=(), activation="relu")
    assert architecture_text(c) == "resnet 5x16 bn relu"


def test_estimate_grows_with_work():
    from models.architectures import estimated_seconds, forward_macs

    small = DEFAULT_BASE.replace(conv_filters=(8, 8, 8))
    assert forward_macs(small, *SHAPES) < forward_macs(DEFAULT_BASE, *SHAPES)
    # conv_1 at 32x32, conv_2 at 16x16, conv_3 at 8x8 (pooled after conv_1 and conv_2), then the 16 -> 4 head
    assert forward_macs(DEFAULT_BASE, *SHAPES) == 32 * 32 * 27 * 16 + 16 * 16 * 144 * 16 + 8 * 8 * 144 * 16 + 64
    assert estimated_seconds([DEFAULT_BASE], *SHAPES, 1200, 300) < estimated_seconds(
        [DEFAULT_BASE.replace(epochs=30)], *SHAPES, 1200, 300)
