"""Compare stored training runs: TensorBoard-style smoothed curves and a table of how their configs differ.

Plain numpy/pandas, no streamlit: the Runs page draws what these functions return (ui/runs_charts.py).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from models.engine import History

METRICS = {"loss": ("train_loss", "test_loss"), "accuracy": ("train_acc", "test_acc")}  # History fields per split
X_AXES = ("epoch", "seconds")
CURVE_COLUMNS = ["run", "split", "epoch", "seconds", "x", "value", "smoothed"]
MISSING = "—"  # a config field one run does not have (a run stored before the field existed)
_ABSENT = object()  # a key missing from a config dict; distinct from any value, None included


def smooth(values, weight: float) -> np.ndarray:
    """TensorBoard's scalar smoothing: a debiased exponential moving average.

    Args:
        values: one curve, in epoch order.
        weight: smoothing weight in [0, 1); 0 returns the values unchanged, 0.95 is very smooth.

    Returns:
        (N,) float64; non-finite values (NaN/inf, e.g. a diverged epoch) are passed through unchanged and are left
        out of the average, as TensorBoard does.

    Raises:
        ValueError: `weight` is outside [0, 1).
    """
    _check_weight(weight)
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    if finite.any() and np.all(values[finite] == values[finite][0]):
        # A flat line stays exactly flat: the division below would add rounding wiggles that a zoomed-in
        # axis shows as noise (TensorBoard special-cases constant series for the same reason).
        return values.copy()
    out = values.copy()
    last, count = 0.0, 0
    for i in np.flatnonzero(finite):
        last = weight * last + (1 - weight) * values[i]
        count += 1
        # The average starts at 0, so its first points are pulled towards 0 by the missing history: dividing by
        # the total weight seen so far (1 - weight^count) removes that bias, and the curve starts at the
        # first value instead of rising from 0.
        out[i] = last / (1 - weight**count)
    return out


def _check_weight(weight: float) -> None:
    if not (isinstance(weight, numbers.Real) and math.isfinite(weight) and 0 <= weight < 1):
        raise ValueError(f"smoothing weight must be a number in [0, 1) (0 = no smoothing); got {weight!r}.")


def curves_frame(runs: list[tuple[str, History]], metric: str, x_axis: str, smoothing: float) -> pd.DataFrame:
    """One metric of several runs as a long table for the comparison chart.

    Args:
        runs: (label, history) pairs; labels name the runs in the legend and must be unique.
        metric: "loss" or "accuracy".
        x_axis: "epoch" or "seconds" (wall time since the run started); copied into column `x`.
        smoothing: TensorBoard smoothing weight in [0, 1), applied to each run's train and test curve on its own.

    Returns:
        Columns run, split ("train"/"test"), epoch (1-based), seconds, x, value (raw), smoothed. Accuracy rows whose
        value is NaN (every epoch of a regression run) are left out, so such a run is absent from the accuracy chart.

    Raises:
        ValueError: an unknown metric or x axis, a bad smoothing weight, repeated labels, or a history whose
            lists have different lengths.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {', '.join(X_AXES)}; got {x_axis!r}.")
    _check_weight(smoothing)
    _check_unique([label for label, _ in runs])
    frames = [_run_curves(label, history, metric, smoothing) for label, history in runs]
    frame = pd.concat(frames, ignore_index=True) if frames else _empty_curves()
    frame["x"] = frame[x_axis]
    if metric == "accuracy":
        frame = frame[frame["value"].notna()].reset_index(drop=True)
    return frame[CURVE_COLUMNS]


def _run_curves(label: str, history: History, metric: str, smoothing: float) -> pd.DataFrame:
    """The train and test curve of one run, raw and smoothed."""
    n = len(history)
    fields = (*METRICS[metric], "seconds")
    lengths = {name: len(getattr(history, name)) for name in fields}
    if any(length != n for length in lengths.values()):
        raise ValueError(f"run {label!r}: history lists must all have {n} epochs; got lengths {lengths}.")
    epochs = np.arange(1, n + 1)
    seconds = np.asarray(history.seconds, dtype="float64")
    parts = []
    for split, name in zip(("train", "test"), METRICS[metric], strict=True):
        values = np.asarray(getattr(history, name), dtype="float64")
        parts.append(pd.DataFrame({"run": label, "split": split, "epoch": epochs, "seconds": seconds,
                                   "value": values, "smoothed": smooth(values, smoothing)}))
    return pd.concat(parts, ignore_index=True)


def _empty_curves() -> pd.DataFrame:
    return pd.DataFrame({"run": pd.Series(dtype="object"), "split": pd.Series(dtype="object"),
                         "epoch": pd.Series(dtype="int64"), "seconds": pd.Series(dtype="float64"),
                         "value": pd.Series(dtype="float64"), "smoothed": pd.Series(dtype="float64")})


def _check_unique(labels: list[str]) -> None:
    """Two runs with one label would merge into one line and one table column."""
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"run labels must be unique; repeated: {', '.join(map(repr, repeated))}.")


def config_differences(configs: list[tuple[str, dict]]) -> pd.DataFrame:
    """The config fields that differ between runs, one row per field and one column per run.

    Args:
        configs: (label, config dict) pairs, the dicts from `ExperimentConfig.to_dict()`.

    Returns:
        Readable strings ("8, 8" for a layer list), index = field name in the configs' own order. Fields equal in
        every run are left out; a field missing from some dicts counts as different and shows as "—". With
        nothing different: an empty frame that still has the run columns.

    Raises:
        ValueError: repeated labels.
    """
    labels = [label for label, _ in configs]
    _check_unique(labels)
    fields = list(dict.fromkeys(key for _, config in configs for key in config))  # union, first-seen order
    rows = {}
    for field in fields:
        values = [config.get(field, _ABSENT) for _, config in configs]
        if any(v is _ABSENT for v in values) or any(v != values[0] for v in values[1:]):
            rows[field] = [MISSING if v is _ABSENT else _readable(v) for v in values]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=labels, dtype="object")
    table.index.name = "field"
    return table


def _readable(value) -> str:
    """A short string for a config value: "8, 8" for sequences, "momentum=0.9" for option dicts, "none" if empty."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_readable(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v) for v in value) or "none"
    if isinstance(value, str):
        return value or "none"
    return repr(value) if isinstance(value, float) else str(value)  # repr: the shortest exact float, "0.03"


def differs_from_first(table: pd.DataFrame) -> pd.DataFrame:
    """Bools shaped like `table`: True where a cell differs from the first run's value in its row (for highlighting).

    The first column is all False.
    """
    if table.shape[1] == 0:
        return pd.DataFrame(index=table.index, columns=table.columns, dtype="bool")
    return table.ne(table.iloc[:, 0], axis=0)
