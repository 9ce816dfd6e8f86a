import gc
import re

import keras
import numpy as np
import pytest

from models import live_run
from models.config import ExperimentConfig
from models.datasets import load_dataset
from models.engine import History, TrainResult, flat_weights, train
from models.live_run import LiveRun

# The Playground's default problem and network (circle, 2x8 tanh, Adam 0.03, batch 10), on fewer points.
PLAYGROUND = ExperimentConfig(n_samples=120)


@pytest.fixture
def open_runs():
    """Builds LiveRuns and closes them after the test."""
    runs = []

    def make(config: ExperimentConfig) -> LiveRun:
        runs.append(LiveRun(config))
        return runs[-1]

    yield make
    for run in runs:
        run.close()


def assert_same_training(a: TrainResult, b: TrainResult) -> None:
    for name in ("train_loss", "test_loss", "train_acc", "test_acc", "penalty", "grad_norms"):
        np.testing.assert_allclose(getattr(a.history, name), getattr(b.history, name), rtol=1e-5, atol=1e-7,
                                   err_msg=name)
    assert a.snapshot_epochs == b.snapshot_epochs
    np.testing.assert_allclose(np.stack(a.snapshots), np.stack(b.snapshots), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat_weights(a.model), flat_weights(b.model), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("changes", [
    {},  # Adam: its moment estimates must carry over between steps
    {"optimizer": "sgd"},
    {"optimizer": "momentum", "optimizer_options": (("momentum", 0.8),)},
    {"dropout": 0.2},  # the dropout masks' seed state carries over too
    {"lr_schedule": "warmup_cosine", "epochs": 20},  # the schedule counts steps across calls
    {"input_features": ("x1", "x2", "x1^2", "sin(x2)"), "layer_activations": ("relu", "sigmoid")},
    {"dataset": "multi_gaussian", "loss": "mse"},  # regression
], ids=["adam", "sgd", "momentum", "dropout", "warmup_cosine", "features_and_activations", "regression"])
def test_two_steps_of_10_equal_one_20_epoch_training(open_runs, changes):
    config = PLAYGROUND.replace(**changes)
    run = open_runs(config)
    run.step(10)
    assert run.epoch == 10 and run.result.status == "running"
    run.step(10)
    assert run.epoch == 20 and run.result.status == "running"
    assert_same_training(run.result, train(config.replace(epochs=20)))
    assert run.result.snapshot_epochs == list(range(21))


def test_starts_from_the_weights_train_starts_from(open_runs):
    run = open_runs(PLAYGROUND)
    assert run.epoch == 0 and len(run.result.history) == 0 and run.result.status == "running"
    reference = train(PLAYGROUND.replace(epochs=1))
    np.testing.assert_array_equal(run.result.initial_weights, reference.initial_weights)
    np.testing.assert_array_equal(flat_weights(run.model), reference.initial_weights)


def test_set_weight_reports_the_loss_of_the_edited_network(open_runs):
    """References: Keras' `evaluate`, and cross-entropy from a numpy forward pass of the edited weights."""
    config = PLAYGROUND.replace(l2=0.01)
    run = open_runs(config)
    run.step(3)
    before = flat_weights(run.model)
    history = [list(run.result.history.train_loss), list(run.result.history.test_loss)]
    metrics = run.set_weight("dense_2", (3, 5), 2.5)

    assert run.model.get_layer("dense_2").kernel.numpy()[3, 5] == 2.5
    changed = np.flatnonzero(flat_weights(run.model) != before)
    assert len(changed) == 1 and flat_weights(run.model)[changed[0]] == 2.5
    assert [run.result.history.train_loss, run.result.history.test_loss] == history and run.epoch == 3

    data = run.result.dataset
    run.model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        total, accuracy = run.model.evaluate(x, y, verbose=0, batch_size=1024)
        assert metrics[f"{split}_loss"] + metrics["penalty"] == pytest.approx(total, rel=1e-5)
        assert metrics[f"{split}_acc"] == pytest.approx(accuracy, abs=1e-6)
        probs = numpy_forward(run.model, x)
        assert metrics[f"{split}_loss"] == pytest.approx(np.mean(-np.log(probs[np.arange(len(y)), y])), rel=1e-5)
        assert metrics[f"{split}_acc"] == pytest.approx(np.mean(probs.argmax(axis=1) == y))
    kernels = [w for w in run.model.trainable_weights if w.path.endswith("kernel")]
    assert metrics["penalty"] == pytest.approx(0.01 * sum(np.sum(k.numpy() ** 2) for k in kernels), rel=1e-5)


def numpy_forward(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Softmax outputs of a tanh MLP computed from its weights with numpy alone."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    h = x.astype("float64")
    for layer in dense[:-1]:
        h = np.tanh(h @ layer.kernel.numpy() + layer.bias.numpy())
    logits = h @ dense[-1].kernel.numpy() + dense[-1].bias.numpy()
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_set_weight_on_a_regression_reports_the_mean_squared_error(open_runs):
    run = open_runs(PLAYGROUND.replace(dataset="plane", loss="mse"))
    run.step(2)
    metrics = run.set_weight("dense_1", (1, 0), -0.7)
    data = run.result.dataset
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        predicted = run.model.predict(x, verbose=0)[:, 0]
        assert metrics[f"{split}_loss"] == pytest.approx(np.mean((predicted - y) ** 2), rel=1e-5)
        assert np.isnan(metrics[f"{split}_acc"])


def test_set_weight_edits_a_bias_and_the_next_step_trains_from_the_edit(open_runs):
    edited, plain = open_runs(PLAYGROUND), open_runs(PLAYGROUND)
    edited.step(2)
    plain.step(2)
    edited.set_weight("output", (1,), -3.0)
    assert edited.model.get_layer("output").bias.numpy()[1] == -3.0
    edited.step(1)
    plain.step(1)
    assert edited.epoch == 3 and edited.result.history.train_loss[:2] == plain.result.history.train_loss[:2]
    assert edited.result.history.train_loss[2] != pytest.approx(plain.result.history.train_loss[2], rel=1e-3)


@pytest.mark.parametrize(("layer", "index", "value", "message"), [
    ("dense_9", (0, 0), 1.0, "No dense layer named 'dense_9'; the dense layers are dense_1, dense_2, output"),
    ("dense_1", (2, 0), 1.0, "Index (2, 0) is outside dense_1's kernel of shape (2, 8)"),
    ("output", (2,), 1.0, "Index (2,) is outside output's bias of shape (2,)"),
    ("dense_1", (0, -1), 1.0, "Index (0, -1) is outside dense_1's kernel"),
    ("dense_1", (0, 0, 0), 1.0, "must be (input, unit) for the kernel or (unit,) for the bias"),
    ("dense_1", (0, 0), float("nan"), "A weight must be a finite number; got nan"),
], ids=["layer", "kernel_row", "bias", "negative", "rank", "nan"])
def test_set_weight_names_what_is_wrong(open_runs, layer, index, value, message):
    run = open_runs(PLAYGROUND)
    before = flat_weights(run.model)
    with pytest.raises(ValueError, match=re.escape(message)):
        run.set_weight(layer, index, value)
    np.testing.assert_array_equal(flat_weights(run.model), before)


def test_a_diverging_run_stops_with_the_last_finite_weights(open_runs):
    """Plain SGD at rate 2 on a linear network overflows in epoch 3 (as `engine.train` also reports)."""
    config = PLAYGROUND.replace(activation="linear", optimizer="sgd", learning_rate=2.0)
    run = open_runs(config)
    run.step(2)
    assert run.result.status == "running"
    run.step(5)
    reference = train(config.replace(epochs=7))
    assert reference.status == "diverged" and reference.diverged_epoch == 3
    assert run.result.status == "diverged" and run.result.diverged_epoch == 3 and run.epoch == 2
    assert_same_training(run.result, reference)
    weights = flat_weights(run.model)
    assert np.isfinite(weights).all()
    np.testing.assert_array_equal(weights, run.result.snapshots[-1])
    with pytest.raises(RuntimeError, match="diverged at epoch 3; start a new one"):
        run.step(1)


def test_a_run_diverging_after_an_edit_goes_back_to_the_edited_weights(open_runs):
    run = open_runs(PLAYGROUND.replace(activation="linear", optimizer="sgd", learning_rate=2.0))
    run.step(1)
    run.set_weight("dense_1", (0, 0), 1000.0)  # overflows the next epoch
    edited = flat_weights(run.model)
    run.step(5)
    assert run.result.status == "diverged" and run.result.diverged_epoch == 2 and run.epoch == 1
    np.testing.assert_array_equal(flat_weights(run.model), edited)


def test_should_stop_pauses_and_a_later_step_goes_on_as_if_uninterrupted(open_runs):
    seen = []
    run = open_runs(PLAYGROUND)
    run.step(10, on_epoch=lambda r: seen.append(len(r.history)), should_stop=lambda: len(seen) >= 3)
    assert seen == [1, 2, 3] and run.epoch == 3 and run.result.status == "running"
    run.step(7)
    assert run.epoch == 10
    assert_same_training(run.result, train(PLAYGROUND.replace(epochs=10)))


def test_seconds_count_only_time_spent_training(open_runs):
    run = open_runs(PLAYGROUND)
    run.step(2)
    run.step(1)
    seconds = run.result.history.seconds
    assert len(seconds) == 3 and 0 < seconds[0] < seconds[1] < seconds[2]
    assert run.result.message.startswith("Trained 3 epochs in")


def test_snapshots_are_thinned_once_they_pass_the_memory_cap(open_runs, monkeypatch):
    run = open_runs(PLAYGROUND)
    size = run.result.snapshots[0].size
    monkeypatch.setattr(live_run, "MAX_SNAPSHOT_FLOATS", 6 * size)  # room for 6 snapshots
    run.step(13)
    r = run.result
    assert r.snapshot_epochs == [0, 4, 8, 12] and len(r.snapshots) == len(r.state_snapshots) == 4
    assert len(r.history) == 13
    reference = train(PLAYGROUND.replace(epochs=12))
    np.testing.assert_allclose(r.snapshots[-1], reference.snapshots[-1], rtol=1e-5, atol=1e-6)


def test_step_refuses_zero_epochs_and_a_closed_run():
    run = LiveRun(PLAYGROUND, load_dataset(PLAYGROUND))
    with pytest.raises(ValueError, match="at least 1 epoch; got epochs=0"):
        run.step(0)
    run.step(1)
    run.close()
    run.close()  # closing twice is harmless
    assert isinstance(run.result.history, History) and run.epoch == 1  # what was recorded stays readable
    with pytest.raises(RuntimeError, match="closed"):
        run.step(1)


def test_a_run_dropped_without_close_still_frees_its_graphs():
    run = LiveRun(PLAYGROUND)
    run.step(1)
    release = run._release
    del run
    gc.collect()
    assert not release.alive  # the finaliser has called EpochRunner.close


def test_a_detached_result_stays_as_it_was_when_the_run_goes_on(open_runs):
    """Other pages keep the Playground's finished run; stepping on or editing a weight must not change it.
    Reference: the engine's own 5-epoch run of the same config."""
    run = open_runs(PLAYGROUND.replace(epochs=5))
    run.step(5)
    kept = run.detached_result()
    run.step(3)
    run.set_weight("dense_1", (0, 0), 5.0)
    assert kept.status == "completed" and len(kept.history) == 5 and kept.model is not run.model
    assert_same_training(kept, train(PLAYGROUND.replace(epochs=5)))


def test_a_rerun_waits_for_the_epoch_an_interrupted_thread_is_finishing(open_runs):
    """Streamlit starts the next script thread while the interrupted one ends its epoch (runner.fastReruns):
    the new thread must see the run after that epoch, never in the middle of it."""
    import threading
    import time

    run = open_runs(PLAYGROUND.replace(epochs=50))
    first_epoch_done = threading.Event()

    def on_epoch(result):
        if len(result.history) == 1:
            first_epoch_done.set()
            time.sleep(0.3)  # the old thread is still busy when the new one looks
        elif len(result.history) == 2:
            raise RuntimeError("interrupted")  # what Streamlit raises at the old thread's next call

    def old_script():
        with pytest.raises(RuntimeError):
            run.step(50, on_epoch=on_epoch)

    thread = threading.Thread(target=old_script)
    thread.start()
    first_epoch_done.wait()
    assert run.epoch == 2  # waited for the old thread's step to end, not 1 in the middle of it
    thread.join()
