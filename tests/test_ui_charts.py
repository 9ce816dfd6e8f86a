import numpy as np
import pandas as pd

from models.engine import History
from models.plane import plane_grid
from ui.charts import decision_boundary_chart, gradient_norm_chart, history_frame, loss_chart


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


def test_decision_boundary_chart_layers_heatmap_and_points():
    g = plane_grid(4)
    points = pd.DataFrame({"x1": [0.1], "x2": [0.2], "label": ["a"], "split": ["train"]})
    spec = decision_boundary_chart(g, np.full((4, 4), 0.5), points, ("a", "b")).to_dict()
    assert len(spec["layer"]) == 2
    datasets = list(spec["datasets"].values())
    assert sorted(len(d) for d in datasets) == [1, 16]


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
