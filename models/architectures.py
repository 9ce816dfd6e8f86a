"""MLP vs CNN vs residual CNN on the same images: the configs compared, their parameter counts worked out by
hand, and the widths that put networks of different depths on one parameter budget.

The hand counts are the formulas a reader can check on paper (a conv layer has k*k*c_in*f weights plus f
biases, or 4f batch-norm numbers instead of the biases); tests hold them against `model.count_params()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import MAX_FILTERS, MAX_UNITS, ExperimentConfig

# What the page's first visit trains: four architectures on 1,500 generated shapes (1,200 to train on).
# Batch norm in both CNN variants that have it, Adam with a warm-up and cosine decay as in models/recipes.py.
DEFAULT_BASE = ExperimentConfig(
    dataset="shapes", n_samples=1500, noise=0.0, train_fraction=0.8, architecture="cnn", conv_filters=(16, 16, 16),
    hidden_layers=(), kernel_size=3, activation="relu", optimizer="adam", learning_rate=3e-3,
    lr_schedule="warmup_cosine", batch_size=32, epochs=15,
)

KINDS = ("MLP", "CNN", "CNN + batch norm", "Residual CNN")


@dataclass(frozen=True)
class Contender:
    """One architecture of the comparison."""

    kind: str  # one of KINDS
    config: ExperimentConfig
    note: str  # how its size was chosen, in words


def param_count(config: ExperimentConfig, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Parameters of `build_model(config, input_shape, n_classes)` (trainable and batch-norm statistics), by hand."""
    outputs = n_classes or 1
    if config.architecture == "mlp":
        width, total = math.prod(input_shape), 0
    else:
        channels, total = input_shape[-1], 0
        for filters in config.conv_filters:
            weights = config.kernel_size ** 2 * channels * filters
            total += weights + (4 * filters if config.batch_norm else filters)  # gamma, beta, mean, variance
            channels = filters
        width = channels  # global average pooling: one number per channel
    for units in config.hidden_layers:
        total += width * units + units
        width = units
    return total + width * outputs + outputs


def mlp_width_for(budget: int, depth: int, input_shape: tuple[int, ...], n_classes: int,
                  base: ExperimentConfig) -> int:
    """The hidden width (1..MAX_UNITS) of a `depth`-layer MLP whose parameter count is closest to `budget`."""
    def count(width: int) -> int:
        return param_count(base.replace(architecture="mlp", hidden_layers=(width,) * depth), input_shape, n_classes)
    return min(range(1, MAX_UNITS + 1), key=lambda w: abs(count(w) - budget))


def conv_width_for(budget: int, depth: int, input_shape: tuple[int, ...], n_classes: int,
                   base: ExperimentConfig) -> int:
    """The filters (1..MAX_FILTERS) of a `depth`-layer constant-width CNN whose parameter count is closest to
    `budget`."""
    def count(width: int) -> int:
        return param_count(base.replace(conv_filters=(width,) * depth), input_shape, n_classes)
    return min(range(1, MAX_FILTERS + 1), key=lambda w: abs(count(w) - budget))


def contenders(base: ExperimentConfig, conv_layers: int, filters: int, mlp_depth: int, mlp_width: int | None,
               input_shape: tuple[int, ...], n_classes: int) -> list[Contender]:
    """The four architectures on `base`'s data and training settings.

    The three CNNs share `conv_layers` layers of `filters` filters (the residual one: a stem and blocks of two,
    so `conv_layers` must be odd); the residual CNN has batch norm, as in He et al. With `mlp_width` None the
    MLP's width is solved so that its parameter count matches the plain CNN's.
    """
    cnn = base.replace(architecture="cnn", conv_filters=(filters,) * conv_layers, batch_norm=False)
    cnn_params = param_count(cnn, input_shape, n_classes)
    if mlp_width is None:
        mlp_width = mlp_width_for(cnn_params, mlp_depth, input_shape, n_classes, base)
        mlp_note = f"width {mlp_width} chosen to match the plain CNN's {cnn_params:,} parameters"
    else:
        mlp_note = f"width {mlp_width} set by hand"
    mlp = base.replace(architecture="mlp", hidden_layers=(mlp_width,) * mlp_depth, batch_norm=False)
    conv_note = f"{conv_layers} conv layers of {filters} filters"
    return [
        Contender("MLP", mlp, f"{mlp_depth} hidden layer(s), {mlp_note}"),
        Contender("CNN", cnn, conv_note),
        Contender("CNN + batch norm", cnn.replace(batch_norm=True), conv_note + ", batch norm after each conv"),
        Contender("Residual CNN", cnn.replace(architecture="resnet", batch_norm=True),
                  conv_note + f": a stem and {(conv_layers - 1) // 2} identity-skip block(s), batch norm"),
    ]


