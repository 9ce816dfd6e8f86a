import io
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from apptest_helpers import DASHBOARD, TIMEOUT, assert_clean, chart_specs, open_dashboard
from streamlit.testing.v1 import AppTest

from models.activation_lab import gradient_ratio
from models.backprop import tiny_weights, update_ratios


@pytest.fixture(scope="module")
def app():
    """The dashboard after the Playground trained a small circle model."""
    at = open_dashboard({"epochs": "5", "n_samples": "100"})
    assert_clean(at)
    return at


def test_forward_pass_of_a_point(app):
    app.switch_page("pages/forward_pass.py").run()
    assert_clean(app)
    (prediction,) = app.metric
    label, confidence = prediction.value.split(": ")
    assert label in ("outer ring", "inner disc") and 0.5 <= float(confidence) <= 1
    titles = [s.get("title") for s in chart_specs(app)]
    assert titles[-1] == "Softmax: probability of each class"
    assert any(t.startswith("dense_1 (Dense)") for t in titles) and any(
        t.startswith("act_2 (Activation)") for t in titles
    )


def test_forward_pass_refuses_a_lambda_upload(app, tmp_path):
    app.switch_page("pages/forward_pass.py").run()
    app.radio(key="fp_source").set_value("Upload a .keras model").run()
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    model.save(tmp_path / "evil.keras")
    app.get("file_uploader")[0].upload("evil.keras", (tmp_path / "evil.keras").read_bytes()).run()
    assert not app.exception
    assert any("contains code" in e.value for e in app.error)
    app.radio(key="fp_source").set_value("A model trained in this session").run()
    assert_clean(app)


def test_forward_pass_of_an_uploaded_sequential_model(app, tmp_path):
    """Item 1 of issue 10: a Sequential .keras file, as saved from a notebook, showed a traceback."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="tanh", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="probs")])
    model.save(tmp_path / "notebook.keras")
    app.switch_page("pages/forward_pass.py").run()
    app.radio(key="fp_source").set_value("Upload a .keras model").run()
    app.get("file_uploader")[0].upload("notebook.keras", (tmp_path / "notebook.keras").read_bytes(),
                                       "application/octet-stream").run()
    assert_clean(app)
    x = np.array([[app.slider(key="fp_x1").value, app.slider(key="fp_x2").value]], dtype="float32")
    probabilities = model.predict(x, verbose=0)[0]  # the page must show what Keras itself predicts
    best = int(np.argmax(probabilities))
    assert app.metric[0].value == f"class {best}: {probabilities[best]:.2f}"
    titles = [s.get("title") for s in chart_specs(app)]
    assert titles[0].startswith("hidden (Dense)") and titles[-1] == "Softmax: probability of each class"
    app.radio(key="fp_source").set_value("A model trained in this session").run()
    assert_clean(app)


def _softmax_with_bias(bias: list[float]) -> keras.Model:
    """A 2-input, 3-class model whose prediction is softmax(bias) for every input: same architecture and names
    for every bias, so the saved files differ only in the weights' bytes."""
    model = keras.Sequential([keras.Input((2,), name="point"), keras.layers.Dense(3, activation="softmax",
                                                                                  name="probs")], name="m")
    model.get_layer("probs").set_weights([np.zeros((2, 3), "float32"), np.array(bias, "float32")])
    return model


def test_forward_pass_reloads_a_different_upload_with_the_same_name_and_size(app, tmp_path):
    """Issue 11 item 6: uploads were cached by (name, size), so a second file of the same name and size showed the
    first model's prediction; the cache key is now the content's SHA-256 (pages/forward_pass.py)."""
    models, files = {}, {}
    for label, bias in {"A": [2.0, 0.0, 0.0], "B": [0.0, 0.0, 3.0]}.items():
        models[label] = _softmax_with_bias(bias)
        models[label].save(tmp_path / f"{label}.keras")
        files[label] = (tmp_path / f"{label}.keras").read_bytes()
    assert len(files["A"]) == len(files["B"]) and files["A"] != files["B"]
    app.switch_page("pages/forward_pass.py").run()
    app.radio(key="fp_source").set_value("Upload a .keras model").run()
    for label in ("A", "B"):
        app.get("file_uploader")[0].upload("m.keras", files[label], "application/octet-stream").run()
        assert_clean(app)
        x = np.array([[app.slider(key="fp_x1").value, app.slider(key="fp_x2").value]], dtype="float32")
        probabilities = models[label].predict(x, verbose=0)[0]  # Keras' own prediction for the file just uploaded
        best = int(np.argmax(probabilities))
        assert app.metric[0].value == f"class {best}: {probabilities[best]:.2f}", f"model {label}"
    app.radio(key="fp_source").set_value("A model trained in this session").run()
    assert_clean(app)


