"""A run's random draws depend only on its config: not on other runs training at the same time in the
same process (several browser sessions, or a cancelled run still finishing in its thread), and not on
the process-wide seeds. Reference: the same config trained alone in this process, which
tests/test_engine.py::test_same_config_same_numbers shows is repeatable."""

import random
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest

from models.builders import build_model
from models.config import ExperimentConfig
from models.engine import TrainResult, train

# Eight small runs that differ in seed, data, activation and architecture; between them they draw
# initial weights (dense and conv), dropout masks (seeded per layer) and shuffled batch orders.
_MLP = dict(n_samples=80, epochs=3, batch_size=16, hidden_layers=(6, 6))
_CNN = dict(n_samples=48, epochs=2, batch_size=16, architecture="cnn", conv_filters=(4, 4), hidden_layers=(),
            activation="relu", learning_rate=0.01)
CONFIGS = [
    ExperimentConfig(dataset="circle", seed=0, activation="tanh", **_MLP),
    ExperimentConfig(dataset="xor", seed=1, activation="relu", **_MLP),
    ExperimentConfig(dataset="spiral", seed=2, activation="elu", dropout=0.3, **_MLP),
    ExperimentConfig(dataset="gaussians", seed=3, activation="gelu", l2=0.01, **_MLP),
    ExperimentConfig(dataset="moons", seed=4, activation="sigmoid", optimizer="momentum", **_MLP),
    ExperimentConfig(dataset="digits", seed=5, activation="silu", **_MLP),
    ExperimentConfig(dataset="shapes", seed=6, batch_norm=True, **_CNN),
    ExperimentConfig(dataset="digits", seed=7, **{**_CNN, "hidden_layers": (8,)}, dropout=0.5),
]


def _fingerprint(r: TrainResult) -> dict:
    """Everything a run produced except wall times."""
    h = r.history
    return {"train_loss": h.train_loss, "test_loss": h.test_loss, "train_acc": h.train_acc, "test_acc": h.test_acc,
            "grad_norms": h.grad_norms, "penalty": h.penalty, "initial": r.snapshots[0].tolist(),
            "final": r.snapshots[-1].tolist(), "state": r.state_snapshots[-1].tolist()}


def test_runs_training_at_once_in_threads_equal_their_solo_runs():
    solo = [_fingerprint(train(c)) for c in CONFIGS]
    with ThreadPoolExecutor(max_workers=len(CONFIGS)) as pool:
        together = [_fingerprint(r) for r in pool.map(train, CONFIGS)]
    same = [a == b for a, b in zip(solo, together, strict=True)]
    assert all(same), f"runs equal to their solo run: {sum(same)}/{len(same)}: {same}"


def _global_states():
    return random.getstate(), np.random.get_state()[1].tolist()


@pytest.mark.parametrize("config", [CONFIGS[2], CONFIGS[7]], ids=["mlp_dropout", "cnn_dropout"])
def test_building_neither_reads_nor_changes_the_global_seeds(config):
    shape, classes = ((2,), 2) if config.dataset == "spiral" else ((8, 8, 1), 10)
    keras.utils.set_random_seed(123)
    before = _global_states()
    a = build_model(config, shape, classes).get_weights()
    assert _global_states() == before, "building a model moved the process-wide random state"
    keras.utils.set_random_seed(456)
    b = build_model(config, shape, classes).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_training_is_unaffected_by_the_global_seeds():
    config = CONFIGS[2]  # with dropout: masks are drawn while training
    keras.utils.set_random_seed(123)
    a = _fingerprint(train(config))
    keras.utils.set_random_seed(456)
    b = _fingerprint(train(config))
    assert a == b


def test_every_weight_layer_draws_its_own_initial_weights():
    """Per-layer seeds must differ: two equal-shaped layers seeded alike would start identical."""
    model = build_model(ExperimentConfig(hidden_layers=(5, 5, 5)), (2,), 2)
    kernels = [model.get_layer(f"dense_{i}").kernel.numpy() for i in (2, 3)]
    assert not np.array_equal(*kernels)
