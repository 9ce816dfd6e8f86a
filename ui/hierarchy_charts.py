"""Altair charts of the Feature Hierarchy's measurements. They only draw."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from models.evidence import StageEvidence, most_selective_filters

# Trained vs untrained: a saturated blue and a mid grey read on both light and dark backgrounds.
WHEN_COLOURS = ("#0877bd", "#9aa5b1")
STAGE_COLOURS = alt.Scale(domain=["early", "middle", "late"], range=["#f59322", "#3aa655", "#0877bd"])
MEASURES = {
    "probe_accuracy": ("Linear-probe accuracy", ".0%"),
    "orientation_selectivity": ("Orientation selectivity", ".2f"),
    "class_selectivity": ("Class selectivity", ".2f"),
}


def evidence_charts(trained: list[StageEvidence], untrained: list[StageEvidence], chance: float,
                    epoch: int, height: int = 300) -> list[alt.LayerChart | alt.Chart]:
    """One grouped bar chart per measure: each stage after training beside the same stage at epoch 0."""
    when = [f"epoch {epoch}", "epoch 0"]
    stages = [e.stage for e in trained]
    charts = []
    for field, (title, fmt) in MEASURES.items():
        rows = [{"stage": e.stage, "when": label, "value": float(getattr(e, field))}
                for label, group in zip(when, (trained, untrained), strict=True) for e in group]
        bars = (
            alt.Chart(pd.DataFrame(rows), title=title)
            .mark_bar()
            .encode(
                x=alt.X("stage:N", sort=stages, title=None, axis=alt.Axis(labelAngle=0)),
                xOffset=alt.XOffset("when:N", sort=when),
                y=alt.Y("value:Q", title=None, axis=alt.Axis(format=fmt),
                        scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("when:N", sort=when, title=None, scale=alt.Scale(domain=when, range=WHEN_COLOURS),
                                legend=alt.Legend(orient="bottom", direction="vertical")),  # fits 3 across at 1000 px
                tooltip=["stage", "when", alt.Tooltip("value:Q", format=fmt)],
            )
            .properties(height=height)
        )
        if field == "probe_accuracy":
            rule = alt.Chart(pd.DataFrame({"chance": [chance]})).mark_rule(strokeDash=[4, 3], color="#e4572e").encode(
                y="chance:Q", tooltip=[alt.Tooltip("chance:Q", format=".0%")])
            bars = alt.layer(bars, rule)
        charts.append(bars)
    return charts


def tuning_chart(tuning: np.ndarray, angles_deg, selectivity: np.ndarray, layer: str, shown: int = 6,
                 height: int = 320) -> alt.Chart:
    """Orientation tuning curves of the `shown` most selective responding filters, each scaled to its peak."""
    order = most_selective_filters(tuning, selectivity, shown)
    rows = []
    for f in order:
        peak = float(tuning[f].max()) or 1.0
        rows += [{"angle": float(a), "filter": f"filter {f} (OSI {selectivity[f]:.2f})", "response": float(v / peak)}
                 for a, v in zip(angles_deg, tuning[f], strict=True)]
    return (
        alt.Chart(pd.DataFrame(rows), title=f"Orientation tuning of the most selective filters of {layer}")
        .mark_line(point=True)
        .encode(
            x=alt.X("angle:Q", title="grating orientation (degrees; 0 horizontal bars, 90 vertical)",
                    scale=alt.Scale(domain=[0, 180])),
            y=alt.Y("response:Q", title="response / its peak", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("filter:N", title="filter (OSI)", legend=alt.Legend(orient="right")),
            tooltip=["filter", "angle", alt.Tooltip("response:Q", format=".2f")],
        )
        .properties(height=height)
    )


def probe_epochs_chart(curves: list[tuple[int, dict[str, float]]], chance: float, height: int = 320) -> alt.LayerChart:
    """Probe accuracy per stage against training epoch, with chance as a dashed line."""
    rows = [{"epoch": epoch, "stage": stage, "accuracy": float(acc)} for epoch, values in curves
            for stage, acc in values.items()]
    lines = (
        alt.Chart(pd.DataFrame(rows), title="Linear-probe accuracy per stage over training")
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch"),
            y=alt.Y("accuracy:Q", title="probe accuracy (test)", axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("stage:N", scale=STAGE_COLOURS, title="stage", legend=alt.Legend(orient="right")),
            tooltip=["epoch", "stage", alt.Tooltip("accuracy:Q", format=".1%")],
        )
    )
    rule = alt.Chart(pd.DataFrame({"chance": [chance]})).mark_rule(strokeDash=[4, 3], color="#e4572e").encode(
        y="chance:Q", tooltip=[alt.Tooltip("chance:Q", format=".0%")])
    return alt.layer(lines, rule).properties(height=height)
