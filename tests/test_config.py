import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.config import POINT_DATASETS, ConfigError, ExperimentConfig, validate


def test_defaults_are_valid_and_playground_sized():
    c = ExperimentConfig()
    assert (c.dataset, c.n_samples, c.hidden_layers, c.epochs) == ("circle", 500, (8, 8), 100)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("learning_rate", 0.0, "learning_rate must be between"),
        ("epochs", 0, "epochs must be between 1 and 2000"),
        ("dataset", "imagenet", "dataset must be one of"),
        ("activation", "swishy", "activation must be one of"),
        ("optimizer", "adamx", "optimizer must be one of"),
        ("hidden_layers", (8,) * 11, "number of hidden layers must be between 0 and 10"),
        ("hidden_layers", (8, 0), "units in hidden layer 2 must be between 1 and 128"),
        ("conv_filters", (), "number of conv blocks must be between 1 and 12"),
        ("dropout", 0.95, "dropout must be between 0.0 and 0.9"),
        ("noise", -0.1, "noise must be between"),
        ("train_fraction", 1.0, "train_fraction must be between 0.1 and 0.9"),
        ("batch_size", 0, "batch_size must be between 1"),
    ],
)
def test_bad_values_name_the_field_and_range(field, value, words):
    with pytest.raises(ConfigError, match=words):
        ExperimentConfig(**{field: value})


def test_cnn_on_points_is_refused_with_reason():
    with pytest.raises(ConfigError, match="needs an image dataset"):
        ExperimentConfig(architecture="cnn", dataset="circle")


def test_unknown_optimizer_parameter_lists_allowed_ones():
    with pytest.raises(ConfigError, match="allowed: beta_1, beta_2"):
        ExperimentConfig(optimizer="adam", optimizer_options=(("momentum", 0.9),))


def test_round_trip_through_dict_and_query():
    c = ExperimentConfig(
        dataset="spiral", hidden_layers=(16, 8, 4), activation="relu", optimizer="momentum",
        optimizer_options=(("momentum", 0.8),), learning_rate=0.003, l2=1e-3, dropout=0.1, seed=7,
    )
    assert ExperimentConfig.from_dict(c.to_dict()) == c
    query = c.to_query()
    assert all(isinstance(v, str) for v in query.values())
    assert "epochs" not in query  # defaults stay out of the link
    assert ExperimentConfig.from_query(query) == c
    assert ExperimentConfig.from_query(ExperimentConfig(hidden_layers=()).to_query()).hidden_layers == ()


def test_query_with_garbage_gives_config_error():
    with pytest.raises(ConfigError, match="epochs"):
        ExperimentConfig.from_query({"epochs": "many"})
    with pytest.raises(ConfigError, match="learning_rate must be between"):
        ExperimentConfig.from_query({"learning_rate": "-1"})


def test_unknown_dict_key_is_refused():
    with pytest.raises(ConfigError, match="Unknown config field"):
        ExperimentConfig.from_dict({"epoch": 3})


def test_key_is_stable_and_sensitive():
    a, b = ExperimentConfig(), ExperimentConfig()
    assert a.key() == b.key()
    assert a.key() != a.replace(learning_rate=0.01).key()
    assert ExperimentConfig(optimizer_options=(("beta_1", 0.8), ("beta_2", 0.99))).key() == ExperimentConfig(
        optimizer_options=(("beta_2", 0.99), ("beta_1", 0.8))
    ).key()


@pytest.mark.parametrize(
    "optimizer, option, value",
    [("momentum", "momentum", 5.0), ("adam", "beta_1", 1e30), ("rmsprop", "rho", -0.1), ("adamw", "weight_decay", 1.0),
     ("ftrl", "l1_regularization_strength", -1.0)],
)
def test_optimizer_option_out_of_range_names_it_and_its_range(optimizer, option, value):
    with pytest.raises(ConfigError, match=f"{option} must be between"):
        ExperimentConfig(optimizer=optimizer, optimizer_options=((option, value),))


@pytest.mark.parametrize(
    "query",
    [{"learning_rate": "nan"}, {"noise": "inf"}, {"l2": "-inf"},
     {"optimizer": "momentum", "optimizer_options": "momentum:nan"},
     {"optimizer": "adam", "optimizer_options": "beta_2:inf"}],
)
def test_non_finite_values_are_refused_with_a_message(query):
    with pytest.raises(ConfigError, match="must be a finite number"):
        ExperimentConfig.from_query(query)


def test_kernel_size_outside_the_choices_is_a_config_error():
    with pytest.raises(ConfigError, match="kernel_size must be one of 1, 3, 5, 7; got 9"):
        ExperimentConfig.from_query({"kernel_size": "9"})


