"""The Feature Hierarchy's default CNN learns on every seed, with margin (not on one lucky seed)."""

import pytest

from models.engine import train
from models.recipes import DEFAULT_CNN


@pytest.mark.parametrize("seed", [1, 2])  # seed 0 is trained by tests/test_features.py's fixture
def test_default_cnn_learns_the_shapes_on_other_seeds(seed):
    # Target 0.95 (issue 9); measured 0.999-1.000 on seeds 0-4 with this recipe. The old recipe (no batch
    # norm, constant learning rate) reached 0.30 on seed 0: it sat on the edge of learning.
    result = train(DEFAULT_CNN.replace(seed=seed))
    assert result.status == "completed" and result.history.test_acc[-1] >= 0.97


@pytest.mark.parametrize("seed", [0, 1])
def test_default_cnn_learns_the_digits(seed):
    # Target 0.97; measured 0.980-0.996 on seeds 0-4 (all 1797 digits, half for testing).
    result = train(DEFAULT_CNN.replace(dataset="digits", seed=seed))
    assert result.history.test_acc[-1] >= 0.97
