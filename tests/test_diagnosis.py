import numpy as np
import pytest

from models.diagnosis import chance_accuracy, near_chance, not_learned_message


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
