"""The Playground's network diagram and what a click on it does: a neuron shows its map large, a link
shows its weight, which can be typed in (TensorFlow Playground's "edit a weight"); the boundary, the
diagram and the losses then show the edited network at once.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from models.engine import TrainResult
from models.network_weights import dense_layers, network_links, node_maps
from models.plane import plane_grid
from ui.network_diagram import diagram_selection, network_diagram_chart, node_picture
from ui.playground_live import LiveState, current_state

DIAGRAM_GRID = plane_grid(30)  # 30 x 30 points per tile: sharp at the diagram's 16-40 px tiles, cheap to redraw
DIAGRAM_WIDTH = 540  # px: fits the main column of a 1000 px window with the sidebar open
KEY = "pg_diagram"
NOTE = "pg_weight_note"  # what the last hand edit did, shown until the next one


def diagram_chart(result: TrainResult, selected=None, selected_link=None, maps=None):
    """The network of `result` as it is now: input features, hidden units and outputs, links by weight.
    `maps` are its node maps on DIAGRAM_GRID when the caller already has them."""
    c, model = result.config, result.model
    output_names = result.dataset.class_names or None
    maps = node_maps(model, DIAGRAM_GRID) if maps is None else maps
    return network_diagram_chart(c.input_features, c.hidden_layers, network_links(model),
                                 maps, selected=selected, width=DIAGRAM_WIDTH,
                                 selected_link=selected_link, output_names=output_names)


def diagram_ui(state: LiveState) -> None:
    """The diagram (clickable) beside a panel for the clicked neuron or link."""
    result = state.run.result
    node, link = diagram_selection(st.session_state.get(KEY))
    row = st.container(horizontal=True, gap="medium")
    maps = node_maps(result.model, DIAGRAM_GRID)  # one predict for the diagram and the clicked neuron's panel
    row.altair_chart(diagram_chart(result, node, link, maps), on_select="rerun", selection_mode=["node", "link"],
                     key=KEY, width="content")
    with row.container(width=300):
        if link is not None:
            weight_editor(state, link)
        elif node is not None:
            node_panel(result, node, maps)
        else:
            st.caption("Each tile is what a neuron outputs over the plane; a link's colour is its weight's sign "
                       "(blue positive, orange negative) and its width the weight's size. Click a neuron to see its "
                       "map large, or a link to set its weight by hand.")
        if NOTE in st.session_state:
            st.info(st.session_state[NOTE])


def node_panel(result: TrainResult, node: dict, maps: list[np.ndarray]) -> None:
    """The clicked neuron's map (from `maps`, the diagram's node maps), large."""
    column, unit = int(node["layer"]), int(node["index"])
    if column >= len(maps) or unit >= len(maps[column]):
        return
    last = column == len(maps) - 1
    picture = node_picture(maps[column][unit], len(maps[column]) if last else None)
    name = ("input " + result.config.input_features[unit] if column == 0 else
            "output " + str(unit + 1) if last else f"layer {column}, neuron {unit + 1}")
    values = maps[column][unit]
    st.image(np.kron(picture, np.ones((8, 8, 1), dtype="uint8")), width=240, output_format="PNG",
             caption=f"{name}: from {values.min():.3g} to {values.max():.3g} over the plane")


def weight_editor(state: LiveState, link: dict) -> None:
    """The clicked link's weight, and a box to set it."""
    source, target = int(link["source_layer"]), int(link["source_index"])
    column, unit = int(link["target_layer"]), int(link["target_index"])
    layers = dense_layers(state.run.model)
    if not 1 <= column <= len(layers):
        return
    layer = layers[column - 1]
    kernel = layer.get_weights()[0]
    if target >= kernel.shape[0] or unit >= kernel.shape[1]:
        return
    st.markdown(f"**Weight** from {'input ' if source == 0 else f'L{source} n'}"
                f"{state.run.result.config.input_features[target] if source == 0 else target + 1} to "
                f"{'output' if column == len(layers) else f'L{column} n'}{unit + 1}: **{kernel[target, unit]:.4g}**")
    key = f"pg_w_{layer.name}_{target}_{unit}"
    st.session_state.setdefault(key, float(kernel[target, unit]))
    st.number_input("New value", -100.0, 100.0, step=0.1, format="%.4f", key=key)
    st.button("Set weight", key="pg_set_weight", on_click=_set_weight, args=(layer.name, (target, unit), key),
              help="Changes only this weight; the next Play or Step trains on from the edited network.")


def _set_weight(layer_name: str, index: tuple[int, int], key: str) -> None:
    """Callback: apply the edit before the page redraws, and say what it did to the losses."""
    state = current_state()
    if state is None:
        return
    before = state.run.evaluate()
    try:
        after = state.run.set_weight(layer_name, index, float(st.session_state[key]))
    except ValueError as err:
        st.session_state[NOTE] = str(err)
        return
    acc = (f"; test accuracy {before['test_acc']:.0%} → {after['test_acc']:.0%}" if np.isfinite(after["test_acc"])
           else "")
    st.session_state[NOTE] = (f"{layer_name}[{index[0]}, {index[1]}] set to {st.session_state[key]:.4g}: train loss "
                              f"{before['train_loss']:.4g} → {after['train_loss']:.4g}, test loss "
                              f"{before['test_loss']:.4g} → {after['test_loss']:.4g}{acc}.")