def depth_width_ladder(base: ExperimentConfig, kind: str, depths: tuple[int, ...], budget: int,
                       input_shape: tuple[int, ...], n_classes: int) -> list[tuple[ExperimentConfig, int]]:
    """Networks from shallow-wide to deep-narrow at about `budget` parameters: (config, parameter count) each.

    `kind` is "mlp" (dense layers of one width) or "cnn" (conv layers of one width, the dense head kept);
    a depth whose solved width would hit the width limit (MAX_UNITS, MAX_FILTERS) is left out, since it
    could not reach the budget.
    """
    out = []
    for depth in depths:
        if kind == "mlp":
            width = mlp_width_for(budget, depth, input_shape, n_classes, base)
            config = base.replace(architecture="mlp", hidden_layers=(width,) * depth, batch_norm=False)
            limit = MAX_UNITS
        else:
            width = conv_width_for(budget, depth, input_shape, n_classes, base.replace(architecture="cnn"))
            config = base.replace(architecture="cnn", conv_filters=(width,) * depth)
            limit = MAX_FILTERS
        if width < limit:
            out.append((config, param_count(config, input_shape, n_classes)))
    return out


def depth_of(config: ExperimentConfig) -> tuple[int, int]:
    """(layers, width) of a constant-width ladder network."""
    layers = config.hidden_layers if config.architecture == "mlp" else config.conv_filters
    return len(layers), (layers[0] if layers else 0)


# The time model, fitted to runs on this project's two shared CPU cores (shapes, 3 conv layers of 16
# filters: 1.2 M multiply-adds per image forward, about 0.19 s per epoch of 1,200 images with batch norm).
MACS_PER_SECOND = 20e9  # multiply-adds per second a training step sustains here, forward and backward
EPOCH_OVERHEAD_S = 0.03  # per model and epoch: the loop, metrics and batch norm's element-wise work
COMPILE_S = 1.5  # per model: tracing and compiling its epoch


def forward_macs(config: ExperimentConfig, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Multiply-adds of one image's forward pass (conv layers at their resolution after the builder's pooling)."""
    macs = 0
    if config.architecture == "mlp":
        width = math.prod(input_shape)
    else:
        side, channels = min(input_shape[0], input_shape[1]), input_shape[-1]
        smallest = max(2, side // 4)
        for i, filters in enumerate(config.conv_filters):
            macs += side * side * config.kernel_size ** 2 * channels * filters
            channels = filters
            pooled = i == 0 or config.architecture == "cnn" or i % 2 == 0  # resnet pools after its stem and blocks
            if pooled and side // 2 >= smallest:
                side //= 2
        width = channels
    for units in config.hidden_layers:
        macs += width * units
        width = units
    return macs + width * (n_classes or 1)


def estimated_seconds(configs: list[ExperimentConfig], input_shape: tuple[int, ...], n_classes: int, n_train: int,
                      n_test: int) -> float:
    """Wall time to train `configs` for their epochs: a backward pass costs two forwards, and every epoch also
    scores the whole training and test sets."""
    total = 0.0
    for c in configs:
        forwards = c.epochs * (3 * n_train + n_train + n_test)
        total += forwards * forward_macs(c, input_shape, n_classes) / MACS_PER_SECOND
        total += c.epochs * EPOCH_OVERHEAD_S + COMPILE_S
    return total
