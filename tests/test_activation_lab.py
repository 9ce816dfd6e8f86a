import numpy as np
import pytest

from models.activation_lab import (
    PRESETS,
    activation_curve,
    confusion_on_test_set,
    gradient_ratio,
    layer_health,
    preset_figure,
)
from models.config import ExperimentConfig
from models.engine import train, train_many
from models.registry import ACTIVATIONS


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_autodiff_derivative_matches_finite_differences(name):
    x = np.linspace(-2.95, 2.95, 60) + 0.0137  # off the kinks of piecewise functions (0, +-1, +-3)
    y, dy = activation_curve(name, x)
    h = 1e-3
    numeric = (activation_curve(name, x + h)[0] - activation_curve(name, x - h)[0]) / (2 * h)
    assert np.allclose(dy, numeric, atol=2e-2)


def test_known_derivatives():
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    assert np.allclose(activation_curve("relu", x)[1], [0, 0, 1, 1])
    assert np.allclose(activation_curve("tanh", x)[1], 1 - np.tanh(x) ** 2, atol=1e-6)
    assert np.allclose(activation_curve("linear", x)[1], 1)


def test_models_trained_together_share_start_batches_and_equal_single_runs():
    base = ExperimentConfig(n_samples=120, epochs=4, batch_size=16, hidden_layers=(4, 4))
    configs = [base.replace(activation=a) for a in ("relu", "tanh", "elu")]
    together = train_many(configs)
    assert all(np.array_equal(r.initial_weights, together[0].initial_weights) for r in together)
    for config, joint in zip(configs, together, strict=True):
        alone = train(config)
        assert np.allclose(joint.history.train_loss, alone.history.train_loss, rtol=1e-4)
        assert joint.seconds_per_epoch > 0
    assert together[0].history.train_loss != together[1].history.train_loss  # the activation matters


def test_one_diverging_model_does_not_stop_the_others():
    base = ExperimentConfig(n_samples=120, epochs=5, optimizer="sgd", learning_rate=100.0)
    diverged, calm = train_many([base.replace(activation="linear"), base.replace(activation="sigmoid")])
    assert diverged.status == "diverged" and diverged.diverged_epoch == 1
    assert calm.status == "completed" and len(calm.history) == 5


def test_models_trained_together_must_share_data():
    with pytest.raises(ValueError, match="must share epochs"):
        train_many([ExperimentConfig(epochs=2), ExperimentConfig(epochs=3)])


def _preset_results(key):
    preset = PRESETS[key]
    results = train_many([preset.config.replace(activation=a) for a in preset.activations])
    return preset, dict(zip(preset.activations, results, strict=True))


def test_preset_nonlinearity_linear_net_cannot_learn_the_circle():
    preset, results = _preset_results("nonlinearity")
    acc = preset_figure(preset, results)
    assert acc["linear"] < 0.7
    assert acc["tanh"] >= 0.95 and acc["relu"] >= 0.95


def test_preset_vanishing_gradients_sigmoid_ratio_far_below_relu():
    preset, results = _preset_results("vanishing")
    ratio = preset_figure(preset, results)
    assert ratio["sigmoid"] * 10 <= ratio["relu"]
    assert ratio["sigmoid"] < 1e-2  # orders of magnitude, not a few percent


def test_preset_dead_relus_only_for_relu():
    preset, results = _preset_results("dead_relu")
    dead = preset_figure(preset, results)
    assert dead["relu"] > dead["leaky_relu"] and dead["relu"] > dead["elu"]
    assert dead["relu"] > 0.02


def test_layer_health_on_a_hand_made_dead_layer():
    r = train(ExperimentConfig(n_samples=100, epochs=1, hidden_layers=(4,), activation="relu"))
    dense = r.model.get_layer("dense_1")
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    kernel[:, :2] = 0.0
    bias[:2] = -1.0  # units 0 and 1 get z = -1 for every input: dead
    bias[2:] = 50.0  # units 2 and 3 are always on
    dense.kernel.assign(kernel)
    dense.bias.assign(bias)
    (health,) = layer_health(r)
    assert health.units == 4 and health.dead == 0.5 and health.saturated == 0.5
    assert health.mean_activation == pytest.approx(np.mean(np.maximum(r.dataset.x_train @ kernel + bias, 0)), rel=1e-4)


def test_gradient_ratio_and_confusion():
    r = train(ExperimentConfig(dataset="digits", n_samples=300, epochs=2, batch_size=32, hidden_layers=(16,)))
    assert gradient_ratio(r) > 0
    m = confusion_on_test_set(r)
    assert m.shape == (10, 10) and m.sum() == len(r.dataset.y_test)
    assert np.trace(m) / m.sum() == pytest.approx(r.history.test_acc[-1], abs=1e-6)


@pytest.mark.parametrize("name", ["linear", "relu", "elu", "selu", "sigmoid"])
def test_activation_chart_fits_its_y_range_to_both_curves(name):
    """Issue 12 item 4: the y axis was clamped to [-2, 4], drawing false flat ends on linear, relu and elu."""
    from ui.activation_lab_views import CURVE_X
    from ui.compare_charts import activation_curve_chart

    y, dy = activation_curve(name, CURVE_X)
    spec = activation_curve_chart(name, CURVE_X, y, dy, 0.05).to_dict()
    scale = spec["layer"][1]["encoding"]["y"]["scale"]
    low, high = scale["domain"]
    assert not scale.get("clamp")
    assert low <= min(y.min(), dy.min()) and high >= max(y.max(), dy.max())
    assert high - low <= 1.2 * (max(y.max(), dy.max()) - min(y.min(), dy.min()))  # fitted, not padded to a range


def test_gradient_panels_wrap_three_to_a_row_with_the_legend_below():
    """Issue 12 item 2: six side-by-side panels and a legend on the right overflowed the page."""
    from ui.compare_charts import compared_gradient_chart

    config = ExperimentConfig(n_samples=60, epochs=2, hidden_layers=(4,))
    results = dict(zip("abcdef", train_many([config.replace(activation=a) for a in
                                              ("relu", "tanh", "elu", "sigmoid", "gelu", "linear")]), strict=True))
    spec = compared_gradient_chart(results).to_dict()
    assert spec["columns"] == 3 and spec["facet"]["field"] == "model"
    assert spec["spec"]["encoding"]["color"]["legend"]["orient"] == "bottom"
    assert 3 * spec["spec"]["width"] + 2 * spec["spacing"] + 60 <= 520  # panels, gaps and the y axis
    two = compared_gradient_chart(dict(list(results.items())[:2])).to_dict()
    assert two["columns"] == 2
