"""Which activations and optimisers the dashboard offers, taken from Keras' own registries.

Nothing here re-implements the maths: activations come from `keras.activations.get` and optimisers
from `keras.optimizers.get`; this module only names the choices, picks the tunable parameters worth a
slider, and reads their defaults from the Keras constructors themselves.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import keras

# Element-wise activations a hidden layer can use. Left out: softmax/log_softmax/sparsemax (they
# mix units), glu (halves the width) and threshold (needs extra arguments).
ACTIVATIONS: dict[str, str] = {
    "linear": "Identity: no nonlinearity, so any depth collapses to one linear map.",
    "relu": "max(0, x): cheap and non-saturating for x > 0, but units can die.",
    "leaky_relu": "ReLU with a small slope for x < 0, so units cannot die completely.",
    "relu6": "ReLU capped at 6.",
    "elu": "Smooth, negative values saturate at -1; mean activations nearer zero.",
    "selu": "Scaled ELU that self-normalises with LeCun initialisation.",
    "celu": "Continuously differentiable ELU.",
    "gelu": "x weighted by the Gaussian CDF; the transformer default.",
    "silu": "x * sigmoid(x) (swish): smooth and non-monotonic.",
    "mish": "x * tanh(softplus(x)): smooth, non-monotonic.",
    "hard_silu": "Piecewise-linear approximation of silu.",
    "tanh": "Squashes to (-1, 1); zero-centred but saturates.",
    "sigmoid": "Squashes to (0, 1); saturates and is not zero-centred.",
    "hard_sigmoid": "Piecewise-linear sigmoid.",
    "hard_tanh": "tanh clipped to straight lines.",
    "softplus": "log(1 + e^x): a smooth ReLU.",
    "softsign": "x / (1 + |x|): like tanh with slower saturation.",
    "log_sigmoid": "log(sigmoid(x)).",
    "squareplus": "(x + sqrt(x^2 + b)) / 2: an algebraic smooth ReLU.",
    "sparse_plus": "Piecewise-quadratic smooth ReLU.",
    "tanh_shrink": "x - tanh(x).",
    "exponential": "e^x: unbounded; diverges easily.",
}


@dataclass(frozen=True)
class OptimizerSpec:
    """How one dashboard optimiser choice maps onto a Keras optimiser class."""

    keras_name: str  # class name in keras.optimizers
    description: str  # one line for the UI
    fixed: tuple[tuple[str, object], ...] = ()  # constructor arguments that define the variant
    tunable: tuple[tuple[str, float, float], ...] = ()  # (parameter, min, max): a slider, and what a link may set


_BETAS = (("beta_1", 0.0, 0.999), ("beta_2", 0.5, 0.9999))

OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("SGD", "Plain gradient descent: w <- w - lr * g."),
    "momentum": OptimizerSpec(
        "SGD", "SGD with heavy-ball momentum.", fixed=(("momentum", 0.9),), tunable=(("momentum", 0.0, 0.99),)
    ),
    "nesterov": OptimizerSpec(
        "SGD",
        "SGD with Nesterov momentum (looks ahead before stepping).",
        fixed=(("momentum", 0.9), ("nesterov", True)),
        tunable=(("momentum", 0.0, 0.99),),
    ),
    "rmsprop": OptimizerSpec(
        "RMSprop", "Divides by a running RMS of gradients.", tunable=(("rho", 0.5, 0.999), ("momentum", 0.0, 0.99))
    ),
    "adam": OptimizerSpec("Adam", "Momentum plus per-weight RMS scaling.", tunable=_BETAS),
    "adamw": OptimizerSpec(
        "AdamW", "Adam with decoupled weight decay.", tunable=_BETAS + (("weight_decay", 0.0, 0.1),)
    ),
    "adagrad": OptimizerSpec(
        "Adagrad", "Per-weight rates that shrink with the sum of squared gradients.",
        tunable=(("initial_accumulator_value", 0.0, 1.0),),
    ),
    "adadelta": OptimizerSpec("Adadelta", "Adagrad variant with a decaying window.", tunable=(("rho", 0.5, 0.999),)),
    "adamax": OptimizerSpec("Adamax", "Adam with an infinity-norm scaling.", tunable=_BETAS),
    "nadam": OptimizerSpec("Nadam", "Adam with Nesterov momentum.", tunable=_BETAS),
    # Keras refuses beta_1 = 0 for Lion: it would be SignSGD.
    "lion": OptimizerSpec(
        "Lion", "Sign of an interpolated momentum: equal-size steps.",
        tunable=(("beta_1", 0.01, 0.999), _BETAS[1]),
    ),
    "lamb": OptimizerSpec("Lamb", "Adam with per-layer trust ratios.", tunable=_BETAS),
    "ftrl": OptimizerSpec(
        "Ftrl", "Follow-the-regularised-leader, from online learning.",
        tunable=(("l1_regularization_strength", 0.0, 0.1), ("l2_regularization_strength", 0.0, 0.1)),
    ),
}


def activation_fn(name: str):
    """The Keras activation function registered under `name`.

    Raises:
        ValueError: the name is not one the dashboard offers.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return keras.activations.get(name)


def _keras_defaults(keras_name: str) -> dict[str, object]:
    cls = getattr(keras.optimizers, keras_name)
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def optimizer_param_ranges(name: str) -> dict[str, tuple[float, float]]:
    """(min, max) of each parameter a user may set for optimiser `name`: the sliders' bounds, so a value a
    link may carry is always one the Playground's widgets can show."""
    return {p: (low, high) for p, low, high in OPTIMIZERS[name].tunable} if name in OPTIMIZERS else {}


def optimizer_defaults(name: str) -> dict[str, float]:
    """Default value of each tunable parameter: the variant's fixed value, else Keras' own default."""
    spec = OPTIMIZERS[name]
    defaults = _keras_defaults(spec.keras_name)
    fixed = dict(spec.fixed)
    return {p: float(fixed.get(p, defaults[p])) for p, _, _ in spec.tunable}


def make_optimizer(name: str, learning_rate, options=()) -> keras.optimizers.Optimizer:
    """A fresh Keras optimiser for dashboard choice `name` with the user's parameters applied.

    `learning_rate` is a number or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    spec = OPTIMIZERS[name]
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = float(learning_rate)
    config = {"learning_rate": learning_rate, **dict(spec.fixed), **dict(options)}
    # Not keras.optimizers.get: its lookup table omits some public classes (Lamb).
    return getattr(keras.optimizers, spec.keras_name)(**config)
