"""Models trained side by side as one stacked model (models/stacked.py) against the reference: each config
trained alone by `engine.train`. Everything the engine records must agree: losses and accuracies within
1e-5, weights within 1e-4 (in practice they are bit for bit equal), gradient norms and penalty to float
rounding."""

import numpy as np
import pytest

import models.engine as engine
from models.config import ExperimentConfig
from models.datasets import load_dataset
from models.engine import flat_weights, train, train_many
from models.registry import OPTIMIZERS
from models.stacked import STACKABLE_OPTIMIZERS, StackedRunner, can_stack

SIX = ("relu", "tanh", "sigmoid", "gelu", "elu", "linear")
SMALL = ExperimentConfig(n_samples=120, epochs=6, batch_size=16, hidden_layers=(6, 6))


def _assert_same(joint, alone):
    """`joint` (trained stacked) records what `alone` (trained by itself) recorded."""
    a, b = joint.history, alone.history
    assert joint.status == alone.status and joint.diverged_epoch == alone.diverged_epoch
    assert len(a) == len(b)
    for name in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert np.allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-5, equal_nan=True), name
    assert np.allclose(a.grad_norms, b.grad_norms, rtol=1e-5, atol=1e-7)
    assert np.allclose(a.penalty, b.penalty, rtol=1e-5, atol=1e-7)
    assert joint.layer_names == alone.layer_names and joint.snapshot_epochs == alone.snapshot_epochs
    for x, y in zip(joint.snapshots, alone.snapshots, strict=True):
        assert np.allclose(x, y, rtol=0, atol=1e-4)
    assert np.array_equal(joint.initial_weights, alone.initial_weights)
    assert np.allclose(flat_weights(joint.model), flat_weights(alone.model), rtol=0, atol=1e-4)
    if alone.last_weights is not None:
        assert np.allclose(joint.last_weights, alone.last_weights, rtol=0, atol=1e-4)


def _compare(configs, **kwargs):
    """Train `configs` together (stacked) and each alone; check they agree; return the (together, alone) pairs."""
    data = load_dataset(configs[0])
    assert can_stack(configs)
    pairs = [(joint, train(config, data, **kwargs))
             for config, joint in zip(configs, train_many(configs, data, **kwargs), strict=True)]
    for (joint, alone), config in zip(pairs, configs, strict=True):
        assert joint.config == config
        _assert_same(joint, alone)
    return pairs


@pytest.mark.parametrize("activations, changes", [
    (("relu", "tanh"), {}),
    (SIX[:4], dict(optimizer="momentum", learning_rate=0.1, l2=0.01, dropout=0.3, lr_schedule="warmup_cosine")),
    (SIX, dict(l2=0.005, dropout=0.2, lr_schedule="warmup_cosine")),
    (SIX, dict(optimizer="momentum", learning_rate=0.05, l1=0.002, l2=0.01)),
], ids=["2-adam", "4-momentum-l2-dropout-schedule", "6-adam-l2-dropout-schedule", "6-momentum-l1-l2"])
def test_stacked_runs_equal_separate_runs(activations, changes):
    _compare([SMALL.replace(activation=a, **changes) for a in activations])


def test_long_run_on_a_sensitive_problem_still_equals_separate_runs():
    """A linear net cannot fit the circle, so Adam keeps oscillating and amplifies any rounding difference:
    stacking batched matmuls or batched activations drifted here by 2e-4 in loss over the 100 epochs."""
    _compare([ExperimentConfig(activation=a) for a in ("linear", "tanh")])


def test_one_model_diverging_leaves_the_others_training():
    # SGD with momentum at lr 1: the linear net blows up in epoch 6, the others train on.
    base = ExperimentConfig(n_samples=120, epochs=10, optimizer="momentum", learning_rate=1.0)
    results = [joint for joint, _ in _compare([base.replace(activation=a) for a in ("linear", "relu", "tanh",
                                                                                      "exponential")])]
    diverged = results[0]
    assert diverged.status == "diverged" and diverged.diverged_epoch == 6 and len(diverged.history) == 5
    assert np.isfinite(flat_weights(diverged.model)).all()
    assert np.array_equal(flat_weights(diverged.model), diverged.snapshots[-1])  # its last finite state
    assert [r.status for r in results[1:]] == ["completed"] * 3 and all(len(r.history) == 10 for r in results[1:])


def test_models_diverging_in_the_first_epoch_keep_their_initial_weights():
    base = ExperimentConfig(n_samples=120, epochs=5, optimizer="sgd", learning_rate=100.0)
    results = [joint for joint, _ in _compare([base.replace(activation=a) for a in ("linear", "sigmoid",
                                                                                      "exponential")])]
    assert [(r.status, r.diverged_epoch) for r in results] == [("diverged", 1), ("completed", None), ("diverged", 1)]
    assert np.array_equal(flat_weights(results[0].model), results[0].initial_weights)


@pytest.mark.parametrize("optimizer", sorted(STACKABLE_OPTIMIZERS))
def test_every_stackable_optimizer_equals_separate_runs_bit_for_bit(optimizer):
    """Bit for bit, not just within the tolerance: a last-bit difference per step is what grows into
    visibly different runs on sensitive problems (RMSprop, left out below, differed by 0.1 in loss)."""
    configs = [SMALL.replace(activation=a, optimizer=optimizer, epochs=4) for a in ("relu", "tanh", "gelu")]
    for joint, alone in _compare(configs):
        assert joint.history.train_loss == alone.history.train_loss
        assert joint.history.test_acc == alone.history.test_acc
        assert np.array_equal(flat_weights(joint.model), flat_weights(alone.model))


