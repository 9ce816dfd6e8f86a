import numpy as np
import pytest
from apptest_helpers import assert_clean, chart_specs, labels_in, open_dashboard


def test_playground_trains_and_shows_every_chart():
    at = open_dashboard({"epochs": "15", "n_samples": "200"})
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Train loss", "Test loss", "Train accuracy", "Test accuracy"}
    titles = [spec.get("title") for spec in chart_specs(at)]
    # The network diagram (untitled: its columns are labelled), then the boundary and the two curves.
    assert titles == [None, "Decision boundary", "Loss per epoch", "Accuracy per epoch"]
    assert {p["name"] for p in chart_specs(at)[0]["params"]} == {"node", "link"}
    assert len(at.get("image")) == 16  # one labelled tile per hidden neuron: two layers of 8
    assert "Epoch 15:" in " ".join(c.value for c in at.caption)
    assert "**Epoch 15** of 15" in [m.value for m in at.markdown]


def test_changing_a_slider_retrains_and_updates_the_link():
    at = open_dashboard({"epochs": "5", "n_samples": "100"})
    before = chart_specs(at)[2]
    at.sidebar.slider(key="pg_n_layers").set_value(3).run()
    assert_clean(at)
    assert len(at.get("image")) == 24
    assert at.query_params["hidden_layers"] == "8,8,8"
    assert chart_specs(at)[2] != before
    assert "Models trained this session: 2" in labels_in(at.sidebar)


def test_returning_to_a_trained_config_reuses_it():
    at = open_dashboard({"epochs": "5", "n_samples": "100"})
    first = next(iter(at.session_state["trained_runs"].values()))
    at.sidebar.slider(key="pg_epochs").set_value(6).run()
    at.sidebar.slider(key="pg_epochs").set_value(5).run()
    assert_clean(at)
    runs = at.session_state["trained_runs"]
    assert len(runs) == 2 and first.config.key() in runs and runs[first.config.key()] is first


def test_diverging_learning_rate_is_a_warning_not_a_crash():
    at = open_dashboard({"activation": "linear", "optimizer": "sgd", "learning_rate": "100.0", "epochs": "5"})
    assert not at.exception
    assert any("Diverged at epoch 1" in w.value for w in at.warning)
    at.sidebar.select_slider(key="pg_lr").set_value(0.03).run()  # the session keeps working
    assert_clean(at)
    # No divergence any more; the one warning left is the legitimate one: a linear model cannot separate a
    # circle, so its test accuracy stays within 10 points of always guessing the commonest class.
    run = next(reversed(at.session_state["trained_runs"].values()))
    labels = run.dataset.y_test
    assert run.status == "completed"
    assert run.history.test_acc[-1] < np.bincount(labels).max() / len(labels) + 0.10
    assert [w.value.split(":")[0] for w in at.warning] == ["This model did not learn"]


def test_bad_link_falls_back_to_defaults_with_a_warning():
    at = open_dashboard({"epochs": "lots", "n_samples": "100"})
    assert not at.exception
    assert any("could not be used" in w.value for w in at.warning)


def test_regularised_run_shows_data_loss_and_penalty_apart():
    """Reference: the run's own history; data loss + penalty is what Keras' evaluate reports (tests/test_engine.py)."""
    at = open_dashboard({"epochs": "5", "n_samples": "100", "l2": "0.01"})
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Train data loss", "Test data loss", "L1/L2 penalty", "Train accuracy", "Test accuracy"}
    result = next(iter(at.session_state["trained_runs"].values()))
    assert result.history.penalty[-1] > 0 and metrics["L1/L2 penalty"] == f"{result.history.penalty[-1]:.3g}"
    assert any("data loss" in c.value and "penalty" in c.value for c in at.caption)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_bad_optimizer_option_in_link_falls_back_for_that_field_only(optimizer):
    at = open_dashboard({"optimizer": optimizer, "optimizer_options": "momentum:5", "hidden_layers": "4",
                         "epochs": "5", "n_samples": "100"})
    assert_clean(at)
    assert [w.value.count("optimizer_options") for w in at.warning] == [1]
    run = next(iter(at.session_state["trained_runs"].values()))
    assert (run.config.optimizer, run.config.optimizer_options, run.config.hidden_layers) == (optimizer, (), (4,))
    assert len(at.get("image")) == 4
    at.sidebar.slider(key="pg_epochs").set_value(6).run()
    assert_clean(at)
    assert not at.warning  # the message is shown once, not on every rerun


