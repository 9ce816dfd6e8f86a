import io

import pytest
from apptest_helpers import assert_clean, open_dashboard
from PIL import Image

PAGE = "pages/feature_hierarchy.py"


@pytest.fixture(scope="module")
def hierarchy():
    """The page with a tiny CNN (2 blocks of 4 filters, 2 epochs on 200 shapes)."""
    at = open_dashboard({"epochs": "2", "n_samples": "100"}, page=PAGE)
    for key, value in {"fh_samples": 200, "fh_epochs": 2, "fh_filters": 4, "fh_blocks": 2, "fh_steps": 16}.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    return at


def _view(at, name):
    at.radio(key="fh_view").set_value(name).run()
    assert_clean(at)
    return [image.proto.imgs[0].caption for image in at.get("image")]


def test_kernels_view(hierarchy):
    captions = _view(hierarchy, "Kernels")
    assert captions == ["First conv layer: 4 filters of 3x3 pixels"]
    assert any("**early**" in c.value and "**late**" in c.value for c in hierarchy.caption)


def test_feature_maps_view_has_each_stage(hierarchy):
    captions = _view(hierarchy, "Feature maps")
    assert captions[0].startswith("input (") and any(c.startswith("early: conv_1") for c in captions)
    assert any(c.startswith("late: conv_2") for c in captions)


def test_maximisation_view_per_stage_and_class(hierarchy):
    captions = _view(hierarchy, "Activation maximisation")
    assert any(c.startswith("early (conv_1)") for c in captions) and any(
        c.startswith("late (conv_2)") for c in captions
    )
    assert any("circle, square, triangle, cross" in c for c in captions)


def test_attribution_and_filmstrip_views(hierarchy):
    assert _view(hierarchy, "Attribution")[1:] == ["vanilla gradient", "SmoothGrad", "Grad-CAM (last conv layer)"]
    film = _view(hierarchy, "Filmstrip")
    assert any(c.startswith("epoch 0:") for c in film) and any(c.startswith("epoch 2:") for c in film)


def test_uploads_bad_and_good(hierarchy):
    hierarchy.radio(key="fh_view").set_value("Feature maps").run()
    hierarchy.get("file_uploader")[0].upload("junk.png", b"not an image at all", "image/png").run()
    assert not hierarchy.exception
    assert any("not an image" in e.value for e in hierarchy.error)
    buf = io.BytesIO()
    Image.new("RGBA", (50, 40), (200, 10, 10, 128)).save(buf, format="PNG")
    hierarchy.get("file_uploader")[0].upload("red.png", buf.getvalue(), "image/png").run()
    assert_clean(hierarchy)
    assert any("Preprocessing:" in m.value and "resized 50x40 -> 32x32" in m.value for m in hierarchy.markdown)
