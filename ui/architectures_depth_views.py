"""The Architectures page's part 3, depth vs width: a ladder of networks from shallow and wide to deep and narrow at
one parameter budget, trained together, with their accuracy and gradient ratio and what those show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from models.activation_lab import gradient_ratio
from models.architectures import depth_of, depth_width_ladder, estimated_seconds
from models.config import ExperimentConfig
from models.engine import TrainResult
from ui.architectures_charts import depth_width_charts
from ui.architectures_views import PREFIX, ComparisonSettings, split_sizes
from ui.progress import estimate_note
from ui.session import memo, memoised, train_together

LADDERS = {"cnn": (2, 3, 4, 6, 8), "mlp": (1, 2, 3, 4, 6, 8)}


def view_depth_width(settings: ComparisonSettings) -> None:
    c1, c2 = st.columns(2)
    kind = c1.selectbox("Networks", ["cnn", "mlp"], format_func={"cnn": "CNNs", "mlp": "MLPs"}.get,
                        key=f"{PREFIX}dw_kind")
    budgets = (2000, 5000, 10000, 20000) if kind == "cnn" else (20000, 50000, 100000, 200000)
    if settings.base.dataset == "digits" and kind == "mlp":
        budgets = (2000, 5000, 10000, 20000)
    budget = c2.select_slider("Parameter budget", budgets, value=budgets[1], key=f"{PREFIX}dw_budget")
    base = settings.base.replace(hidden_layers=(), batch_norm=False)
    # CNNs twice: plain, where depth costs gradient flow, and with batch norm, which restores it.
    variants = (False, True) if kind == "cnn" else (False,)
    configs = [c for bn in variants for c, _ in depth_width_ladder(base.replace(batch_norm=bn), kind, LADDERS[kind],
                                                                   budget, settings.input_shape, settings.n_classes)]
    if len(configs) < 2 * len(variants):
        st.info("This budget is too large for the widest network allowed at most depths; pick a smaller one.")
        return
    n_train, n_test = split_sizes(base)
    estimate = estimated_seconds(configs, settings.input_shape, settings.n_classes, n_train, n_test)
    st.caption(f"{len(configs)} networks of about {budget:,} parameters each (widths solved per depth"
               f"{', plain and with batch norm' if kind == 'cnn' else ''}), trained together on the comparison's "
               f"data: {estimate_note(estimate)} (estimated).")
    key = ("arch_dw", tuple(c.key() for c in configs))
    if not memoised(key) and not st.button(f"Train the depth-vs-width ladder ({estimate_note(estimate)})",
                                           key=f"{PREFIX}dw_go"):
        return
    results = train_together(configs, label="Depth vs width")
    if results is None:
        return
    memo(key, lambda: True)
    table = depth_width_table(results)
    for chart in depth_width_charts(table):  # one under the other: each needs the column's whole width
        st.altair_chart(chart, width="stretch")
    st.dataframe(table, hide_index=True,
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    st.caption(depth_width_summary(table))


def depth_width_table(results: list[TrainResult]) -> pd.DataFrame:
    return pd.DataFrame([{
        "network": "{} x {}".format(*depth_of(r.config)), "variant": _variant(r.config),
        "layers": depth_of(r.config)[0], "width": depth_of(r.config)[1], "parameters": r.model.count_params(),
        "test accuracy": r.history.test_acc[-1] if len(r.history) else np.nan,
        "gradient ratio": gradient_ratio(r) if len(r.history) else np.nan} for r in results])


def _variant(config: ExperimentConfig) -> str:
    if config.architecture == "mlp":
        return "MLP"
    return "CNN + batch norm" if config.batch_norm else "plain CNN"


def depth_width_summary(table: pd.DataFrame) -> str:
    parts = []
    for variant, rows in table.groupby("variant", sort=False):
        best, shallow, deep = rows.loc[rows["test accuracy"].idxmax()], rows.iloc[0], rows.iloc[-1]
        parts.append(f"{variant}: best {best['test accuracy']:.1%} ({best['network']}); shallowest "
                     f"{shallow['network']} {shallow['test accuracy']:.1%} with gradient ratio "
                     f"{shallow['gradient ratio']:.2g}, deepest {deep['network']} {deep['test accuracy']:.1%} with "
                     f"{deep['gradient ratio']:.2g}.")
    return ("Measured: " + " ".join(parts) + " The gradient ratio is the mean over epochs of the first weight "
            "layer's gradient norm over the last's (as on the Backpropagation page): far below 1, the first layers "
            "barely learn.")
