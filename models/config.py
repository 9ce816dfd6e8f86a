"""The experiment config: one frozen dataclass that says everything needed to reproduce a run.

It validates itself on construction, round-trips through a plain dict and through URL query
parameters (so a run can be shared as a link), and gives a stable key for caching.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from models.registry import ACTIVATIONS, OPTIMIZERS, optimizer_param_ranges

POINT_DATASETS = ("circle", "xor", "gaussians", "spiral", "moons")  # 2D classification problems
REGRESSION_DATASETS = ("plane", "multi_gaussian")  # 2D problems with a number to predict at each point
PLAYGROUND_DATASETS = POINT_DATASETS + REGRESSION_DATASETS + ("csv",)  # 2D sets; "csv" is an uploaded table
IMAGE_DATASETS = ("digits", "shapes", "mnist", "fashion_mnist", "cifar10")
DATASETS = PLAYGROUND_DATASETS + IMAGE_DATASETS
TASKS = ("classification", "regression")

# TensorFlow Playground's input features of a point (x1, x2), in the order the first layer receives them.
PLANE_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
DEFAULT_FEATURES = ("x1", "x2")

# URL parameter names that differ from the field names (kept short, as the Playground's own links do).
_QUERY_NAMES = {"input_features": "features"}
_TUPLE_FIELDS = ("hidden_layers", "conv_filters", "input_features", "layer_activations")
ARCHITECTURES = ("mlp", "cnn", "resnet")
CONV_ARCHITECTURES = ("cnn", "resnet")  # the architectures built from conv_filters; both need images
LOSSES = ("cross_entropy", "mse")
LR_SCHEDULES = ("constant", "warmup_cosine")

MAX_HIDDEN_LAYERS = 10
MAX_UNITS = 128
MAX_CONV_BLOCKS = 12  # deep enough for the plain-vs-residual landscapes of Li et al. (Architectures page)
MAX_FILTERS = 64


class ConfigError(ValueError):
    """A config field holds a value outside what the dashboard supports."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides a training run; equal configs give equal results."""

    dataset: str = "circle"  # one of DATASETS
    n_samples: int = 500  # points to generate (2D) or images to keep (image sets)
    noise: float = 0.1  # label/position noise of generated data, 0 = clean
    train_fraction: float = 0.5  # share of samples used for training, the rest is the test set
    seed: int = 0  # seeds data, initial weights, shuffling and dropout
    architecture: str = "mlp"  # "mlp", "cnn" or "resnet" (a CNN with identity skips); the last two need images
    hidden_layers: tuple[int, ...] = (8, 8)  # units of each dense hidden layer (after the convs for cnn)
    conv_filters: tuple[int, ...] = (8, 16)  # filters of each conv layer (cnn, resnet: a stem and pairs, all equal)
    kernel_size: int = 3  # conv kernel side (cnn, resnet)
    batch_norm: bool = False  # batch normalisation between each conv and its activation (cnn, resnet)
    activation: str = "tanh"  # hidden-layer activation, a key of registry.ACTIVATIONS
    optimizer: str = "adam"  # a key of registry.OPTIMIZERS
    optimizer_options: tuple[tuple[str, float], ...] = ()  # extra optimiser parameters, e.g. (("momentum", 0.9),)
    learning_rate: float = 0.03  # step size of the optimiser (the peak step size under a schedule)
    lr_schedule: str = "constant"  # "constant", or "warmup_cosine": warm-up over epoch 1, cosine decay to 0 at the end
    batch_size: int = 10  # samples per gradient step
    epochs: int = 100  # passes over the training set
    l1: float = 0.0  # L1 penalty on kernels
    l2: float = 0.0  # L2 penalty on kernels
    dropout: float = 0.0  # dropout rate after each dense hidden layer
    loss: str = "cross_entropy"  # "cross_entropy" or "mse" on the softmax output; regression needs "mse"
    input_features: tuple[str, ...] = DEFAULT_FEATURES  # 2D sets: features fed to the first layer, PLANE_FEATURES order
    layer_activations: tuple[str, ...] = ()  # one activation per hidden dense layer; empty: all use `activation`
    csv_task: str = "classification"  # "classification" or "regression"; only read when dataset == "csv"
    data_id: str = ""  # 16-hex content hash of the uploaded table; only read when dataset == "csv"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_layers", tuple(int(u) for u in self.hidden_layers))
        object.__setattr__(self, "conv_filters", tuple(int(f) for f in self.conv_filters))
        object.__setattr__(self, "batch_norm", bool(self.batch_norm))
        features = tuple(str(f) for f in self.input_features)
        if set(features) <= set(PLANE_FEATURES):  # unknown names are left for `validate` to report
            features = tuple(f for f in PLANE_FEATURES if f in features)
        object.__setattr__(self, "input_features", features)
        object.__setattr__(self, "layer_activations", tuple(str(a) for a in self.layer_activations))
        options = tuple(sorted((str(k), float(v)) for k, v in dict(self.optimizer_options).items()))
        object.__setattr__(self, "optimizer_options", options)
        validate(self)

    @property
    def is_image(self) -> bool:
        """True when the dataset is made of images rather than 2D points."""
        return self.dataset in IMAGE_DATASETS

    @property
    def task(self) -> str:
        """"regression" for the regression problems and numeric-target tables, else "classification"."""
        if self.dataset in REGRESSION_DATASETS or (self.dataset == "csv" and self.csv_task == "regression"):
            return "regression"
        return "classification"

    def hidden_activations(self) -> tuple[str, ...]:
        """The activation of each hidden dense layer, input to output."""
        return self.layer_activations or (self.activation,) * len(self.hidden_layers)

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-friendly dict; `from_dict` reverses it."""
        d = dataclasses.asdict(self)
        d["hidden_layers"] = list(self.hidden_layers)
        d["conv_filters"] = list(self.conv_filters)
        d["input_features"] = list(self.input_features)
        d["layer_activations"] = list(self.layer_activations)
        d["optimizer_options"] = dict(self.optimizer_options)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        """Build from `to_dict` output; unknown keys are an error so typos do not pass silently."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"Unknown config field(s): {', '.join(sorted(unknown))}.")
        d = dict(d)
        if isinstance(d.get("optimizer_options"), dict):
            d["optimizer_options"] = tuple(d["optimizer_options"].items())
        return cls(**d)

    def to_query(self) -> dict[str, str]:
        """URL query parameters holding only the fields that differ from the defaults."""
        default = ExperimentConfig().to_dict()
        out = {}
        for key, value in self.to_dict().items():
            if value == default[key]:
                continue
            if key in _TUPLE_FIELDS:
                out[_QUERY_NAMES.get(key, key)] = ",".join(str(v) for v in value) or "none"
            elif key == "optimizer_options":
                out[key] = ";".join(f"{k}:{v}" for k, v in value.items())
            else:
                out[key] = str(value)
        return out

    @classmethod
    def from_query(cls, query: dict[str, str]) -> ExperimentConfig:
        """Parse query parameters written by `to_query`; fields not present keep their defaults.

        Raises:
            ConfigError: a value does not parse or is out of range; the message names the field.
        """
        kwargs, default = {}, cls()
        for f in dataclasses.fields(cls):  # parameters that are not fields: other pages may add their own
            _, raw = _query_value(query, f.name)
            if raw is not None:
                kwargs[f.name] = _parse_query_value(f.name, raw, getattr(default, f.name))
        return cls(**kwargs)

    @classmethod
    def from_query_lenient(cls, query: dict[str, str], datasets=DATASETS) -> tuple[ExperimentConfig, list[str]]:
        """Like `from_query`, but a bad field falls back to its default and the link's other fields are kept.

        Fields are applied in declaration order, so `dataset` is judged before `architecture` and
        `optimizer` before `optimizer_options`; a field that does not fit the ones kept so far is dropped.
        A field that turns the run into regression brings `loss="mse"` with it (regression allows no
        other loss), so such a link keeps its dataset whatever order the fields come in.

        Args:
            query: the URL's query parameters; keys that are not config fields are ignored.
            datasets: the datasets the calling page can train; any other one is a bad field.

        Returns:
            The config (always valid) and one message per dropped field, each starting with `field=value:`.
        """
        config, problems = cls(), []
        for f in dataclasses.fields(cls):
            name, raw = _query_value(query, f.name)
            if raw is None:
                continue
            try:
                value = _parse_query_value(f.name, raw, getattr(config, f.name))
                if f.name == "dataset":
                    _check_choice("dataset", value, datasets)
                config = _replace_fitting_loss(config, {f.name: value})
            except ConfigError as err:
                shown = raw if len(raw) <= 40 else raw[:37] + "..."
                problems.append(f"{name}={shown}: {str(err).removeprefix(f.name + ': ')}")  # name it once
        return config, problems

    def key(self) -> str:
        """Stable short hash of the config, used as a cache key."""
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _query_value(query: dict, field: str) -> tuple[str, str | None]:
    """The link's parameter name for `field` (its URL name, or the field name) and raw value; None when absent."""
    for name in (_QUERY_NAMES.get(field, field), field):
        if name in query:
            return name, str(query[name])
    return field, None


