import keras
import numpy as np
import pytest

from models.config import ExperimentConfig
from models.datasets import load_dataset
from models.engine import epoch_batches, flat_weights, per_sample_loss, set_flat_weights, train


def test_tanh_2x8_learns_the_circle():
    c = ExperimentConfig(dataset="circle", hidden_layers=(8, 8), activation="tanh", epochs=60)
    r = train(c)
    assert r.status == "completed"
    assert r.history.test_acc[-1] >= 0.95
    assert r.history.train_loss[-1] < r.history.train_loss[0] / 5


def test_history_has_every_epoch_and_layer(tiny_config):
    r = train(tiny_config)
    h = r.history
    assert len(h) == tiny_config.epochs == len(h.test_loss) == len(h.seconds) == len(h.grad_norms)
    assert r.layer_names == ["dense_1", "output"]
    assert np.asarray(h.grad_norms).shape == (tiny_config.epochs, 2) and np.all(np.asarray(h.grad_norms) > 0)
    assert r.snapshot_epochs == list(range(tiny_config.epochs + 1))
    assert np.array_equal(r.snapshots[-1], flat_weights(r.model))


def test_reported_metrics_equal_keras_evaluate(tiny_config):
    r = train(tiny_config)
    r.model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = r.model.evaluate(r.dataset.x_test, r.dataset.y_test, verbose=0, batch_size=1024)
    assert r.history.test_loss[-1] == pytest.approx(loss, rel=1e-4)
    assert r.history.test_acc[-1] == pytest.approx(acc, abs=1e-6)


def test_penalty_plus_data_loss_equals_keras_evaluate(tiny_config):
    """Reference: Keras' `evaluate`, whose loss is the data loss plus the L1/L2 penalty of the weights."""
    r = train(tiny_config.replace(l1=0.002, l2=0.01))
    r.model.compile(loss="sparse_categorical_crossentropy")
    h = r.history
    assert len(h.penalty) == len(h) and h.penalty[-1] > 0.005  # about 1% of the loss: the check below can fail
    for x, y, data_loss in ((r.dataset.x_train, r.dataset.y_train, h.train_loss[-1]),
                            (r.dataset.x_test, r.dataset.y_test, h.test_loss[-1])):
        total = r.model.evaluate(x, y, verbose=0, batch_size=1024)
        assert data_loss + h.penalty[-1] == pytest.approx(total, rel=1e-5, abs=1e-6)


def test_no_regularisation_means_no_penalty(tiny_config):
    r = train(tiny_config)
    assert r.history.penalty == [0.0] * tiny_config.epochs


def test_same_config_same_numbers(tiny_config):
    a, b = train(tiny_config), train(tiny_config)
    assert a.history.train_loss == b.history.train_loss
    assert a.history.grad_norms == b.history.grad_norms
    assert np.array_equal(a.snapshots[-1], b.snapshots[-1])
    c = train(tiny_config.replace(seed=1))
    assert c.history.train_loss != a.history.train_loss


def test_huge_learning_rate_is_reported_as_diverged():
    c = ExperimentConfig(activation="linear", optimizer="sgd", learning_rate=100.0, epochs=20)
    r = train(c)
    assert r.status == "diverged" and r.diverged_epoch == 1
    assert "Diverged at epoch 1" in r.message
    assert np.isfinite(flat_weights(r.model)).all()  # the model holds the last finite weights


def test_should_stop_cancels_between_epochs(tiny_config):
    seen = []
    r = train(tiny_config.replace(epochs=50), on_epoch=lambda p: seen.append(len(p.history)),
              should_stop=lambda: len(seen) >= 3)
    assert r.status == "cancelled" and len(r.history) == 3
    assert "Stopped after 3 of 50 epochs" in r.message


def test_initial_weights_are_used(tiny_config):
    base = train(tiny_config)
    start = base.initial_weights * 0.5
    r = train(tiny_config, initial_weights=start)
    assert np.array_equal(r.initial_weights, start)


def test_epoch_batches_cover_every_sample_once():
    idx, mask = epoch_batches(23, 5, np.random.default_rng(0))
    assert idx.shape == (5, 5) and mask.sum() == 23
    assert sorted(idx.ravel()[mask.ravel() > 0].tolist()) == list(range(23))


def test_padding_does_not_change_the_gradient():
    """A padded, masked batch must give the same step as the unpadded batch."""
    c = ExperimentConfig(hidden_layers=(3,), optimizer="sgd", learning_rate=0.1, epochs=1, batch_size=7,
                         n_samples=20, train_fraction=0.5)
    data = load_dataset(c)  # 10 training points -> batches of 7 and 3 (+4 padding)
    r = train(c, dataset=data)
    from models.builders import build_model

    model = build_model(c, (2,), 2)
    set_flat_weights(model, r.initial_weights)
    idx, _ = epoch_batches(10, 7, np.random.default_rng(c.seed + 1))
    loss_fn = per_sample_loss("cross_entropy", 2)
    import tensorflow as tf

    for batch in (idx[0], idx[1][:3]):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(data.y_train[batch], model(data.x_train[batch], training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        for v, g in zip(model.trainable_variables, grads, strict=True):
            v.assign(v - 0.1 * g)
    assert np.allclose(flat_weights(model), r.snapshots[-1], atol=1e-6)


def test_mse_loss_and_cnn_train(tiny_cnn_config):
    r = train(tiny_cnn_config.replace(loss="mse"))
    assert r.status == "completed" and r.layer_names[0] == "conv_1"
    assert 0 <= r.history.train_loss[-1] <= 1  # squared error of probabilities is bounded


def test_every_optimizer_trains(tiny_config):
    from models.registry import OPTIMIZERS

    for name in OPTIMIZERS:
        r = train(tiny_config.replace(optimizer=name, epochs=2))
        assert r.status == "completed", name
        assert not np.array_equal(r.snapshots[0], r.snapshots[-1]), name


def test_snapshots_are_thinned_when_large(monkeypatch, tiny_config):
    import models.engine as engine

    monkeypatch.setattr(engine, "MAX_SNAPSHOT_FLOATS", 30 * 10)
    r = train(tiny_config.replace(epochs=30))
    assert len(r.snapshots) < 31 and r.snapshot_epochs[0] == 0 and r.snapshot_epochs[-1] == 30
    assert keras.ops.all(keras.ops.isfinite(r.snapshots[-1]))


def test_xla_and_graph_mode_agree(tiny_config):
    a = train(tiny_config, jit_compile=False)
    b = train(tiny_config, jit_compile=True)
    assert np.allclose(a.history.train_loss, b.history.train_loss, rtol=1e-4)


def test_training_data_loss_equals_keras_evaluate(tiny_config):
    """Reference: model.evaluate with Keras' own sparse categorical cross-entropy."""
    from models.engine import training_data_loss

    r = train(tiny_config)
    r.model.compile(loss="sparse_categorical_crossentropy")
    expected = r.model.evaluate(r.dataset.x_train, r.dataset.y_train, verbose=0, batch_size=len(r.dataset.y_train))
    assert training_data_loss(r) == pytest.approx(expected, rel=1e-5)
    assert training_data_loss(r) == pytest.approx(r.history.train_loss[-1], rel=1e-5)
