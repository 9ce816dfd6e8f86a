"""The Playground's TensorFlow Playground controls, driven through AppTest: input features, an activation per
layer, regression problems, reset / play / step, editing a weight from the diagram, the URL state."""

import keras
import numpy as np
import pytest
from apptest_helpers import assert_clean, chart_specs, open_dashboard

from models.config import ExperimentConfig

QUICK = {"epochs": "10", "n_samples": "200"}


def epoch_shown(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Epoch"))


def current_run(at):
    store = at.session_state["pg_live_runs"]
    return store[at.session_state["pg_live_current"]].run


def test_squared_features_separate_the_circle_without_a_hidden_layer():
    """TensorFlow Playground's feature-engineering lesson: X1² and X2² make the circle linearly separable."""
    at = open_dashboard({"n_samples": "300", "epochs": "60", "hidden_layers": ""})
    plain = current_run(at).result.history.test_acc[-1]
    at.sidebar.multiselect(key="pg_features").set_value(["x1^2", "x2^2"]).run()
    assert_clean(at)
    squared = current_run(at).result.history.test_acc[-1]
    assert plain < 0.75 and squared >= 0.95, (plain, squared)
    assert at.query_params["features"] == "x1^2,x2^2"
    features = current_run(at).model.get_layer("features")
    assert features.compute_output_shape((None, 2)) == (None, 2)  # the first layer sees just the two squares


def test_an_activation_per_layer_reaches_the_model_and_the_link():
    at = open_dashboard(QUICK)
    at.sidebar.toggle(key="pg_per_layer").set_value(True).run()
    at.sidebar.selectbox(key="pg_act_1").set_value("relu").run()
    assert_clean(at)
    model = current_run(at).model
    assert [model.get_layer(f"act_{i}").get_config()["activation"] for i in (1, 2)] == ["tanh", "relu"]
    assert at.query_params["layer_activations"] == "tanh,relu"
    assert "**Layer 2** · 8 relu neurons" in [m.value for m in at.markdown]


@pytest.mark.parametrize("dataset", ["plane", "multi_gaussian"])
def test_regression_problems_draw_the_prediction_and_score_the_squared_error(dataset):
    """Reference: numpy's mean squared error of model.predict on the test set."""
    at = open_dashboard({**QUICK, "dataset": dataset, "loss": "mse"})
    assert_clean(at)
    titles = [spec.get("title") for spec in chart_specs(at)]
    assert titles == [None, "Prediction over the plane", "Loss per epoch"]  # no accuracy for a regression
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Train loss", "Test loss"}
    run = current_run(at).result
    data = run.dataset
    mse = float(np.mean((run.model.predict(data.x_test, verbose=0)[:, 0] - data.y_test) ** 2))
    assert float(metrics["Test loss"]) == pytest.approx(mse, rel=2e-3, abs=1e-6)


def test_dataset_choice_switches_to_the_squared_error_by_itself():
    at = open_dashboard(QUICK)
    at.sidebar.selectbox(key="pg_dataset").set_value("plane").run()
    assert_clean(at)
    assert current_run(at).result.config.loss == "mse"
    assert any("mean squared error" in c.value for c in at.sidebar.caption)


def test_reset_step_and_play():
    at = open_dashboard(QUICK)
    assert epoch_shown(at) == "**Epoch 10** of 10"  # a first visit trains at once
    at.button(key="pg_reset").click().run()
    assert epoch_shown(at) == "**Epoch 0** of 10"
    assert not current_run(at).result.history.train_loss
    at.button(key="pg_step").click().run()
    at.button(key="pg_step").click().run()
    assert epoch_shown(at) == "**Epoch 2** of 10"
    at.button(key="pg_play").click().run()
    assert epoch_shown(at) == "**Epoch 10** of 10"
    assert_clean(at)
    # Reference: the same setting trained in one go by the engine gives the same losses.
    from models.engine import train

    whole = train(current_run(at).result.config)
    assert current_run(at).result.history.train_loss == pytest.approx(whole.history.train_loss, rel=1e-5)
    at.button(key="pg_step").click().run()  # Step goes on past the Epochs setting, as in TensorFlow Playground
    assert epoch_shown(at) == "**Epoch 11** of 10"


def test_editing_a_weight_from_the_diagram_changes_the_model_and_reports_its_losses():
    """Reference: Keras' own evaluate of the edited model on the test set."""
    at = open_dashboard(QUICK)
    link = {"source_layer": 0, "source_index": 1, "target_layer": 1, "target_index": 2}
    at.session_state["pg_diagram"] = {"selection": {"link": [link]}}  # what a click on that link returns
    at.run()
    editor = at.number_input(key="pg_w_dense_1_1_2")
    editor.set_value(3.0)
    at.button(key="pg_set_weight").click().run()
    assert_clean(at)
    run = current_run(at)
    assert run.model.get_layer("dense_1").get_weights()[0][1, 2] == pytest.approx(3.0)
    model = run.model
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy())
    expected = model.evaluate(run.result.dataset.x_test, run.result.dataset.y_test, verbose=0)
    [note] = [i.value for i in at.info if i.value.startswith("dense_1[1, 2] set to 3")]
    assert f"test loss {run.result.history.test_loss[-1]:.4g} → {expected:.4g}" in note
    assert len(run.result.history) == 10  # a hand edit is not an epoch


def test_the_link_holds_the_whole_state_and_old_links_still_work():
    config = ExperimentConfig(dataset="spiral", hidden_layers=(8, 8, 8, 8), input_features=("x1", "x2", "sin(x1)"),
                              layer_activations=("tanh", "tanh", "relu", "relu"), epochs=5, n_samples=200)
    at = open_dashboard(config.to_query())
    assert_clean(at)
    assert current_run(at).result.config == config
    old = open_dashboard({"dataset": "xor", "epochs": "5", "n_samples": "100"})  # a link from before issue 13
    assert current_run(old).result.config == ExperimentConfig(dataset="xor", epochs=5, n_samples=100)


def test_clicking_a_neuron_shows_its_map_large():
    """Reference: the unit's own output over the plane, from a Keras sub-model (models.network_weights)."""
    from models.network_weights import node_maps
    from ui.playground_diagram import DIAGRAM_GRID

    at = open_dashboard(QUICK)
    # What Streamlit returns for a click on a node: the other param holds an empty record.
    at.session_state["pg_diagram"] = {"selection": {"node": [{"layer": 2, "index": 4}], "link": [{}]}}
    at.run()
    assert_clean(at)
    values = node_maps(current_run(at).model, DIAGRAM_GRID)[2][4]
    captions = [c for image in at.get("image") for c in image.captions]
    assert f"layer 2, neuron 5: from {values.min():.3g} to {values.max():.3g} over the plane" in captions


def test_show_test_data_and_discretise_change_the_boundary():
    from ui.playground_views import boundary_chart, points_frame

    at = open_dashboard(QUICK)
    run = current_run(at).result
    assert set(points_frame(run.dataset, show_test=False).split) == {"train"}
    cells = next(rows for rows in boundary_chart(run, discrete=True).to_dict()["datasets"].values()
                 if rows and "p" in rows[0])
    assert {row["p"] for row in cells} <= {0.0, 1.0}  # the predicted class, not a probability
    before = chart_specs(at)[1]
    at.toggle(key="pg_show_test").set_value(False).run()
    at.toggle(key="pg_discrete").set_value(True).run()
    assert_clean(at)
    assert chart_specs(at)[1] != before
