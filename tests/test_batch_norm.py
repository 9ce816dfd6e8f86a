"""Batch normalisation (on by default for the Feature Hierarchy's CNN) must not break the other pages:
Loss Landscape's stateless evaluation, the Hessian, the forward pass, and replays of snapshots."""

import numpy as np
import pytest
import tensorflow as tf

from models.builders import build_model
from models.config import ExperimentConfig
from models.engine import flat_state, restore_snapshot, train
from models.forward import forward_trace
from models.landscape import SurfaceEvaluator, loss_function, top_hessian_eigenvalue

BN_CNN = ExperimentConfig(dataset="shapes", n_samples=120, noise=0.0, architecture="cnn", conv_filters=(4, 6),
                          hidden_layers=(), batch_norm=True, activation="relu", epochs=3, batch_size=16,
                          learning_rate=0.01, lr_schedule="warmup_cosine")


@pytest.fixture(scope="module")
def bn_result():
    return train(BN_CNN)


def test_batch_norm_sits_between_conv_and_activation(bn_result):
    names = [layer.name for layer in bn_result.model.layers]
    assert names[1:4] == ["conv_1", "conv_bn_1", "conv_act_1"]
    assert not bn_result.model.get_layer("conv_1").use_bias  # batch norm's beta replaces it
    assert flat_state(bn_result.model).size == 2 * (4 + 6)  # moving mean and variance per channel


def test_training_moves_the_batch_statistics(bn_result):
    first, last = bn_result.state_snapshots[0], bn_result.state_snapshots[-1]
    assert len(bn_result.state_snapshots) == len(bn_result.snapshots)
    assert not np.allclose(first, last)
    assert np.array_equal(last, flat_state(bn_result.model))


def test_replayed_snapshots_predict_like_the_model(bn_result):
    """Reference: the trained model itself (final epoch) and a freshly built model (epoch 0)."""
    r, x = bn_result, bn_result.dataset.x_test[:16]
    replay = build_model(r.config, r.dataset.input_shape, r.dataset.n_classes)
    restore_snapshot(replay, r, len(r.snapshots) - 1)
    assert np.allclose(replay.predict(x, verbose=0), r.model.predict(x, verbose=0), atol=1e-5)
    restore_snapshot(replay, r, 0)
    fresh = build_model(r.config, r.dataset.input_shape, r.dataset.n_classes)
    assert np.allclose(replay.predict(x, verbose=0), fresh.predict(x, verbose=0), atol=1e-6)


def test_stateless_surface_centre_equals_keras_evaluate(bn_result):
    r = bn_result
    x, y = r.dataset.x_train[:64], r.dataset.y_train[:64]
    evaluator = SurfaceEvaluator(r.model, x, y, "cross_entropy", r.dataset.n_classes)
    loss, acc = evaluator.evaluate(r.snapshots[-1], np.zeros((1, r.snapshots[-1].size), "float32"),
                                   np.zeros((1, 1), "float32"))[0]
    r.model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_loss, keras_acc = r.model.evaluate(x, y, verbose=0, batch_size=64)
    assert loss == pytest.approx(keras_loss, rel=1e-4) and acc == pytest.approx(keras_acc, abs=1e-6)


def test_top_hessian_eigenvalue_matches_the_full_hessian(bn_result):
    """Reference: the full Hessian of the same loss by tf.GradientTape (jacobian of the gradient) and
    numpy.linalg.eigvalsh; the top eigenvalue is the most positive one."""
    r = bn_result
    evaluator = SurfaceEvaluator(r.model, r.dataset.x_train[:32], r.dataset.y_train[:32], "cross_entropy",
                                 r.dataset.n_classes)
    loss_of = loss_function(evaluator)
    w = tf.constant(r.snapshots[-1])
    with tf.GradientTape() as outer:
        outer.watch(w)
        with tf.GradientTape() as inner:
            inner.watch(w)
            loss = loss_of(w)
        grad = inner.gradient(loss, w)
    hessian = outer.jacobian(grad, w).numpy().astype("float64")
    eigenvalues = np.linalg.eigvalsh((hessian + hessian.T) / 2)
    assert top_hessian_eigenvalue(loss_of, r.snapshots[-1], iterations=100) == pytest.approx(eigenvalues.max(),
                                                                                             rel=0.02)


def test_forward_trace_through_batch_norm(bn_result):
    """Reference: batch norm's inference formula gamma * (x - mean) / sqrt(var + eps) + beta, and model.predict."""
    r, x = bn_result, bn_result.dataset.x_test[0]
    steps = {s.name: s.output for s in forward_trace(r.model, x)}
    bn = r.model.get_layer("conv_bn_1")
    expected = (bn.gamma.numpy() * (steps["conv_1"] - bn.moving_mean.numpy())
                / np.sqrt(bn.moving_variance.numpy() + bn.epsilon) + bn.beta.numpy())
    assert np.allclose(steps["conv_bn_1"], expected, atol=1e-5)
    assert np.allclose(steps["output"], r.model.predict(x[None], verbose=0)[0], atol=1e-6)


def test_warmup_cosine_schedule_shape():
    """Reference: the schedule's formula, linear warm-up to the peak over one epoch then a half cosine to 0."""
    from models.engine import learning_rate_for

    config = ExperimentConfig(learning_rate=0.01, lr_schedule="warmup_cosine", epochs=10)
    schedule = learning_rate_for(config, steps_per_epoch=20)
    rates = np.array([float(schedule(step)) for step in (0, 10, 20, 110, 200)])
    assert rates == pytest.approx([0.0, 0.005, 0.01, 0.005, 0.0], abs=1e-6)
    assert learning_rate_for(config.replace(lr_schedule="constant"), 20) == 0.01
