import io
import time
import warnings
import zipfile

import keras
import numpy as np
import pytest

from models.config import ExperimentConfig
from models.engine import train
from models.forward import (
    MAX_MEMBERS,
    MAX_RATIO,
    ModelRejected,
    forward_trace,
    load_uploaded_model,
    top_predictions,
)


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


# Issue 11 item 1: zip bombs. Each bomb is a real model's archive with one member replaced or added; the big
# member is deflated from 1 MB chunks, so the test never holds its unpacked bytes (200 MB -> ~0.2 MB stored).
MB = 10**6


def _small_model_bytes(tmp_path) -> bytes:
    inputs = keras.Input((2,))
    return _saved(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)), tmp_path)


def _with_member(original: bytes, name: str, size: int, fill: bytes = b"\0", prefix: bytes = b"") -> bytes:
    """`original` with member `name` replaced, or added, by `prefix` followed by `size` bytes of `fill`, deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info, src.read(info))
        with dst.open(name, "w", force_zip64=True) as member:
            member.write(prefix)
            for start in range(0, size, MB):
                member.write(fill * min(MB, size - start))
    return out.getvalue()


def _refused(data: bytes, monkeypatch) -> str:
    """The refusal message for `data`, checking that it came from the zip directory alone, at once: nothing may
    decompress a member (`ZipFile.open`) or hand the archive to Keras before the refusal."""
    calls = []

    def recorder(what):
        def record(*args, **kwargs):
            calls.append(what)
            raise AssertionError(f"{what} was called")
        return record

    with monkeypatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "open", recorder("ZipFile.open"))
        patch.setattr(keras.models, "load_model", recorder("keras.models.load_model"))
        start = time.perf_counter()
        with pytest.raises(ModelRejected) as refusal:
            load_uploaded_model(data, "bomb.keras")
        elapsed = time.perf_counter() - start
    assert calls == [], f"decompressed or loaded before refusing: {calls}"
    assert elapsed < 0.5, f"refusal took {elapsed:.2f} s"
    return str(refusal.value)


def test_weights_bomb_is_refused_before_unpacking(tmp_path, monkeypatch):
    data = _with_member(_small_model_bytes(tmp_path), "model.weights.h5", 200 * MB)
    assert len(data) < MB  # a sub-megabyte upload...
    assert _refused(data, monkeypatch) == "The model unpacks to 200 MB; the limit is 64 MB."  # ...declaring 200 MB


def test_config_padded_with_spaces_is_refused(tmp_path, monkeypatch):
    """JSON allows trailing whitespace, so a config bomb parses: today's code loaded this model."""
    original = _small_model_bytes(tmp_path)
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        config = archive.read("config.json")
    data = _with_member(original, "config.json", 200 * MB, fill=b" ", prefix=config)
    message = _refused(data, monkeypatch)
    assert message == f"config.json unpacks to {(len(config) + 200 * MB) / MB:.1f} MB; the limit is 1 MB."


def test_member_compressed_beyond_the_ratio_is_refused(tmp_path, monkeypatch):
    """5 MB of zeros fits the 64 MB budget, but no model weights compress 1000:1."""
    data = _with_member(_small_model_bytes(tmp_path), "model.weights.h5", 5 * MB)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("model.weights.h5")
    ratio = info.file_size / info.compress_size
    assert ratio > 10 * MAX_RATIO
    assert _refused(data, monkeypatch) == (f"model.weights.h5 is compressed {ratio:.0f}:1 (5.0 MB stored in "
                                           f"{info.compress_size / 1e3:.0f} kB); more than {MAX_RATIO}:1 is refused "
                                           "as a zip bomb.")


@pytest.mark.parametrize("name", ["../x", "/etc/cron.d/x", "assets/../../x", "assets\\..\\x", "payload.bin",
                                  "model.weights.npz", "assets/./x"])
def test_unexpected_member_is_refused(name, tmp_path, monkeypatch):
    """Any member beyond Keras' three makes Keras extract the whole archive to disk; only assets/... may be added."""
    data = _with_member(_small_model_bytes(tmp_path), name, MB)
    assert _refused(data, monkeypatch) == (
        f"The file holds an unexpected member {name!r}; a .keras file holds only metadata.json, config.json, "
        "model.weights.h5 and files under assets/.")


def test_too_many_or_repeated_members_are_refused(tmp_path, monkeypatch):
    data = _small_model_bytes(tmp_path)
    for i in range(MAX_MEMBERS - 2):
        data = _with_member(data, f"assets/layers/lookup/part{i}.txt", 1)
    assert _refused(data, monkeypatch) == (f"The file holds {MAX_MEMBERS + 1} archive members; a .keras file holds 3 "
                                         f"plus its assets, and the limit is {MAX_MEMBERS}.")
    out = io.BytesIO(_small_model_bytes(tmp_path))
    with warnings.catch_warnings(), zipfile.ZipFile(out, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we are adding on purpose
        archive.writestr("config.json", b'{"class_name": "Sequential"}')
    assert _refused(out.getvalue(), monkeypatch) == "The file holds 'config.json' 2 times; a .keras file holds it once."


def test_a_model_with_assets_loads(tmp_path):
    """A StringLookup saves its vocabulary as an asset, a fourth member, which must pass the checks."""
    lookup = keras.layers.StringLookup(name="lookup")
    lookup.adapt(np.array(["cat", "dog", "bird"]))
    data = _saved(keras.Sequential([keras.Input((1,), dtype="string"), lookup]), tmp_path)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assets = [name for name in archive.namelist() if name.startswith("assets/")]
    assert assets == ["assets/layers/string_lookup/vocabulary.txt"]
    loaded = load_uploaded_model(data, "lookup.keras")
    assert loaded.get_layer("lookup").get_vocabulary() == lookup.get_vocabulary()


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
