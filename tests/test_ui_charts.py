import numpy as np
import pandas as pd

from models.engine import History
from models.plane import plane_grid
from ui.charts import (
    BOUNDARY_TINTS,
    decision_boundary_chart,
    gradient_norm_chart,
    history_frame,
    loss_chart,
    probability_image,
)


def _history(n=3):
    return History([1.0, 0.5, 0.25][:n], [1.1, 0.6, 0.4][:n], [0.5, 0.7, 0.9][:n], [0.5, 0.6, 0.8][:n],
                   [[1.0, 0.1]] * n, [0.1, 0.2, 0.3][:n])


def test_history_frame_is_long_format():
    df = history_frame(_history())
    assert len(df) == 6 and set(df.split) == {"train", "test"}
    assert df.query("split == 'test' and epoch == 3").loss.item() == 0.4


def test_loss_chart_spans_all_planned_epochs():
    spec = loss_chart(_history(), total_epochs=100).to_dict()
    assert spec["encoding"]["x"]["scale"]["domain"] == [1, 100]
    assert spec["title"] == "Loss per epoch"


def _decode(url: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_decision_boundary_chart_layers_picture_tooltips_and_points():
    g = plane_grid(4)
    points = pd.DataFrame({"x1": [0.1], "x2": [0.2], "label": ["a"], "split": ["train"]})
    spec = decision_boundary_chart(g, np.full((4, 4), 0.5), points, ("a", "b")).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["image", "rect", "point"]
    datasets = list(spec["datasets"].values())
    assert sorted(len(d) for d in datasets) == [1, 1, 16]  # picture, point, one tooltip cell per grid point
    # "pad": the plot area is exactly size x size and the chart grows by its axes and legends.
    assert (spec["width"], spec["height"], spec["autosize"]) == (340, 340, {"type": "pad"})


def test_boundary_picture_is_opaque_and_puts_large_x2_on_top():
    """Reference: the tints by hand; row k of the probabilities is x2 = ys[k], so the last row is the picture's top."""
    probability = np.zeros((100, 100))
    probability[-1] = 1.0  # only the top row (largest x2) is class 1
    probability[0, 0] = 0.5
    picture = _decode(probability_image(probability))
    assert picture.shape == (100, 100, 3)  # RGB, no alpha: the page never shows through
    assert tuple(picture[0, 0]) == BOUNDARY_TINTS[2] and tuple(picture[50, 50]) == BOUNDARY_TINTS[0]
    assert tuple(picture[-1, 0]) == BOUNDARY_TINTS[1]


def test_boundary_chart_keeps_the_small_multiple_call_of_the_activation_lab():
    g = plane_grid(40)
    points = pd.DataFrame({"x1": [0.1], "x2": [0.2], "label": ["a"], "split": ["test"]})
    spec = decision_boundary_chart(g, np.random.default_rng(0).random((40, 40)), points, ("a", "b"), size=220,
                                   legend=False).to_dict()
    assert (spec["width"], spec["height"]) == (220, 220)
    channels = [c for layer in spec["layer"] for c in layer["encoding"].values() if isinstance(c, dict)]
    assert all(c.get("legend") is None for c in channels)
    [picture] = [rows[0]["url"] for rows in spec["datasets"].values() if "url" in rows[0]]
    assert _decode(picture).shape == (40, 40, 3)


def test_gradient_chart_uses_log_scale_and_clamps_zero():
    h = _history()
    h.grad_norms = [[0.0, 1.0]] * 3
    spec = gradient_norm_chart(h, ["dense_1", "output"]).to_dict()
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    values = [row["gradient norm"] for row in next(iter(spec["datasets"].values()))]
    assert min(values) > 0


def test_loss_chart_adds_the_penalty_curve_only_when_regularised():
    plain = _history()
    assert not any(plain.penalty) and "penalty" not in str(loss_chart(plain, 10).to_dict())
    regularised = _history()
    regularised.penalty = [0.3, 0.2, 0.1]
    spec = str(loss_chart(regularised, 10).to_dict())
    assert "L1/L2 penalty" in spec