def _replace_fitting_loss(config: ExperimentConfig, changes: dict) -> ExperimentConfig:
    """`config.replace(**changes)`, with `loss="mse"` added when only that makes the changed run valid."""
    try:
        return config.replace(**changes)
    except ConfigError:
        try:
            fitted = config.replace(**{**changes, "loss": "mse"}) if "loss" not in changes else None
        except ConfigError:
            fitted = None
        if fitted is None or fitted.task != "regression":
            raise
        return fitted


def _parse_query_value(key: str, raw: str, default):
    """`raw` read as the type of `default`; raises ConfigError naming `key` when it does not parse."""
    try:
        if key in ("hidden_layers", "conv_filters"):
            return tuple(int(v) for v in raw.split(",") if v.strip()) if raw != "none" else ()
        if key in ("input_features", "layer_activations"):
            return tuple(v.strip() for v in raw.split(",") if v.strip()) if raw != "none" else ()
        if key == "optimizer_options":
            pairs = [p.split(":", 1) for p in raw.split(";") if p]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("expected name:value pairs separated by ';'")
            return tuple((k, float(v)) for k, v in pairs)
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes")
        return type(default)(raw)
    except ValueError as err:
        raise ConfigError(f"{key}: cannot read {raw!r} from the link ({err}).") from err


