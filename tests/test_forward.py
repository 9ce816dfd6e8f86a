import io
import zipfile

import keras
import numpy as np
import pytest

from models.config import ExperimentConfig
from models.engine import train
from models.forward import ModelRejected, forward_trace, load_uploaded_model, top_predictions


def test_trace_equals_keras_sub_model_outputs():
    r = train(ExperimentConfig(dataset="shapes", n_samples=60, architecture="cnn", conv_filters=(4, 4),
                               hidden_layers=(5,), activation="relu", epochs=1, batch_size=16))
    x = r.dataset.x_test[0]
    steps = forward_trace(r.model, x)
    assert [s.name for s in steps][:3] == ["conv_1", "conv_act_1", "pool_1"] and steps[-1].name == "output"
    for step in steps:
        sub = keras.Model(r.model.input, r.model.get_layer(step.name).output)
        assert np.allclose(step.output, np.asarray(sub(x[None]))[0], atol=1e-6)
        assert step.params == r.model.get_layer(step.name).count_params()
    assert np.allclose(steps[-1].output, np.asarray(r.model(x[None]))[0], atol=1e-6)


def test_top_predictions_order():
    assert top_predictions(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"), k=2) == [("b", 0.7), ("c", 0.2)]


def _saved(model, tmp_path, name="m.keras") -> bytes:
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


def test_a_plain_keras_model_loads(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(4)(inputs)))
    loaded = load_uploaded_model(_saved(model, tmp_path), "mine.keras")
    x = np.ones((1, 2), dtype="float32")
    assert np.allclose(loaded(x), model(x))


def test_lambda_layer_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    with pytest.raises(ModelRejected, match="contains code"):
        load_uploaded_model(_saved(model, tmp_path), "lambda.keras")


def test_corrupted_zip_is_refused(tmp_path):
    inputs = keras.Input((2,))
    data = _saved(keras.Model(inputs, keras.layers.Dense(2)(inputs)), tmp_path)
    with pytest.raises(ModelRejected, match="not a valid .keras file"):
        load_uploaded_model(data[: len(data) // 3], "broken.keras")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(ModelRejected, match="could not be loaded"):
        load_uploaded_model(buf.getvalue(), "garbage.keras")


def test_h5_and_other_files_are_refused(tmp_path):
    with pytest.raises(ModelRejected, match=r"HDF5 \(.h5\) models cannot be loaded safely"):
        load_uploaded_model(b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "model.h5")
    with pytest.raises(ModelRejected, match="Only .keras model files"):
        load_uploaded_model(b"print('hi')", "model.py")
    with pytest.raises(ModelRejected, match="limit is"):
        load_uploaded_model(b"0" * (17 * 1024 * 1024), "big.keras")
