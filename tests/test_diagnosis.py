import numpy as np
import pytest

from models.config import ExperimentConfig
from models.diagnosis import (
    chance_accuracy,
    chance_loss,
    dead_layers,
    learning_warning,
    loss_stuck_at_chance,
    near_chance,
    not_learned_message,
)


def test_chance_is_the_majority_class_share():
    """Reference: the majority-class baseline of scikit-learn's DummyClassifier(strategy="most_frequent")."""
    from sklearn.dummy import DummyClassifier

    labels = np.array([0, 1, 2, 3] * 5 + [2, 2])
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(labels), 1)), labels)
    assert chance_accuracy(labels) == pytest.approx(dummy.score(np.zeros((len(labels), 1)), labels))
    with pytest.raises(ValueError, match="empty"):
        chance_accuracy(np.array([], dtype=int))


def test_within_ten_points_of_chance_is_flagged():
    four = np.arange(400) % 4  # chance 25%
    assert near_chance(0.30, four) and near_chance(0.349, four)
    assert not near_chance(0.36, four) and not near_chance(0.98, four)


def test_message_names_the_numbers_and_what_to_try():
    four = np.arange(400) % 4
    message = not_learned_message(0.30, four, "cnn", batch_norm=False, learning_rate=0.003)
    assert "30%" in message and "25%" in message and "batch normalisation" in message and "0.003" in message
    assert "batch normalisation" not in not_learned_message(0.30, four, "cnn", batch_norm=True, learning_rate=0.01)
    assert not_learned_message(0.91, four, "cnn", batch_norm=False, learning_rate=0.003) is None


# The case: spiral, relu, three hidden layers; at this learning rate the third layer dies on every seed.
DYING = dict(dataset="spiral", activation="relu", hidden_layers=(8, 8, 8), learning_rate=0.1)
SEEDS = (0, 1, 2)


def _hidden_outputs(model, x):
    """Every hidden layer's outputs by hand, from the Dense weights alone (the oracle for the layer health)."""
    outputs, a = [], x.astype("float64")
    for i in range(1, len(model.layers)):
        name = f"dense_{i}"
        if name not in [layer.name for layer in model.layers]:
            break
        kernel, bias = (np.asarray(w, dtype="float64") for w in model.get_layer(name).get_weights())
        a = np.maximum(a @ kernel + bias, 0.0)  # relu
        outputs.append(a)
    return outputs


def test_chance_loss_is_the_loss_of_predicting_the_class_shares():
    """Reference: Keras' own losses of a constant prediction equal to the class shares."""
    import keras

    labels = np.array([0] * 30 + [1] * 50 + [2] * 20)
    shares = np.bincount(labels) / len(labels)
    constant = np.tile(shares, (len(labels), 1))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()(labels, constant)
    mse = keras.losses.MeanSquaredError()(keras.ops.one_hot(labels, 3), constant)
    assert chance_loss(labels, "cross_entropy", 3) == pytest.approx(float(cross_entropy), rel=1e-5)
    assert chance_loss(labels, "mse", 3) == pytest.approx(float(mse), rel=1e-5)
    assert chance_loss(np.arange(10) % 2, "cross_entropy", 2) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="hinge"):
        chance_loss(labels, "hinge", 3)


def test_stuck_means_no_recent_epoch_beat_chance():
    assert loss_stuck_at_chance([0.9, 0.70, 0.693, 0.694, 0.71, 0.6931], np.log(2))
    assert not loss_stuck_at_chance([0.9, 0.70, 0.693, 0.60, 0.71, 0.6931], np.log(2))
    assert not loss_stuck_at_chance([0.7, 0.7], np.log(2))  # too few epochs to tell


@pytest.mark.parametrize("seed", SEEDS)
def test_the_dying_relu_spiral_is_detected_and_explained(seed):
    from models.engine import train

    result = train(ExperimentConfig(**DYING, seed=seed))
    x = result.dataset.x_train
    constant = [f"act_{i + 1}" for i, a in enumerate(_hidden_outputs(result.model, x)) if np.ptp(a, axis=0).max() == 0]
    assert "act_3" in constant  # the oracle: the third layer outputs the same values for every input
    assert dead_layers(result) == constant
    chance = np.log(2)  # two balanced classes
    assert min(result.history.train_loss[-5:]) > 0.98 * chance
    message = learning_warning(result)
    assert "hidden layer 3" in message and f"{chance:.3f}" in message
    assert "lower learning rate (now 0.1)" in message and "leaky_relu" in message and "fewer hidden layers" in message


@pytest.mark.parametrize("seed", SEEDS)
def test_a_healthy_circle_run_is_not_flagged(seed):
    from models.engine import train

    result = train(ExperimentConfig(seed=seed, epochs=30))
    assert result.history.test_acc[-1] > 0.9  # the reference: it did learn
    assert dead_layers(result) == []
    assert not loss_stuck_at_chance(result.history.train_loss, chance_loss(result.dataset.y_train, "cross_entropy", 2))
    assert learning_warning(result) is None


def test_a_linear_network_on_the_circle_is_told_to_add_a_non_linearity():
    from models.engine import train

    result = train(ExperimentConfig(activation="linear", epochs=20, n_samples=200))
    message = learning_warning(result)
    assert message.startswith("This model did not learn:") and "non-linear activation" in message
    assert "hidden layer" not in message.split("Try")[0]  # linear units never die


def test_regression_chance_is_the_variance_and_there_is_no_accuracy_check():
    """Reference: Keras' MSE of always predicting the mean target."""
    import keras

    targets = np.random.default_rng(0).uniform(-1, 1, 200).astype("float32")
    mse = keras.losses.MeanSquaredError()(targets, np.full_like(targets, targets.mean()))
    assert chance_loss(targets, "mse", 0) == pytest.approx(float(mse), rel=1e-5)
    with pytest.raises(ValueError, match="only the loss 'mse'"):
        chance_loss(targets, "cross_entropy", 0)
    assert not near_chance(float("nan"), targets)


def test_regression_runs_are_judged_by_their_loss():
    from models.engine import train

    healthy = train(ExperimentConfig(dataset="plane", loss="mse", epochs=30))
    assert learning_warning(healthy) is None
    stuck = train(ExperimentConfig(dataset="multi_gaussian", loss="mse", optimizer="sgd", learning_rate=1e-6,
                                   epochs=6))
    chance = chance_loss(stuck.dataset.y_train, "mse", 0)
    assert min(stuck.history.train_loss[-5:]) > 0.98 * chance  # the reference: no better than the mean
    message = learning_warning(stuck)
    assert f"{chance:.3f}" in message and "predicting the mean target" in message
    assert "did not learn" not in message  # no accuracy to compare with chance
