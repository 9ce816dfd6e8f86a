import numpy as np
import pandas as pd
import pytest

from models.config import ExperimentConfig
from models.engine import History
from models.run_compare import MISSING, config_differences, curves_frame, differs_from_first, smooth


def _history(n: int = 4, regression: bool = False, start: float = 0.0) -> History:
    """A hand-made run of `n` epochs, 0.5 s each, starting `start` seconds into the wall clock."""
    loss = list(np.linspace(1.0, 0.2, n))
    acc = [float("nan")] * n if regression else list(np.linspace(0.5, 0.9, n))
    return History(train_loss=loss, test_loss=[v + 0.1 for v in loss], train_acc=acc, test_acc=acc,
                   grad_norms=[[1.0]] * n, seconds=[start + 0.5 * (i + 1) for i in range(n)])


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.95])
def test_smooth_matches_pandas_adjusted_ewm(weight):
    """Oracle: TensorBoard's line-chart smoothing (an EMA started at 0, divided by 1 - weight^n) is the adjusted
    exponentially weighted mean, which pandas computes as sum(w^i x_(t-i)) / sum(w^i): `ewm(alpha=1 - weight,
    adjust=True)`."""
    values = np.random.default_rng(7).normal(size=200)
    expected = pd.Series(values).ewm(alpha=1 - weight, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(smooth(values, weight), expected, rtol=0, atol=1e-12)


def test_smooth_weight_zero_is_the_identity_and_starts_at_the_first_value():
    values = np.array([3.0, -1.0, 2.5, 7.0])
    assert np.array_equal(smooth(values, 0.0), values)
    assert smooth(values, 0.9)[0] == 3.0  # debiased: not pulled towards 0


def test_smooth_keeps_a_constant_series_exactly_constant():
    assert np.array_equal(smooth(np.full(50, 0.7), 0.95), np.full(50, 0.7))


def test_smooth_passes_non_finite_values_through_and_averages_the_rest():
    values = np.array([1.0, 2.0, np.nan, 4.0, np.inf, 3.0])
    out = smooth(values, 0.6)
    assert np.isnan(out[2]) and np.isposinf(out[4])
    finite = values[np.isfinite(values)]
    np.testing.assert_allclose(out[np.isfinite(values)], smooth(finite, 0.6), rtol=0, atol=1e-15)


@pytest.mark.parametrize("weight", [1.0, -0.1, 1.5, float("nan"), "0.5"])
def test_smooth_refuses_weights_outside_zero_to_one(weight):
    with pytest.raises(ValueError, match="smoothing weight"):
        smooth([1.0, 2.0], weight)


def test_curves_frame_has_one_row_per_run_split_and_epoch():
    frame = curves_frame([("a", _history(4)), ("b", _history(3))], "loss", "epoch", 0.0)
    assert list(frame.columns) == ["run", "split", "epoch", "seconds", "x", "value", "smoothed"]
    assert len(frame) == 2 * 4 + 2 * 3
    b_test = frame.query("run == 'b' and split == 'test'")
    assert b_test.epoch.tolist() == [1, 2, 3]
    np.testing.assert_allclose(b_test.value, np.linspace(1.0, 0.2, 3) + 0.1)
    assert frame.x.tolist() == frame.epoch.tolist()
    assert np.array_equal(frame.value, frame.smoothed)  # weight 0


def test_curves_frame_x_can_be_wall_time():
    frame = curves_frame([("a", _history(3, start=10.0))], "loss", "seconds", 0.5)
    assert frame.query("split == 'train'").x.tolist() == [10.5, 11.0, 11.5]
    assert frame.x.tolist() == frame.seconds.tolist()


def test_curves_frame_smooths_each_curve_on_its_own():
    frame = curves_frame([("a", _history(5)), ("b", _history(5))], "loss", "epoch", 0.8)
    for (_, _), curve in frame.groupby(["run", "split"]):
        np.testing.assert_allclose(curve.smoothed, smooth(curve.value.to_numpy(), 0.8))


def test_curves_frame_leaves_regression_runs_out_of_accuracy():
    runs = [("classifier", _history(4)), ("regressor", _history(4, regression=True))]
    assert set(curves_frame(runs, "loss", "epoch", 0.0).run) == {"classifier", "regressor"}
    accuracy = curves_frame(runs, "accuracy", "epoch", 0.0)
    assert set(accuracy.run) == {"classifier"} and len(accuracy) == 8
    assert accuracy.value.between(0, 1).all()


def test_curves_frame_of_no_runs_is_empty_with_the_columns():
    frame = curves_frame([], "accuracy", "seconds", 0.3)
    assert frame.empty and "smoothed" in frame.columns


@pytest.mark.parametrize(("metric", "x_axis", "message"), [
    ("acc", "epoch", "metric must be one of loss, accuracy; got 'acc'"),
    ("loss", "time", "x_axis must be one of epoch, seconds; got 'time'"),
])
def test_curves_frame_names_a_bad_metric_or_axis(metric, x_axis, message):
    with pytest.raises(ValueError, match=message):
        curves_frame([("a", _history())], metric, x_axis, 0.0)


def test_curves_frame_refuses_repeated_labels_and_ragged_histories():
    with pytest.raises(ValueError, match="unique; repeated: 'a'"):
        curves_frame([("a", _history()), ("a", _history())], "loss", "epoch", 0.0)
    ragged = _history(4)
    ragged.seconds.pop()
    with pytest.raises(ValueError, match="run 'r'"):
        curves_frame([("r", ragged)], "loss", "epoch", 0.0)


def test_config_differences_lists_only_the_fields_that_differ():
    base = ExperimentConfig()
    wide = base.replace(hidden_layers=(16, 16, 4), learning_rate=0.001)
    momentum = base.replace(optimizer="momentum", optimizer_options=(("momentum", 0.5),))
    table = config_differences([("base", base.to_dict()), ("wide", wide.to_dict()), ("momentum", momentum.to_dict())])
    assert list(table.columns) == ["base", "wide", "momentum"]
    assert list(table.index) == ["hidden_layers", "optimizer", "optimizer_options", "learning_rate"]
    assert table.loc["hidden_layers"].tolist() == ["8, 8", "16, 16, 4", "8, 8"]
    assert table.loc["learning_rate"].tolist() == ["0.03", "0.001", "0.03"]
    assert table.loc["optimizer_options"].tolist() == ["none", "none", "momentum=0.5"]


def test_config_differences_of_equal_configs_is_empty_with_run_columns():
    config = ExperimentConfig().to_dict()
    table = config_differences([("a", config), ("b", dict(config))])
    assert table.empty and list(table.columns) == ["a", "b"]


def test_config_differences_shows_a_missing_key_as_a_dash():
    new = ExperimentConfig().to_dict()
    old = {k: v for k, v in new.items() if k != "lr_schedule"}  # a run stored before the field existed
    table = config_differences([("old", old), ("new", new)])
    assert table.loc["lr_schedule"].tolist() == [MISSING, "constant"]
    assert list(table.index) == ["lr_schedule"]


def test_differs_from_first_marks_cells_unlike_the_first_run():
    table = config_differences([("a", {"x": 1, "y": "p"}), ("b", {"x": 2, "y": "p"}), ("c", {"x": 1, "y": "q"})])
    marks = differs_from_first(table)
    assert marks.loc["x"].tolist() == [False, True, False]
    assert marks.loc["y"].tolist() == [False, False, True]
    assert differs_from_first(config_differences([])).empty
