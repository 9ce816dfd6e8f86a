"""Feature Hierarchy views that measure: the evidence per stage, and the filmstrip over training epochs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from models.builders import build_model
from models.diagnosis import chance_accuracy
from models.engine import restore_snapshot
from models.evidence import (
    ANGLES_DEG,
    StageEvidence,
    example_crops,
    hierarchy_evidence,
    orientation_selectivity,
    orientation_tuning,
    relative_change,
    stage_probe_accuracies,
    strongest_filters,
    top_examples,
)
from models.features import first_layer_kernels, kernel_channels, rectified_output
from models.receptive_field import receptive_fields
from ui.hierarchy import HierarchyContext
from ui.hierarchy_charts import evidence_charts, probe_epochs_chart, tuning_chart
from ui.images import grid_image, labelled_strip, tile, to_rgb_uint8
from ui.session import memo

FILM_FRAMES = 5  # epochs shown side by side: 0, early, middle, late, last
PROBE_EPOCHS = 8  # at most this many snapshot epochs get a probe-accuracy point


def _replay(ctx: HierarchyContext, index: int):
    """The model as it was at snapshot `index` (weights and batch-norm statistics); one model reused per run."""
    r = ctx.result
    model = memo(("replay", ctx.key), lambda: build_model(r.config, r.dataset.input_shape, r.dataset.n_classes))
    restore_snapshot(model, r, index)
    return model


def _evidence_at(ctx: HierarchyContext, index: int) -> list[StageEvidence]:
    data = ctx.result.dataset

    def compute():
        model = ctx.model if index == len(ctx.result.snapshots) - 1 else _replay(ctx, index)
        return hierarchy_evidence(model, ctx.stage_layers, data.x_train, data.y_train, data.x_test, data.y_test,
                                  data.n_classes)

    with st.spinner(f"Measuring every stage at epoch {ctx.result.snapshot_epochs[index]}..."):
        return memo(("evidence", ctx.key, index), compute)


def view_evidence(ctx: HierarchyContext) -> None:
    """Probe accuracy, receptive field, orientation and class selectivity per stage, trained vs epoch 0."""
    if ctx.result is None:
        st.info("The evidence needs labelled images and the untrained starting point, so it is measured on the CNN "
                "trained here.")
        return
    trained, untrained = _evidence_at(ctx, len(ctx.result.snapshots) - 1), _evidence_at(ctx, 0)
    chance = chance_accuracy(ctx.result.dataset.y_test)
    last_epoch = ctx.result.snapshot_epochs[-1]
    for col, chart in zip(st.columns(3), evidence_charts(trained, untrained, chance, last_epoch), strict=True):
        col.altair_chart(chart, width="stretch")
    st.dataframe(evidence_table(trained, untrained, last_epoch), width="stretch")
    kernel_size = ctx.model.get_layer(ctx.stage_layers[list(ctx.stage_layers)[0]]).kernel_size[0]
    for line in evidence_summary(trained, untrained, chance, ctx.learned, kernel_size):
        st.markdown(f"- {line}")
    most_tuned = max(trained, key=lambda e: e.orientation_selectivity).stage
    stage = st.radio("Orientation tuning curves of", list(ctx.stage_layers), horizontal=True,
                     index=list(ctx.stage_layers).index(most_tuned), key="fh_tuning_stage")
    layer = rectified_output(ctx.model, ctx.stage_layers[stage])
    tuning = memo(("tuning", ctx.key, layer), lambda: orientation_tuning(ctx.model, layer))
    st.altair_chart(tuning_chart(tuning, ANGLES_DEG, orientation_selectivity(tuning, ANGLES_DEG), layer),
                    width="stretch")
    st.caption("Linear probe (Alain & Bengio 2016): a logistic regression from scikit-learn on each stage's globally "
               "pooled maps, fitted on training images and scored on test images. Orientation selectivity: responses "
               "to sine gratings at 0-165°, summarised by 1 - circular variance (0 untuned, 1 one orientation). "
               "Class selectivity (Morcos et al. 2018): (mean on the preferred class - mean on the others) / their "
               "sum, averaged over filters. Epoch 0 is the same network before training.")


def evidence_table(trained: list[StageEvidence], untrained: list[StageEvidence], epoch: int) -> pd.DataFrame:
    """One column per stage ("early (conv_1)"), one row per measurement, trained and at epoch 0."""
    rows = {"receptive field (px)": [f"{e.rf_size}" for e in trained]}
    for field, label, fmt in (("probe_accuracy", "probe accuracy", "{:.1%}"),
                              ("orientation_selectivity", "orientation selectivity", "{:.2f}"),
                              ("class_selectivity", "class selectivity", "{:.2f}")):
        rows[f"{label}, epoch {epoch}"] = [fmt.format(getattr(e, field)) for e in trained]
        rows[f"{label}, epoch 0"] = [fmt.format(getattr(e, field)) for e in untrained]
    return pd.DataFrame(rows, index=[f"{e.stage} ({e.layer})" for e in trained]).T


def _rises(values: list[float], tolerance: float = 0.01) -> bool:
    return all(b >= a - tolerance for a, b in zip(values, values[1:], strict=False))


def evidence_summary(trained: list[StageEvidence], untrained: list[StageEvidence], chance: float,
                     learned: bool, kernel_size: int) -> list[str]:
    """Sentences that state what this model's numbers show, including where they break the textbook pattern.

    `kernel_size` is the first conv layer's kernel side, which bounds how sharply it can be orientation-tuned.
    """
    lines = []
    if not learned:
        lines.append("This model did not learn (see the warning above), so none of the patterns below can be "
                     "expected; train it again with the suggested settings.")
    probes = [e.probe_accuracy for e in trained]
    per_stage = ", ".join(f"{e.stage} {e.probe_accuracy:.0%}" for e in trained)
    if len(trained) > 1 and _rises(probes):
        lines.append(f"The class is more linearly readable with depth: probe accuracy {per_stage} (chance "
                     f"{chance:.0%}).")
    else:
        lines.append(f"Probe accuracy does not rise with depth here: {per_stage} (chance {chance:.0%}).")
    gain = trained[-1].probe_accuracy - untrained[-1].probe_accuracy
    lines.append(f"Before training the same probes reach {', '.join(f'{e.probe_accuracy:.0%}' for e in untrained)}: "
                 f"random filters already keep some information, and training added {gain:+.0%} at the "
                 f"{trained[-1].stage} stage.")
    lines.append("One unit sees " + ", ".join(f"{e.rf_size}x{e.rf_size} px ({e.stage})" for e in trained) +
                 " of the input: the window grows with depth, from edges to whole objects.")
    lines.append(_orientation_line(trained, untrained, kernel_size))
    selectivity = [e.class_selectivity for e in trained]
    if len(trained) > 1 and selectivity[-1] > selectivity[0] + 0.02:
        lines.append(f"Late filters are more class-selective than early ones ({selectivity[-1]:.2f} against "
                     f"{selectivity[0]:.2f}): they respond to whole shapes, not to parts every class has.")
    else:
        lines.append(f"Late filters are not more class-selective than early ones here ({selectivity[-1]:.2f} against "
                     f"{selectivity[0]:.2f}).")
    return lines


def _orientation_line(trained: list[StageEvidence], untrained: list[StageEvidence], kernel_size: int) -> str:
    """Where training made filters orientation-tuned, and what the early stage did."""
    gains = {t.stage: t.orientation_selectivity - u.orientation_selectivity
             for t, u in zip(trained, untrained, strict=True)}
    line = ("Orientation selectivity after training: " +
            ", ".join(f"{e.stage} {e.orientation_selectivity:.2f}" for e in trained) + " (epoch 0: " +
            ", ".join(f"{e.orientation_selectivity:.2f}" for e in untrained) + ").")
    best = max(gains, key=gains.get)
    if gains[best] > 0.05:
        line += f" Training made the {best} stage's filters orientation-tuned ({gains[best]:+.2f})."
    early = trained[0].stage
    if gains[early] <= 0.05:
        line += f" The {early} filters did not become more selective than random ones"
        line += (": a 3x3 kernel is too small for sharp tuning (a perfect 3x3 edge detector, Sobel, scores about "
                 "0.35 on this measure), and" if kernel_size == 3 else "; note that")
        line += " random filters cut by the ReLU threshold can look tuned by chance."
    return line


def _film_indices(ctx: HierarchyContext, frames: int) -> list[int]:
    last = len(ctx.result.snapshots) - 1
    return sorted({int(round(i)) for i in np.linspace(0, last, min(frames, last + 1))})


def view_filmstrip(ctx: HierarchyContext) -> None:
    """Kernels and the late stage's dataset examples at a few epochs, and probe accuracy per stage over epochs."""
    if ctx.result is None:
        st.info("The filmstrip replays training, so it needs the CNN trained here.")
        return
    r, data = ctx.result, ctx.result.dataset
    late = rectified_output(ctx.model, ctx.stage_layers[list(ctx.stage_layers)[-1]])
    strongest = memo(("film_filters", ctx.key, late), lambda: strongest_filters(ctx.model, late, data.x_test, 4)[0])
    rf = receptive_fields(ctx.model)[late]
    indices = _film_indices(ctx, FILM_FRAMES)
    cols, raw_kernels = st.columns(len(indices)), []
    for col, index in zip(cols, indices, strict=True):
        epoch = r.snapshot_epochs[index]

        def frame(index=index):
            model = _replay(ctx, index)
            examples = top_examples(model, late, data.x_test, strongest, 3)
            return first_layer_kernels(model), kernel_channels(model), example_crops(data.x_test, examples, rf, 48)

        kernels, raw, crops = memo(("film", ctx.key, index, late), frame)
        raw_kernels.append(raw)
        col.image(grid_image(to_rgb_uint8(kernels[:16]), columns=4, size=40), caption=f"epoch {epoch}: first-layer "
                  "kernels")
        col.image(tile(np.stack([labelled_strip(c, 48) for c in crops]), columns=1, gap=6, background=128),
                  caption=f"epoch {epoch}: top 3 test crops of {late} filters {', '.join(map(str, strongest))}")
    moved = relative_change(raw_kernels[0], raw_kernels[-1])
    st.caption(f"Left to right: training time. The first-layer kernels moved by {moved:.0%} of their starting norm "
               f"between epoch {r.snapshot_epochs[indices[0]]} and {r.snapshot_epochs[indices[-1]]}"
               f"{': little, so they look alike in every frame' if moved < 0.5 else ''}. The late filters are "
               "followed in every frame by the test crops that excite them most; compare what they pick at epoch 0 "
               "and at the end.")
    probe_indices = _film_indices(ctx, PROBE_EPOCHS)
    progress = st.progress(0.0, text="Probing every stage over the epochs...")
    curves = []
    for i, index in enumerate(probe_indices):
        accuracies = memo(("probe", ctx.key, index), lambda index=index: stage_probe_accuracies(
            _replay(ctx, index), ctx.stage_layers, data.x_train, data.y_train, data.x_test, data.y_test))
        curves.append((r.snapshot_epochs[index], accuracies))
        progress.progress((i + 1) / len(probe_indices), text=f"Probing every stage: epoch {r.snapshot_epochs[index]}")
    progress.empty()
    st.altair_chart(probe_epochs_chart(curves, chance_accuracy(data.y_test)), width="stretch")
    st.caption("Linear-probe accuracy of each stage's pooled maps at each replayed epoch. " +
               _probe_story(curves))


def _probe_story(curves: list[tuple[int, dict[str, float]]]) -> str:
    (first_epoch, first), (last_epoch, last) = curves[0], curves[-1]
    return "Measured: " + "; ".join(f"{stage} {first[stage]:.0%} at epoch {first_epoch} -> {last[stage]:.0%} at epoch "
                                    f"{last_epoch}" for stage in last) + "."