def _check_range(name: str, value, low, high) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number between {low} and {high}; got {value}.")
    if not (low <= value <= high):
        raise ConfigError(f"{name} must be between {low} and {high}; got {value}.")


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(str(a) for a in allowed)}; got {value!r}.")


def validate(c: ExperimentConfig) -> None:
    """Check every field; raise `ConfigError` naming the first bad field and its allowed range."""
    _check_choice("dataset", c.dataset, DATASETS)
    _check_choice("architecture", c.architecture, ARCHITECTURES)
    _check_choice("activation", c.activation, tuple(ACTIVATIONS))
    _check_choice("optimizer", c.optimizer, tuple(OPTIMIZERS))
    _check_choice("loss", c.loss, LOSSES)
    _check_choice("lr_schedule", c.lr_schedule, LR_SCHEDULES)
    _check_range("n_samples", c.n_samples, 20, 70000)
    _check_range("noise", c.noise, 0.0, 0.5)
    _check_range("train_fraction", c.train_fraction, 0.1, 0.9)
    _check_range("seed", c.seed, 0, 2**31 - 1)
    _check_range("number of hidden layers", len(c.hidden_layers), 0, MAX_HIDDEN_LAYERS)
    for i, units in enumerate(c.hidden_layers, start=1):
        _check_range(f"units in hidden layer {i}", units, 1, MAX_UNITS)
    _check_range("number of conv blocks", len(c.conv_filters), 1, MAX_CONV_BLOCKS)
    for i, filters in enumerate(c.conv_filters, start=1):
        _check_range(f"filters in conv block {i}", filters, 1, MAX_FILTERS)
    _check_choice("kernel_size", c.kernel_size, (1, 3, 5, 7))
    _check_range("learning_rate", c.learning_rate, 1e-6, 100.0)
    _check_range("batch_size", c.batch_size, 1, 4096)
    _check_range("epochs", c.epochs, 1, 2000)
    _check_range("l1", c.l1, 0.0, 1.0)
    _check_range("l2", c.l2, 0.0, 1.0)
    _check_range("dropout", c.dropout, 0.0, 0.9)
    ranges = optimizer_param_ranges(c.optimizer)
    for name, value in c.optimizer_options:
        if name not in ranges:
            raise ConfigError(
                f"optimizer_options: {c.optimizer} has no parameter {name!r}; "
                f"allowed: {', '.join(ranges) or 'none'}."
            )
        _check_range(f"optimizer_options: {name}", value, *ranges[name])
    if c.architecture in CONV_ARCHITECTURES and not c.is_image:
        raise ConfigError(f"architecture {c.architecture!r} needs an image dataset; {c.dataset!r} is 2D points.")
    if c.architecture == "resnet":
        _check_residual(c.conv_filters)
    _check_features(c)
    _check_layer_activations(c)
    _check_choice("csv_task", c.csv_task, TASKS)
    if c.data_id and not (len(c.data_id) == 16 and all(ch in "0123456789abcdef" for ch in c.data_id)):
        raise ConfigError(f"data_id must be the 16 hex digits of an uploaded table's hash; got {c.data_id!r}.")
    if c.task == "regression" and c.loss != "mse":
        raise ConfigError(f"loss must be 'mse' for a regression dataset ({c.dataset!r} predicts a number, not a "
                          f"class); got {c.loss!r}.")