def test_cnn_link_on_the_playground_keeps_working_after_the_next_change():
    at = open_dashboard({"architecture": "cnn", "dataset": "digits", "epochs": "5", "n_samples": "100"})
    assert_clean(at)
    assert len(at.warning) == 1 and "architecture" in at.warning[0].value and "dataset" in at.warning[0].value
    at.sidebar.slider(key="pg_n_layers").set_value(1).run()
    assert_clean(at)
    assert at.query_params["hidden_layers"] == "8"


def test_divergence_at_epoch_one_still_shows_the_initial_state():
    at = open_dashboard({"activation": "linear", "optimizer": "sgd", "learning_rate": "100.0", "epochs": "5"})
    assert not at.exception
    assert any("Diverged at epoch 1" in w.value for w in at.warning)
    assert "Decision boundary" in [spec.get("title") for spec in chart_specs(at)]
    assert len(at.get("image")) == 16  # the initial weights' neuron maps
    assert any("first epoch" in text for text in [w.value for w in at.warning] + [c.value for c in at.caption])
    # Reference: Keras' own evaluate of a freshly built model of the same config (the initial weights).
    from models.builders import build_model

    result = next(iter(at.session_state["trained_runs"].values()))
    fresh = build_model(result.config, result.dataset.input_shape, result.dataset.n_classes)
    fresh.compile(loss="sparse_categorical_crossentropy")
    initial = fresh.evaluate(result.dataset.x_train, result.dataset.y_train, verbose=0)
    assert any(f"started from a loss of {initial:.3g}" in w.value for w in at.warning)


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def _tile_labels(at) -> list[str]:
    return [image.proto.imgs[0].caption for image in at.get("image")]


def test_captions_quote_the_model_on_screen_and_tiles_are_labelled():
    at = open_dashboard({"epochs": "15", "n_samples": "200"})
    assert_clean(at)
    run = next(iter(at.session_state["trained_runs"].values()))
    n_test = len(run.dataset.y_test)
    right = round(run.history.test_acc[-1] * n_test)
    assert f"Here {right} of {n_test} test points" in _captions(at)
    assert _tile_labels(at)[:3] == ["L1 · n1", "L1 · n2", "L1 · n3"]


def test_one_colour_scale_for_all_neurons_quotes_the_largest_output():
    """Reference: the largest |output| of any hidden unit over the plane, by hand from the Dense weights."""
    from ui.playground_views import GRID

    at = open_dashboard({"epochs": "5", "n_samples": "100"})
    assert "Each neuron on its own scale" in _captions(at)
    at.checkbox(key="pg_shared_scale").check().run()
    assert_clean(at)
    model = next(iter(at.session_state["trained_runs"].values())).model
    a, largest = GRID.points.astype("float64"), 0.0
    for name in ("dense_1", "dense_2"):
        kernel, bias = model.get_layer(name).get_weights()
        a = np.tanh(a @ kernel + bias)
        largest = max(largest, float(np.abs(a).max()))
    assert f"full colour at |output| = {largest:.3g}" in _captions(at)


def test_a_dying_relu_network_is_explained_and_its_dead_layer_drawn_flat():
    """The issue's case: spiral, relu, three hidden layers; tests/test_diagnosis.py checks the detection."""
    at = open_dashboard({"dataset": "spiral", "activation": "relu", "hidden_layers": "8,8,8",
                         "learning_rate": "0.1"})
    assert_clean(at)
    [warning] = [w.value for w in at.warning]
    assert "hidden layer 3" in warning and "0.693" in warning and "leaky_relu" in warning
    layer_three = _tile_labels(at)[16:]
    assert layer_three == [f"L3 · n{i} · flat" for i in range(1, 9)]
    assert "Layer 3** · 8 relu neurons · 8 flat" in " ".join(m.value for m in at.markdown)

