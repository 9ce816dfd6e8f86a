import pytest

from models.config import ConfigError, ExperimentConfig


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
        ("conv_filters", (), "number of conv blocks must be between 1 and 6"),
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