def _check_residual(filters: tuple[int, ...]) -> None:
    # A stem conv and then blocks of two convs, each block added to its input: an identity skip needs the
    # block's input and output to have the same number of channels, hence one width throughout.
    if len(filters) < 3 or len(filters) % 2 == 0:
        raise ConfigError(f"conv_filters: a resnet has a stem conv and blocks of two convs, so 3, 5, 7, 9 or 11 "
                          f"conv layers; got {len(filters)}.")
    if len(set(filters)) != 1:
        raise ConfigError(f"conv_filters: a resnet's identity skips need the same number of filters in every conv "
                          f"layer; got {','.join(map(str, filters))}.")


def _check_features(c: ExperimentConfig) -> None:
    unknown = [f for f in c.input_features if f not in PLANE_FEATURES]
    if unknown or not c.input_features:
        raise ConfigError(f"input_features must be a non-empty subset of {', '.join(PLANE_FEATURES)}; "
                          f"got {', '.join(unknown) if unknown else 'none'}.")
    if c.is_image and c.input_features != DEFAULT_FEATURES:
        raise ConfigError(f"input_features only apply to 2D points; {c.dataset!r} is images, which need "
                          f"{','.join(DEFAULT_FEATURES)}; got {','.join(c.input_features)}.")


def _check_layer_activations(c: ExperimentConfig) -> None:
    if not c.layer_activations:
        return
    if len(c.layer_activations) != len(c.hidden_layers):
        raise ConfigError(f"layer_activations must give one activation per hidden layer ({len(c.hidden_layers)}) "
                          f"or none; got {len(c.layer_activations)}: {','.join(c.layer_activations)}.")
    for i, name in enumerate(c.layer_activations, start=1):
        _check_choice(f"layer_activations: hidden layer {i}", name, tuple(ACTIVATIONS))
