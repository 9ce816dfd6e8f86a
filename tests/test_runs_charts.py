import html
import re

import numpy as np
import pandas as pd

from models.engine import History
from models.run_compare import config_differences, curves_frame
from ui.runs_charts import EXPORT_WIDTH, chart_png, chart_svg, comparison_chart, highlight_differences


def _history(n: int = 6, scale: float = 1.0) -> History:
    loss = list(scale * np.exp(-np.arange(n) / 3) + 0.05 * np.sin(np.arange(n)))
    acc = list(np.linspace(0.5, 0.9, n))
    return History(loss, [v + 0.1 for v in loss], acc, acc, [[1.0]] * n, [0.2 * (i + 1) for i in range(n)])


def _frame(labels=("a", "b"), metric="loss", x_axis="epoch", smoothing=0.6) -> pd.DataFrame:
    runs = [(label, _history(scale=1 + i)) for i, label in enumerate(labels)]
    return curves_frame(runs, metric, x_axis, smoothing)


def _lines(spec: dict) -> list[dict]:
    return [layer for layer in spec["layer"] if layer["mark"]["type"] == "line"]


def test_train_is_dashed_test_solid_and_legends_sit_below():
    spec = comparison_chart(_frame(), "loss", "epoch", log_y=False).to_dict()
    for layer in _lines(spec):
        dash = layer["encoding"]["strokeDash"]
        assert dash["field"] == "split" and dash["scale"]["domain"] == ["train", "test"]
        assert dash["scale"]["range"][1] == [1, 0]  # test: solid
        assert dash["legend"]["orient"] == "bottom"
        colour = layer["encoding"]["color"]
        assert colour["field"] == "run" and colour["scale"]["scheme"] == "tableau10"
        assert colour["legend"]["orient"] == "bottom" and colour["legend"]["labelLimit"] >= 400
    assert spec["height"] == 320 and "width" not in spec  # the page's container decides the width


def test_raw_curves_are_faint_behind_the_smoothed_ones_only_when_smoothed():
    smoothed = _lines(comparison_chart(_frame(smoothing=0.6), "loss", "epoch", False).to_dict())
    assert [layer["encoding"]["y"]["field"] for layer in smoothed] == ["value", "smoothed"]
    assert smoothed[0]["mark"]["opacity"] < 0.5
    plain = _lines(comparison_chart(_frame(smoothing=0.0), "loss", "epoch", False).to_dict())
    assert [layer["encoding"]["y"]["field"] for layer in plain] == ["smoothed"]


def test_axis_titles_and_tooltips():
    spec = comparison_chart(_frame(x_axis="seconds", metric="accuracy"), "accuracy", "seconds", False).to_dict()
    line = _lines(spec)[-1]
    assert line["encoding"]["x"]["title"] == "wall time (s)"
    assert line["encoding"]["y"]["title"] == "accuracy"
    points = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "point")
    assert [t["field"] for t in points["encoding"]["tooltip"]] == ["run", "split", "epoch", "seconds", "value",
                                                                   "smoothed"]


def test_log_scale_draws_non_positive_values_at_the_smallest_positive_one():
    frame = _frame(smoothing=0.0)
    frame.loc[0, ["value", "smoothed"]] = 0.0
    chart = comparison_chart(frame, "loss", "epoch", log_y=True)
    spec = chart.to_dict()
    y = _lines(spec)[-1]["encoding"]["y"]
    assert y["scale"]["type"] == "log" and y["title"] == "loss (log)"
    data = chart.data
    assert data.loc[0, "smoothed_plot"] == frame.smoothed[frame.smoothed > 0].min()
    assert data.loc[0, "smoothed"] == 0.0  # the tooltip shows the true value
    linear = _lines(comparison_chart(frame, "loss", "epoch", log_y=False).to_dict())[-1]["encoding"]["y"]
    assert linear["field"] == "smoothed" and linear["scale"] == {"zero": False}


def test_fixed_width_is_kept():
    assert comparison_chart(_frame(), "loss", "epoch", False, width=500).to_dict()["width"] == 500


def test_png_and_svg_exports():
    chart = comparison_chart(_frame(), "loss", "epoch", log_y=True)
    png = chart_png(chart)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(png[16:20], "big")  # IHDR: the image width in pixels
    assert width >= 2 * EXPORT_WIDTH  # container width replaced by a fixed one, at scale factor 2
    assert "<svg" in chart_svg(chart)


def test_sixty_character_run_labels_render_unclipped():
    labels = [f"run {i}: mlp 16-16-4 tanh adam lr=0.001 batch 32 seed {i} ".ljust(60, "x")[:60] for i in range(4)]
    assert all(len(label) == 60 for label in labels)
    svg = chart_svg(comparison_chart(_frame(labels), "loss", "epoch", log_y=False))
    # The drawn text only: the full names also sit in the lines' aria-label attributes, clipped or not.
    drawn = {html.unescape(text) for text in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    assert set(labels) <= drawn  # a clipped label would be drawn as "run 0: mlp 16-16-4 tanh adam lr=…"


def test_highlight_differences_tints_cells_unlike_the_first_run():
    table = config_differences([("a", {"lr": 0.1, "seed": 1}), ("b", {"lr": 0.2, "seed": 1})])
    styled = highlight_differences(table).to_html()
    assert styled.count("background-color") == 1
