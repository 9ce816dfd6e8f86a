import h5py
import keras
import numpy as np
import pytest

from models.pretrained import PRETRAINED, PretrainedUnavailable, load_pretrained, preprocess, weights_path


def _write_legacy_weights(model: keras.Model, path) -> None:
    """Write weights in the legacy HDF5 layout that Keras' ImageNet downloads use."""
    from keras.src.legacy.saving import legacy_h5_format

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_cached_weights_are_loaded_without_network(name, tmp_path):
    builder = getattr(keras.applications, PRETRAINED[name].builder)
    reference = builder(weights=None, include_top=False, input_shape=(224, 224, 3))
    path = weights_path(name, tmp_path)
    _write_legacy_weights(reference, path)
    model = load_pretrained(name, tmp_path)
    for a, b in zip(reference.get_weights()[:4], model.get_weights()[:4], strict=True):
        assert np.array_equal(a, b)
    x = preprocess(name, np.full((1, 224, 224, 3), 0.5, dtype="float32"))
    assert np.isfinite(np.asarray(model(x))).all()


def test_offline_without_cache_gives_clear_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/mobilenet.h5: None -- [Errno -3]")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    with pytest.raises(PretrainedUnavailable, match="not in the Keras cache .* could not be downloaded"):
        load_pretrained("MobileNetV2", tmp_path)


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_tensor_preprocessing_equals_the_numpy_one(name):
    """Reference: keras.applications' preprocess_input on numpy arrays (what `preprocess` calls)."""
    import tensorflow as tf

    from models.pretrained import preprocess_tensor

    pixels = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    traced = tf.function(lambda x: preprocess_tensor(name, x))
    assert np.allclose(np.asarray(traced(tf.constant(pixels))), preprocess(name, pixels), atol=1e-4)