def test_link_with_one_bad_field_keeps_the_others():
    config, problems = ExperimentConfig.from_query_lenient(
        {"optimizer": "sgd", "optimizer_options": "momentum:5", "hidden_layers": "4", "epochs": "lots", "utm": "x"}
    )
    assert (config.optimizer, config.optimizer_options, config.hidden_layers) == ("sgd", (), (4,))
    assert config.epochs == ExperimentConfig().epochs
    assert [p.split("=")[0] for p in problems] == ["optimizer_options", "epochs"]


def test_link_the_page_cannot_train_falls_back_field_by_field():
    config, problems = ExperimentConfig.from_query_lenient(
        {"architecture": "cnn", "dataset": "digits", "epochs": "7"}, datasets=POINT_DATASETS
    )
    assert (config.dataset, config.architecture, config.epochs) == ("circle", "mlp", 7)
    assert [p.split("=")[0] for p in problems] == ["dataset", "architecture"]


_FIELDS = [f.name for f in dataclasses.fields(ExperimentConfig)]
_NUMBERS = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e30", "-1e308", "1e400", "0", "-0.0", "9" * 40, "", "none", " 3 ", "1_0"]),
)
_OPTION_NAMES = st.sampled_from(["momentum", "beta_1", "beta_2", "rho", "weight_decay", "epsilon", "", "x"])
_VALUES = st.one_of(
    _NUMBERS,
    st.lists(_NUMBERS, max_size=12).map(",".join),
    st.lists(st.tuples(_OPTION_NAMES, _NUMBERS), max_size=4).map(lambda kv: ";".join(f"{k}:{v}" for k, v in kv)),
    st.sampled_from(["cnn", "mlp", "digits", "circle", "sgd", "momentum", "adam", "relu", "true", "no", "mse"]),
    st.text(max_size=20),
)
_QUERIES = st.dictionaries(st.one_of(st.sampled_from(_FIELDS), st.text(max_size=8)), _VALUES, max_size=8)


@settings(max_examples=300, deadline=None)
@given(_QUERIES)
def test_any_link_gives_a_config_or_a_config_error(query):
    try:
        ExperimentConfig.from_query(query)
    except ConfigError:
        pass
    config, problems = ExperimentConfig.from_query_lenient(query, datasets=POINT_DATASETS)
    assert config.dataset in POINT_DATASETS and config.architecture == "mlp"
    validate(config)
    assert all(p.split("=")[0] in query for p in problems)  # every message names a field of the link


def test_layer_activations_give_each_hidden_layer_its_own():
    assert ExperimentConfig(hidden_layers=(4, 4)).hidden_activations() == ("tanh", "tanh")
    c = ExperimentConfig(hidden_layers=(4, 4), layer_activations=("relu", "sigmoid"))
    assert c.hidden_activations() == ("relu", "sigmoid")
    with pytest.raises(ConfigError, match=r"one activation per hidden layer \(2\) or none; got 3: tanh,relu,relu"):
        ExperimentConfig(hidden_layers=(4, 4), layer_activations=("tanh", "relu", "relu"))
    with pytest.raises(ConfigError, match="layer_activations: hidden layer 2 must be one of .*; got 'swishy'"):
        ExperimentConfig(hidden_layers=(4, 4), layer_activations=("tanh", "swishy"))


def test_features_and_layer_activations_round_trip_through_the_link():
    c = ExperimentConfig(input_features=("x1", "x2", "x1^2"), layer_activations=("tanh", "relu"))
    query = c.to_query()
    assert query == {"features": "x1,x2,x1^2", "layer_activations": "tanh,relu"}
    assert ExperimentConfig.from_query(query) == c
    assert ExperimentConfig.from_dict(c.to_dict()) == c
    assert ExperimentConfig.from_query_lenient(query) == (c, [])
    config, problems = ExperimentConfig.from_query_lenient({"features": "x1,x9", "epochs": "3"})
    assert config.input_features == ("x1", "x2") and config.epochs == 3
    assert [p.split("=")[0] for p in problems] == ["features"]


@pytest.mark.parametrize("query, expected", [
    ({}, ExperimentConfig()),
    ({"dataset": "spiral", "hidden_layers": "6,6,6", "activation": "relu"},
     ExperimentConfig(dataset="spiral", hidden_layers=(6, 6, 6), activation="relu")),
    ({"optimizer": "momentum", "optimizer_options": "momentum:0.8", "epochs": "40"},
     ExperimentConfig(optimizer="momentum", optimizer_options=(("momentum", 0.8),), epochs=40)),
])
def test_old_links_give_the_configs_they_gave_before(query, expected):
    c = ExperimentConfig.from_query(query)
    assert c == expected and c.to_query() == query and c.task == "classification"
    assert (c.input_features, c.layer_activations, c.csv_task, c.data_id) == (("x1", "x2"), (), "classification", "")
