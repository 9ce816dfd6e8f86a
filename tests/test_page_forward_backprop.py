import io

import keras
import pytest
from apptest_helpers import assert_clean, chart_specs, open_dashboard


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


def test_backprop_views(app):
    app.switch_page("pages/backprop.py").run()
    assert_clean(app)
    assert any("went downhill" in s.value for s in app.success)
    table = app.dataframe[1].value
    assert (abs(table["chain rule"] - table["autodiff"]) < 1e-6).all()
    app.select_slider(key="bp_lr").set_value(30.0).run()
    assert any("overshot" in w.value for w in app.warning) or any("downhill" in s.value for s in app.success)
    app.radio(key="bp_view").set_value("Gradient flow during training").run()
    assert_clean(app)
    titles = [s.get("title") for s in chart_specs(app)]
    assert "Update-to-weight ratio per layer" in titles and "Activation distributions over training" in titles
    app.radio(key="bp_view").set_value("Learning-rate range test").run()
    assert_clean(app)
    assert [s.get("title") for s in chart_specs(app)] == ["Learning-rate range test"]


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
    options = at.selectbox(key="fp_model_pick").options
    at.selectbox(key="fp_model_pick").set_value(next(o for o in options if o.startswith("digits"))).run()
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, format="PNG")
    at.get("file_uploader")[0].upload("seven.png", buf.getvalue()).run()
    assert_clean(at)
    assert any("resized 64x64 -> 8x8" in m.value and "inverted" in m.value for m in at.markdown)