def test_which_optimizers_are_left_out():
    """Lamb scales each variable's step by the norm of the whole variable, which stacking would mix;
    RMSprop, Adagrad and Adadelta divide by square roots that TensorFlow computes with an approximate Rsqrt
    whose last bit depends on the tensor's layout."""
    assert set(OPTIMIZERS) - STACKABLE_OPTIMIZERS == {"lamb", "rmsprop", "adagrad", "adadelta"}
    for name in ("lamb", "rmsprop"):
        assert not can_stack([SMALL.replace(activation=a, optimizer=name) for a in ("relu", "tanh")])


@pytest.mark.parametrize("changes", [
    dict(layer_activations=("relu", "tanh")),
    dict(input_features=("x1", "x2", "x1^2", "x2^2", "sin(x1)")),
    dict(hidden_layers=()),
    dict(dataset="plane", loss="mse"),
    dict(loss="mse"),
    dict(dataset="digits", n_samples=200, hidden_layers=(12,), batch_size=32),
], ids=["per-layer-activations", "input-features", "no-hidden-layer", "regression", "mse", "digits"])
def test_other_shapes_and_losses_equal_separate_runs(changes):
    base = SMALL.replace(epochs=3, **changes)
    activations = ("sigmoid", "elu", "relu")
    if "layer_activations" in changes:
        configs = [base, base.replace(layer_activations=("elu", "linear")), base.replace(layer_activations=())]
    else:
        configs = [base.replace(activation=a) for a in activations]
    _compare(configs)


def test_xla_stacked_runs_equal_xla_separate_runs():
    """The engine compiles a stacked run with XLA exactly when it would compile each separate run."""
    base = ExperimentConfig(n_samples=60, epochs=2, batch_size=16, hidden_layers=(4,), dropout=0.2)
    _compare([base.replace(activation=a) for a in ("relu", "tanh")], jit_compile=True)


def test_what_falls_back_to_the_model_by_model_loop():
    base = SMALL.replace(activation="relu")
    assert can_stack([base, base.replace(activation="tanh")])
    assert can_stack([base, base.replace(layer_activations=("tanh", "elu"))])
    assert not can_stack([base])  # one model: the plain loop
    for changes in (dict(learning_rate=0.01), dict(optimizer="sgd"), dict(l2=0.01), dict(dropout=0.1),
                    dict(hidden_layers=(6,)), dict(loss="mse"), dict(lr_schedule="warmup_cosine"),
                    dict(optimizer_options=(("beta_1", 0.8),)), dict(input_features=("x1", "x2", "x1*x2"))):
        assert not can_stack([base, base.replace(activation="tanh", **changes)]), changes
    cnn = ExperimentConfig(dataset="shapes", n_samples=64, architecture="cnn", conv_filters=(4,), hidden_layers=(),
                           epochs=1, batch_size=16)
    assert not can_stack([cnn.replace(activation="relu"), cnn.replace(activation="tanh")])


def test_fallback_configs_still_train_together(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("configs with different learning rates must not be stacked")

    monkeypatch.setattr(engine, "StackedRunner", refuse)
    results = train_many([SMALL.replace(learning_rate=lr, epochs=2) for lr in (0.01, 0.1)])
    assert [r.status for r in results] == ["completed", "completed"]


def test_models_are_live_in_progress_callbacks_and_cancelling_keeps_the_last_epoch():
    configs = [SMALL.replace(activation=a, epochs=20, dropout=0.2) for a in ("relu", "tanh", "elu")]
    seen = []

    def check(partials):
        seen.append(len(partials[0].history))
        for r in partials:
            assert np.array_equal(flat_weights(r.model), r.snapshots[-1])

    results = train_many(configs, on_epoch=check, should_stop=lambda: len(seen) >= 4)
    assert seen == [1, 2, 3, 4]
    assert all(r.status == "cancelled" and len(r.history) == 4 for r in results)
    for r in results:
        assert np.array_equal(flat_weights(r.model), r.snapshots[-1])
        # The dropout layers' random state moved on as in a run of its own.
        alone = train(r.config.replace(epochs=4))
        for i in (1, 2):
            state = r.model.get_layer(f"dropout_{i}").seed_generator.state.numpy()
            assert np.array_equal(state, alone.model.get_layer(f"dropout_{i}").seed_generator.state.numpy())


def test_each_model_is_credited_an_equal_share_of_the_shared_epoch(monkeypatch):
    calls = []
    original = StackedRunner.run_epoch

    def timed(self, *args):
        import time

        start = time.perf_counter()
        stats = original(self, *args)
        calls.append(time.perf_counter() - start)
        return stats

    monkeypatch.setattr(StackedRunner, "run_epoch", timed)
    results = train_many([SMALL.replace(activation=a) for a in ("relu", "tanh", "elu")])
    shares = np.array([r.history.step_seconds for r in results])
    assert np.all(shares > 0) and np.all(shares == shares[0])
    assert np.all(shares.sum(axis=0) <= np.array(calls))  # the shares add up to (at most) the epoch's time
    assert results[0].seconds_per_epoch == pytest.approx(np.mean(shares[0]))
