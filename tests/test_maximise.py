import keras
import numpy as np
import pytest
import tensorflow as tf

from models.engine import train
from models.features import logits_model
from models.maximise import (
    COLOR_MIXING,
    AscentConfig,
    decorrelated_to_rgb,
    filter_objective,
    maximise_classes,
    maximise_filters,
    mean_filter_activation,
    rgb_to_decorrelated,
)
from models.recipes import DEFAULT_CNN


@pytest.fixture(scope="module")
def shapes_cnn():
    result = train(DEFAULT_CNN.replace(n_samples=2000))
    assert result.history.test_acc[-1] > 0.9  # the checks below need a model that learned the shapes
    return result


def _best_of_random(model, layer, filters, images):
    """The best each filter does on any of the given images (each image shown to every filter)."""
    return np.max([mean_filter_activation(model, layer, filters, np.repeat(x[None], len(filters), axis=0))
                   for x in images], axis=0)


def test_maximisation_raises_every_target_filter(shapes_cnn):
    model = shapes_cnn.model
    filters = list(range(8))
    noise = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    for layer in ("conv_1", "conv_act_3"):
        images = maximise_filters(model, layer, filters)  # the defaults the page starts from
        assert images.shape == (8, 32, 32, 3) and images.min() >= 0 and images.max() <= 1
        raised = mean_filter_activation(model, layer, filters, images)
        # The best each filter does on any of 8 random images: maximisation must beat all of them.
        assert np.all(raised > _best_of_random(model, layer, filters, noise) + 0.02)


def test_a_conv_layer_is_read_after_its_rectifier(shapes_cnn):
    images = shapes_cnn.dataset.x_test[:4]
    by_conv = mean_filter_activation(shapes_cnn.model, "conv_3", [0, 1, 2, 3], images)
    maps = keras.Model(shapes_cnn.model.inputs[0], shapes_cnn.model.get_layer("conv_act_3").output)(images)
    assert np.allclose(by_conv, [np.asarray(maps)[i, :, :, i].mean() for i in range(4)], rtol=1e-5)


def test_class_images_raise_their_class(shapes_cnn):
    images = maximise_classes(shapes_cnn.model, [0, 1, 2, 3])
    assert images.shape == (4, 32, 32, 3)
    logits = np.asarray(logits_model(shapes_cnn.model)(images))
    noise = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    random_logits = np.asarray(logits_model(shapes_cnn.model)(noise))
    assert np.all(np.diag(logits) > random_logits.max(axis=0) + 1.0)  # class k: image k beats every noise image


def test_pixel_parameterisation_raises_filters(shapes_cnn):
    model, filters = shapes_cnn.model, [0, 1, 2, 3]
    images = maximise_filters(model, "conv_3", filters, AscentConfig(steps=48, fourier=False))
    noise = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    assert np.all(mean_filter_activation(model, "conv_3", filters, images) > _best_of_random(
        model, "conv_3", filters, noise))


def test_colour_decorrelation_is_lucids_matrix_and_round_trips():
    """Reference: lucid's color_correlation_svd_sqrt (Olah et al. 2017), divided by its largest column
    norm; a decorrelated colour t maps to RGB as t @ M^T."""
    sqrt_corr = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    mixing = sqrt_corr / max(np.linalg.norm(sqrt_corr[:, j]) for j in range(3))
    assert np.allclose(COLOR_MIXING, mixing, atol=1e-6)
    t = np.random.default_rng(0).normal(0, 1, (5, 4, 4, 3))
    expected = np.einsum("ij,nhwj->nhwi", mixing, t)
    assert np.allclose(decorrelated_to_rgb(t), expected, atol=1e-5)
    assert np.allclose(rgb_to_decorrelated(decorrelated_to_rgb(t)), t, atol=1e-4)
    # Brightness is one axis: a pure first-axis colour is grey (equal R, G, B to within lucid's rounding).
    grey = decorrelated_to_rgb(np.array([1.0, 0.0, 0.0]))
    assert np.ptp(grey) < 0.05 * grey.mean()


def _tiny(channels, bias):
    """One 1x1 conv filter reading the sum of the channels with a bias, then a ReLU layer."""
    inputs = keras.Input((8, 8, channels))
    x = keras.layers.Conv2D(1, 1, name="conv_1")(inputs)
    x = keras.layers.Activation("relu", name="conv_act_1")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.get_layer("conv_1").set_weights([np.full((1, 1, channels, 1), 5.0 / channels), np.array([bias])])
    return model


def test_a_filter_off_on_grey_still_climbs():
    # 5 * mean colour - 3.5 is -1 on grey, so the ReLU passes no gradient at the start; only white reaches 1.5.
    model = _tiny(3, -3.5)
    grey = np.full((1, 8, 8, 3), 0.5, "float32")
    assert mean_filter_activation(model, "conv_1", [0], grey)[0] == 0
    raised = mean_filter_activation(model, "conv_1", [0], maximise_filters(model, "conv_1", [0]))
    assert raised[0] > 0.75  # half way from grey (0) to the best any image can do (1.5)


def test_greyscale_models_skip_colour_decorrelation():
    model = _tiny(1, -1.5)
    for fourier in (True, False):
        images = maximise_filters(model, "conv_1", [0], AscentConfig(steps=48, fourier=fourier))
        assert images.shape == (1, 8, 8, 1) and 0 <= images.min() and images.max() <= 1
        assert mean_filter_activation(model, "conv_1", [0], images)[0] > 1.5  # white reaches 3.5, grey 1.0


def test_filter_objective_sees_the_preprocessed_images():
    """Reference: the same objective evaluated on images preprocessed beforehand in numpy."""
    inputs = keras.Input((8, 8, 3))
    maps = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="c")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(maps)))
    images = np.random.default_rng(3).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    shifted = filter_objective(model, "c", [0, 1], preprocess=lambda x: 4.0 * x - 1.0)(tf.constant(images))
    expected = mean_filter_activation(model, "c", [0, 1], 4.0 * images - 1.0)
    assert np.allclose(np.asarray(shifted), expected, atol=1e-6)
    assert not np.allclose(expected, mean_filter_activation(model, "c", [0, 1], images))
