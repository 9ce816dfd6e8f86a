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


# An independent reference for the forward pass: each layer's maths written out in numpy from its saved
# weights, chained by hand. Inference semantics: Dropout passes values through, BatchNormalization uses its
# moving statistics.
_ACTIVATIONS = {
    "linear": lambda v: v,
    "relu": lambda v: np.maximum(v, 0),
    "tanh": np.tanh,
    "softmax": lambda v: np.exp(v - v.max(-1, keepdims=True)) / np.exp(v - v.max(-1, keepdims=True)).sum(-1),
}


def _numpy_layer(layer, x: np.ndarray) -> np.ndarray:
    """One layer applied to one input (no batch axis) with numpy, float64."""
    weights = [w.astype("float64") for w in layer.get_weights()]
    kind = type(layer).__name__
    if kind == "Dense":
        return _ACTIVATIONS[layer.get_config()["activation"]](x @ weights[0] + weights[1])
    if kind == "Conv2D":
        assert layer.padding == "valid" and tuple(layer.strides) == (1, 1)  # all this reference handles
        kernel, bias = weights  # (kh, kw, in, out)
        kh, kw = kernel.shape[:2]
        h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
        out = sum(np.einsum("hwc,co->hwo", x[a : a + h, b : b + w], kernel[a, b]) for a in range(kh) for b in range(kw))
        return _ACTIVATIONS[layer.get_config()["activation"]](out + bias)
    if kind == "BatchNormalization":
        gamma, beta, mean, variance = weights
        return gamma * (x - mean) / np.sqrt(variance + layer.epsilon) + beta
    if kind == "Activation":
        return _ACTIVATIONS[layer.get_config()["activation"]](x)
    if kind == "MaxPooling2D":
        h, w, c = x.shape
        return x[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
    if kind == "Flatten":
        return x.reshape(-1)
    if kind == "Dropout":
        return x
    raise AssertionError(f"no numpy reference for {kind}")


def _dense_layers():
    return [keras.layers.Dense(5, activation="relu", name="hidden"), keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(3, activation="softmax", name="probs")]


def _conv_layers():
    return [keras.layers.Conv2D(3, 3, name="conv"), keras.layers.BatchNormalization(name="bn"),
            keras.layers.Activation("relu", name="relu"), keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Dropout(0.3, name="drop"), keras.layers.Flatten(name="flat"),
            keras.layers.Dense(4, activation="softmax", name="probs")]


def _build(style: str, input_shape: tuple[int, ...], layers) -> keras.Model:
    if style == "sequential":
        return keras.Sequential([keras.Input(input_shape), *layers])
    inputs = x = keras.Input(input_shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("style", ["sequential", "functional"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_trace_of_an_uploaded_model_equals_numpy_layer_by_layer(style, kind, tmp_path):
    """Item 1 of issue 10: Sequential models (Keras 3 gives them no `model.input`) crashed the trace."""
    keras.utils.set_random_seed(3)
    input_shape = (4,) if kind == "dense" else (6, 6, 2)
    model = _build(style, input_shape, _dense_layers() if kind == "dense" else _conv_layers())
    if kind == "conv":  # moving statistics far from (0, 1), so inference-mode batch norm is not an identity
        bn = model.get_layer("bn")
        rng = np.random.default_rng(0)
        bn.set_weights([rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3), rng.normal(0, 1, 3), rng.uniform(0.2, 3, 3)])
    loaded = load_uploaded_model(_saved(model, tmp_path), "notebook.keras")
    assert isinstance(loaded, keras.Sequential) == (style == "sequential")
    x = np.random.default_rng(1).normal(0, 1, input_shape).astype("float32")

    steps = forward_trace(loaded, x)

    layers = [layer for layer in loaded.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [s.name for s in steps] == [layer.name for layer in layers]
    expected = x.astype("float64")
    for step, layer in zip(steps, layers, strict=True):
        expected = _numpy_layer(layer, expected)
        assert step.output.shape == expected.shape, step.name
        assert np.allclose(step.output, expected, atol=1e-5), step.name
        assert step.params == sum(w.size for w in layer.get_weights())
    assert np.allclose(steps[-1].output, loaded.predict(x[None], verbose=0)[0], atol=1e-6)
    assert np.allclose(steps[-1].output, model.predict(x[None], verbose=0)[0], atol=1e-6)
