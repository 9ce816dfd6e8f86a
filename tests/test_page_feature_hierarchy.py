import io

import pytest
from apptest_helpers import assert_clean, chart_specs, open_dashboard
from PIL import Image

from models.diagnosis import near_chance

PAGE = "pages/feature_hierarchy.py"
TINY = {"fh_samples": 200, "fh_epochs": 2, "fh_filters": 4, "fh_blocks": 2, "fh_steps": 16}


@pytest.fixture(scope="module")
def hierarchy():
    """The page with a tiny CNN (2 blocks of 4 filters, 2 epochs on 200 shapes)."""
    at = open_dashboard(page=PAGE)
    for key, value in TINY.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    return at


def _view(at, name):
    at.radio(key="fh_view").set_value(name).run()
    assert_clean(at)
    return [image.proto.imgs[0].caption for image in at.get("image")]


def _chart_titles(at) -> set[str]:
    """Titles of every Altair chart, whether set on the chart or on one of its layers."""
    titles = set()
    for spec in chart_specs(at):
        for part in [spec, *spec.get("layer", [])]:
            title = part.get("title")
            if title:
                titles.add(title if isinstance(title, str) else title.get("text"))
    return titles


def _shown_result(at):
    """The run the page trained: the newest in the session's store (ui.session)."""
    return list(at.session_state["trained_runs"].values())[-1]


def test_default_view_shows_optimised_images_beside_dataset_examples(hierarchy):
    captions = _view(hierarchy, "What filters respond to")
    early = [c for c in captions if c.startswith("early (conv_act_1)")]
    assert early and "test images that excite it most, cropped to its receptive field" in early[0]
    assert any(c.startswith("late (conv_act_2)") for c in captions)
    assert any("circle, square, triangle, cross" in c for c in captions)
    assert any("receptive field 3x3 px" in m.value for m in hierarchy.markdown)


def test_untrained_model_gets_the_warning_exactly_when_near_chance(hierarchy):
    result = _shown_result(hierarchy)
    warned = any("did not learn" in w.value for w in hierarchy.warning)
    assert warned == near_chance(result.history.test_acc[-1], result.dataset.y_test)


def test_kernels_view(hierarchy):
    captions = _view(hierarchy, "Kernels")
    assert captions[0].startswith("First conv layer: 4 of 4 filters of 3x3 weights")
    assert any("**early**" in c.value and "**late**" in c.value for c in hierarchy.caption)


def test_evidence_view_measures_every_stage(hierarchy):
    _view(hierarchy, "Evidence")
    table = hierarchy.dataframe[0].value
    assert list(table.columns) == ["early (conv_1)", "late (conv_2)"]
    assert list(table.loc["receptive field (px)"]) == ["3", "8"]
    assert {"Linear-probe accuracy", "Orientation selectivity", "Class selectivity"} <= _chart_titles(hierarchy)
    assert any("probe accuracy" in m.value.lower() for m in hierarchy.markdown)


def test_feature_maps_view_has_each_stage(hierarchy):
    captions = _view(hierarchy, "Feature maps")
    assert captions[0].startswith("input (") and any(c.startswith("early: conv_act_1") for c in captions)
    assert any(c.startswith("late: conv_act_2") for c in captions)


def test_attribution_and_filmstrip_views(hierarchy):
    assert _view(hierarchy, "Attribution")[1:] == ["vanilla gradient", "SmoothGrad", "Grad-CAM (conv_act_2)"]
    assert any("of the Grad-CAM heat falls on the shape" in c.value for c in hierarchy.caption)
    film = _view(hierarchy, "Filmstrip")
    assert any(c.startswith("epoch 0:") for c in film) and any(c.startswith("epoch 2:") for c in film)
    assert "Linear-probe accuracy per stage over training" in _chart_titles(hierarchy)


def test_uploads_bad_and_good(hierarchy):
    hierarchy.radio(key="fh_view").set_value("Feature maps").run()
    hierarchy.get("file_uploader")[0].upload("empty.png", b"", "image/png").run()
    assert not hierarchy.exception
    assert any("The file is empty." in e.value for e in hierarchy.error)
    hierarchy.get("file_uploader")[0].upload("junk.png", b"not an image at all", "image/png").run()
    assert any("not an image" in e.value for e in hierarchy.error)
    buf = io.BytesIO()
    Image.new("RGBA", (50, 40), (200, 10, 10, 128)).save(buf, format="PNG")
    hierarchy.get("file_uploader")[0].upload("red.png", buf.getvalue(), "image/png").run()
    assert_clean(hierarchy)
    steps = [m.value for m in hierarchy.markdown if "Preprocessing:" in m.value]
    assert steps and "centre-cropped 50x40 -> 40x40" in steps[0] and "resized 40x40 -> 32x32" in steps[0]