def _step_lowers_the_loss(lr: float, seed: int = 0, target: float = 1.0) -> bool:
    """Whether one gradient step of the page's hand-worked network lowers its loss, by TensorFlow alone.

    The page's other defaults: 2-3-1 network, tanh, x = (0.5, -1.0), squared error of a sigmoid output.
    """
    w = {k: tf.Variable(v) for k, v in tiny_weights(2, 3, seed).items()}
    x = tf.constant([0.5, -1.0], tf.float64)

    def loss():
        hidden = tf.tanh(tf.linalg.matvec(w["W1"], x) + w["b1"])
        return tf.reduce_sum((tf.sigmoid(tf.linalg.matvec(w["W2"], hidden) + w["b2"]) - target) ** 2)

    with tf.GradientTape() as tape:
        before = loss()
    for name, g in tape.gradient(before, w).items():
        w[name].assign_sub(lr * g)
    return float(loss()) < float(before)


def _outcome(app) -> str:
    downhill = any("went downhill" in s.value for s in app.success)
    overshot = any("overshot" in w.value for w in app.warning)
    assert downhill != overshot  # exactly one verdict
    return "downhill" if downhill else "overshot"


def _first_mark(spec: dict) -> str:
    mark = spec["layer"][0]["mark"]
    return mark if isinstance(mark, str) else mark["type"]


def test_backprop_views(app):
    app.switch_page("pages/backprop.py").run()
    assert_clean(app)
    assert _outcome(app) == ("downhill" if _step_lowers_the_loss(0.5) else "overshot")
    table = app.dataframe[1].value
    assert (abs(table["chain rule"] - table["autodiff"]) < 1e-6).all()
    # Reference: the update rule w <- w - lr * g, with the default learning rate 0.5.
    assert (abs(table["after step"] - (table["value"] - 0.5 * table["chain rule"])) < 1e-9).all()
    assert [s.get("title") for s in chart_specs(app)] == ["Every weight before and after the step"]
    app.select_slider(key="bp_lr").set_value(30.0).run()
    assert _outcome(app) == ("downhill" if _step_lowers_the_loss(30.0) else "overshot")
    app.number_input(key="bp_seed").set_value(7).run()
    app.radio(key="bp_y").set_value(0).run()
    assert not _step_lowers_the_loss(30.0, seed=7, target=0.0)  # the case set up to overshoot
    assert _outcome(app) == "overshot"
    app.number_input(key="bp_seed").set_value(0).run()
    app.radio(key="bp_y").set_value(1).run()
    app.radio(key="bp_view").set_value("Gradient flow during training").run()
    assert_clean(app)
    titles = [s.get("title") for s in chart_specs(app)]
    assert "Update-to-weight ratio per layer" in titles and "Activation distributions over training" in titles
    app.radio(key="bp_view").set_value("Learning-rate range test").run()
    assert_clean(app)
    (spec,) = chart_specs(app)
    assert spec["title"] == "Learning-rate range test"
    assert _first_mark(spec) == "rect" and any("Suggested range (shaded)" in c.value for c in app.caption)


def test_range_test_on_a_flat_curve_says_no_clear_range(app):
    """Issue 10 item 3: rates of 1e-6 to 1e-5 barely move the weights, so the curve is flat and nothing is shaded."""
    app.switch_page("pages/backprop.py").run()
    app.radio(key="bp_view").set_value("Learning-rate range test").run()
    app.select_slider(key="bp_range").set_value((1e-6, 1e-5)).run()
    assert_clean(app)
    (spec,) = chart_specs(app)
    assert spec["layer"][0]["mark"]["type"] == "text" and spec["layer"][0]["mark"]["text"] == "no clear range"
    assert any(i.value.startswith("No clear range") for i in app.info)
    assert not any("Suggested range" in c.value for c in app.caption)


