import numpy as np
import pytest

from models.backprop import (
    QUANTILES,
    activation_distributions,
    finite_difference,
    hand_step,
    layer_weight_norms,
    lr_range_test,
    tiny_weights,
    update_ratios,
    weight_distributions,
)
from models.config import ExperimentConfig
from models.engine import train


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "gelu", "elu", "softplus"])
@pytest.mark.parametrize("hidden", [1, 3, 5])
def test_chain_rule_equals_autodiff_and_finite_differences(activation, hidden):
    weights = tiny_weights(2, hidden, seed=hidden)
    x = np.array([0.7, -1.3])
    step = hand_step(weights, x, 1.0, activation, lr=0.1)
    numeric = finite_difference(weights, x, 1.0, activation)
    for name in weights:
        assert step.chain[name].shape == weights[name].shape
        assert np.allclose(step.chain[name], step.autodiff[name], atol=1e-6, rtol=0)
        assert np.allclose(step.chain[name], numeric[name], atol=1e-6, rtol=0)


def test_small_step_lowers_the_loss_and_update_is_w_minus_lr_g():
    weights = tiny_weights(2, 3, seed=0)
    step = hand_step(weights, np.array([0.5, -1.0]), 1.0, "tanh", lr=0.1)
    assert step.loss_after < step.forward["loss"]
    for name in weights:
        assert np.allclose(step.updated[name], weights[name] - 0.1 * step.chain[name])


def test_forward_values_are_consistent():
    weights = tiny_weights(2, 2, seed=3)
    f = hand_step(weights, np.array([1.0, 2.0]), 0.0, "relu", lr=0.1).forward
    assert np.allclose(f["z1"], weights["W1"] @ [1.0, 2.0] + weights["b1"])
    assert np.allclose(f["a1"], np.maximum(f["z1"], 0))
    assert np.isclose(f["loss"], (f["y_hat"][0] - 0.0) ** 2)


@pytest.fixture(scope="module")
def run():
    return train(ExperimentConfig(n_samples=200, epochs=6, hidden_layers=(4, 3)))


def test_weight_norms_and_update_ratios_follow_the_snapshots(run):
    epochs, norms = layer_weight_norms(run)
    assert epochs == list(range(7)) and set(norms) == {"dense_1", "dense_2", "output"}
    kernel, bias = run.model.get_layer("output").kernel.numpy(), run.model.get_layer("output").bias.numpy()
    assert norms["output"][-1] == pytest.approx(np.sqrt((kernel**2).sum() + (bias**2).sum()), rel=1e-5)
    _, ratios = update_ratios(run)
    assert all(len(v) == 6 and np.all(v > 0) for v in ratios.values())


def test_distributions_have_tensorboard_quantiles(run):
    weights = weight_distributions(run)
    assert weights["dense_1"].shape == (7, len(QUANTILES))
    kernel = run.model.get_layer("dense_1").kernel.numpy()
    assert np.allclose(weights["dense_1"][-1], np.quantile(kernel, QUANTILES), atol=1e-6)
    epochs, acts = activation_distributions(run)
    assert epochs[0] == 0 and epochs[-1] == 6 and set(acts) == {"act_1", "act_2"}
    assert np.all(np.diff(acts["act_1"], axis=1) >= 0)  # quantiles are ordered
    assert acts["act_1"].min() >= -1 and acts["act_1"].max() <= 1  # tanh outputs


def test_lr_range_test_rises_and_suggests_a_range(run):
    result = lr_range_test(run.config, run.dataset, start=1e-5, end=100.0, steps=120)
    assert np.all(np.diff(result.learning_rates) > 0)
    assert result.losses.min() < result.losses[0]  # some rates help
    low, high = result.suggested
    assert 1e-5 <= low <= high <= 100.0
