import inspect

import keras
import numpy as np
import pytest

from models.config import ExperimentConfig
from models.registry import (
    ACTIVATIONS,
    OPTIMIZERS,
    activation_fn,
    make_optimizer,
    optimizer_defaults,
    optimizer_param_ranges,
)

REQUIRED_ACTIVATIONS = {"linear", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "tanh", "sigmoid",
                        "softplus", "softsign", "hard_sigmoid"}
REQUIRED_OPTIMIZERS = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "adadelta", "adamax",
                       "nadam", "lion"}


def test_required_choices_are_offered():
    assert REQUIRED_ACTIVATIONS <= set(ACTIVATIONS)
    assert REQUIRED_OPTIMIZERS <= set(OPTIMIZERS)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_is_keras_own_and_elementwise(name):
    fn = activation_fn(name)
    assert fn is keras.activations.get(name)
    x = np.linspace(-3, 3, 13).astype("float32")
    y = np.asarray(fn(x))
    assert y.shape == x.shape and np.isfinite(y).all()
    assert np.allclose(np.asarray(fn(x[:5])), y[:5])  # element-wise: one value does not depend on others


def test_known_activation_values():
    x = np.array([-2.0, 0.0, 2.0], dtype="float32")
    assert np.allclose(activation_fn("relu")(x), [0, 0, 2])
    assert np.allclose(activation_fn("tanh")(x), np.tanh(x), atol=1e-6)
    assert np.allclose(activation_fn("sigmoid")(x), 1 / (1 + np.exp(-x)), atol=1e-6)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_builds_with_its_defaults_and_steps(name):
    opt = make_optimizer(name, 0.1, optimizer_defaults(name).items())
    assert type(opt).__name__ == OPTIMIZERS[name].keras_name
    w = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
    opt.apply([keras.ops.convert_to_tensor(np.array([0.5, -0.5], dtype="float32"))], [w])
    assert not np.allclose(w.numpy(), [1.0, -2.0])  # one step moved the weights


def test_defaults_come_from_keras_signatures():
    adam = inspect.signature(keras.optimizers.Adam.__init__).parameters
    assert optimizer_defaults("adam") == {"beta_1": adam["beta_1"].default, "beta_2": adam["beta_2"].default}
    assert optimizer_defaults("nesterov")["momentum"] == 0.9
    opt = make_optimizer("nesterov", 0.01)
    assert opt.nesterov and opt.momentum == 0.9


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if OPTIMIZERS[n].tunable])
def test_link_ranges_are_the_slider_bounds_and_keras_steps_at_both_ends(name):
    ranges = optimizer_param_ranges(name)
    assert ranges == {p: (low, high) for p, low, high in OPTIMIZERS[name].tunable}  # link-valid == widget-valid
    for param, (low, high) in ranges.items():
        assert low <= optimizer_defaults(name)[param] <= high
        if param in ("momentum", "beta_1", "beta_2", "rho"):  # decay rates: 1 would never forget
            assert 0 <= low and high < 1
        for value in (low, high):
            ExperimentConfig(optimizer=name, optimizer_options=((param, value),))  # validates
            opt = make_optimizer(name, 0.1, ((param, value),))
            w = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
            opt.apply([keras.ops.convert_to_tensor(np.array([0.5, -0.5], dtype="float32"))], [w])
            assert np.isfinite(w.numpy()).all()