def test_forward_pass_with_an_uploaded_image_on_digits():
    at = open_dashboard({"dataset": "circle", "epochs": "2", "n_samples": "100"}, page="pages/activation_lab.py")
    for key, value in {
        "al_activations": ["relu", "tanh"],
        "al_dataset": "digits",
        "al_epochs": 2,
        "al_n_samples": 300,
        "al_batch": 32,
    }.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/forward_pass.py").run()
    digits = next(key for key, r in at.session_state["trained_runs"].items() if r.config.dataset == "digits")
    at.selectbox(key="fp_model_pick").set_value(digits).run()
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, format="PNG")
    at.get("file_uploader")[0].upload("seven.png", buf.getvalue()).run()
    assert_clean(at)
    assert any("resized 64x64 -> 8x8" in m.value and "inverted" in m.value for m in at.markdown)


def _fresh(page: str) -> AppTest:
    """A new session whose first run is `page` itself, with no model trained anywhere before."""
    at = AppTest.from_file(DASHBOARD, default_timeout=TIMEOUT)
    at.switch_page(page)
    return at.run()


def _only_run(at: AppTest):
    (result,) = at.session_state["trained_runs"].values()
    return result


def test_forward_pass_in_a_fresh_session_trains_a_digits_cnn_and_draws_its_conv_layers():
    """Issue 12 item 1: the Forward pass opened empty ("No trained model") until another page had trained one."""
    at = _fresh("pages/forward_pass.py")
    assert_clean(at)
    assert any(i.value.startswith("No model trained yet") for i in at.info)
    result = _only_run(at)
    assert result.config.dataset == "digits" and result.config.architecture == "cnn"
    assert result.history.test_acc[-1] >= 0.85
    assert at.selectbox(key="fp_model_pick").value == result.config.key()
    x = result.dataset.x_test[0]
    probabilities = np.asarray(result.model(x[None], training=False))[0]
    best = int(np.argmax(probabilities))
    assert at.metric[0].value == f"{result.dataset.class_names[best]}: {probabilities[best]:.2f}"
    captions = [i.caption for image in at.get("image") for i in image.proto.imgs]
    assert any(c.startswith("conv_1 (Conv2D)") for c in captions) and "input 8x8x1" in captions
    assert chart_specs(at)[-1]["title"] == "Softmax: probability of each class"
    at.run()  # the next run picks the trained model and says nothing more about a default
    assert_clean(at)
    assert not any(i.value.startswith("No model trained") for i in at.info)


@pytest.mark.parametrize("view", ["Gradient flow during training", "Learning-rate range test"])
def test_backprop_views_in_a_fresh_session_train_a_deep_default(view):
    """Issue 12 item 1: the gradient-flow and range-test views needed a model trained elsewhere first."""
    at = _fresh("pages/backprop.py")
    at.radio(key="bp_view").set_value(view).run()
    assert_clean(at)
    assert any(i.value.startswith("No model trained yet") for i in at.info)
    result = _only_run(at)
    assert result.config.hidden_layers == (8, 8, 8, 8) and result.history.test_acc[-1] >= 0.9
    titles = [s.get("title") for s in chart_specs(at)]
    if view.startswith("Gradient"):
        assert "Gradient norm per layer" in titles and "Activation distributions over training" in titles
    else:
        assert titles == ["Learning-rate range test"]
        assert any("Suggested range (shaded)" in c.value for c in at.caption)


def test_gradient_flow_captions_quote_the_model_on_screen():
    """Issue 12 item 6: the captions' numbers are those of the model on screen, recomputed here."""
    at = _fresh("pages/backprop.py")
    at.radio(key="bp_view").set_value("Gradient flow during training").run()
    result = _only_run(at)
    text = " ".join(c.value for c in at.caption)
    assert f"Mean first/last gradient ratio of this model: {gradient_ratio(result):.2e}." in text
    _, ratios = update_ratios(result)
    last = {name: float(values[-1]) for name, values in ratios.items()}
    low, high = min(last, key=last.get), max(last, key=last.get)
    steps = (result.snapshot_epochs[-1] - result.snapshot_epochs[-2]) * math.ceil(
        len(result.dataset.y_train) / result.config.batch_size)
    assert (f"Over the last {steps} steps they run from {last[low]:.1e} ({low}) to {last[high]:.1e} ({high}), "
            f"against about {1e-3 * steps:.1e}") in text
