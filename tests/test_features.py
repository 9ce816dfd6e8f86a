import numpy as np
import pytest

from models.builders import build_model
from models.config import ExperimentConfig
from models.engine import train
from models.features import (
    depth_groups,
    first_layer_kernels,
    grad_cam,
    kernel_norms,
    layer_outputs,
    logits_model,
    most_active_channels,
    saliency,
    smoothgrad,
)
from models.maximise import AscentConfig, maximise_classes, maximise_filters, mean_filter_activation

SHAPES_CNN = ExperimentConfig(dataset="shapes", n_samples=2000, noise=0.0, architecture="cnn",
                              conv_filters=(16, 32, 32, 64), hidden_layers=(), activation="relu", epochs=20,
                              batch_size=32, learning_rate=0.003)


@pytest.fixture(scope="module")
def shapes_cnn():
    result = train(SHAPES_CNN)
    assert result.history.test_acc[-1] > 0.8  # the checks below need a model that learned the shapes
    return result


def _model(blocks):
    c = ExperimentConfig(dataset="shapes", architecture="cnn", conv_filters=(4,) * blocks, hidden_layers=())
    return build_model(c, (32, 32, 3), 4)


@pytest.mark.parametrize("blocks, expected", [
    (1, {"early": ["conv_1"], "middle": [], "late": []}),
    (2, {"early": ["conv_1"], "middle": [], "late": ["conv_2"]}),
    (3, {"early": ["conv_1"], "middle": ["conv_2"], "late": ["conv_3"]}),
    (4, {"early": ["conv_1"], "middle": ["conv_2", "conv_3"], "late": ["conv_4"]}),
    (6, {"early": ["conv_1", "conv_2"], "middle": ["conv_3", "conv_4"], "late": ["conv_5", "conv_6"]}),
])
def test_depth_groups_are_thirds(blocks, expected):
    assert depth_groups(_model(blocks)) == expected


def test_kernel_grid_matches_the_first_layer():
    model = _model(2)
    kernels = first_layer_kernels(model)
    assert kernels.shape == (4, 3, 3, 3)  # filters, kh, kw, RGB
    assert np.allclose(kernels.min(axis=(1, 2, 3)), 0) and np.allclose(kernels.max(axis=(1, 2, 3)), 1)
    raw = model.get_layer("conv_1").kernel.numpy()[..., 2]
    assert np.allclose(kernels[2], (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    assert [v.shape for v in kernel_norms(model).values()] == [(4,), (4,)]


def test_layer_outputs_and_top_channels():
    model = _model(2)
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    out = layer_outputs(model, ["conv_1", "conv_act_2"], images)
    assert out["conv_1"].shape == (2, 32, 32, 4) and out["conv_act_2"].shape == (2, 16, 16, 4)
    fmap = np.zeros((2, 2, 3))
    fmap[..., 1], fmap[..., 2] = 5, 1
    assert most_active_channels(fmap, 2).tolist() == [1, 2]


def test_logits_are_the_pre_softmax_scores():
    model = _model(2)
    x = np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    logits = np.asarray(logits_model(model)(x))
    probs = np.asarray(model(x))
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(softmax, probs, atol=1e-5)


def test_maximisation_raises_every_target_filter(shapes_cnn):
    model = shapes_cnn.model
    filters = list(range(8))
    for layer in ("conv_1", "conv_3"):
        images = maximise_filters(model, layer, filters, AscentConfig(steps=48))
        assert images.shape == (8, 32, 32, 3) and images.min() >= 0 and images.max() <= 1
        raised = mean_filter_activation(model, layer, filters, images)
        # The best each filter does on any of 8 random images: maximisation must beat all of them.
        noise = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype("float32")
        best_random = np.max([mean_filter_activation(model, layer, filters, np.repeat(n[None], 8, axis=0))
                              for n in noise], axis=0)
        assert np.all(raised > best_random + 0.02)


def test_class_images_raise_their_class(shapes_cnn):
    images = maximise_classes(shapes_cnn.model, [0, 1, 2, 3], AscentConfig(steps=64))
    assert images.shape == (4, 32, 32, 3)
    logits = np.asarray(logits_model(shapes_cnn.model)(images))
    noise = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    random_logits = np.asarray(logits_model(shapes_cnn.model)(noise))
    assert np.all(np.diag(logits) > random_logits.max(axis=0) + 1.0)  # class k: image k beats every noise image


def test_fourier_parameterisation_raises_filters(shapes_cnn):
    images = maximise_filters(shapes_cnn.model, "conv_3", [0, 1, 2, 3], AscentConfig(steps=48, fourier=True))
    noise = np.random.default_rng(0).uniform(0, 1, images.shape).astype("float32")
    raised = mean_filter_activation(shapes_cnn.model, "conv_3", [0, 1, 2, 3], images)
    assert np.all(raised > mean_filter_activation(shapes_cnn.model, "conv_3", [0, 1, 2, 3], noise))


def test_grad_cam_mass_sits_on_the_shape(shapes_cnn):
    data, model = shapes_cnn.dataset, shapes_cnn.model
    inside, share = [], []
    for image, mask in zip(data.x_test[:60], data.masks_test[:60], strict=True):
        predicted = int(np.argmax(model(image[None])[0]))
        cam = grad_cam(model, image, predicted)
        assert cam.shape == mask.shape and 0 <= cam.min() and cam.max() <= 1
        if cam.sum() > 0:
            inside.append(cam[mask].sum() / cam.sum())
            share.append(mask.mean())
    # The last conv layer is 4x4 here, so the upsampled map is coarse: a third more mass than an
    # even spread is already a clear preference for the object.
    assert np.mean(inside) > 1.3 * np.mean(share)


def test_saliency_and_smoothgrad_shapes(shapes_cnn):
    image = shapes_cnn.dataset.x_test[0]
    s, sg = saliency(shapes_cnn.model, image, 0), smoothgrad(shapes_cnn.model, image, 0, samples=8)
    assert s.shape == sg.shape == (32, 32) and s.min() >= 0 and sg.max() > 0
