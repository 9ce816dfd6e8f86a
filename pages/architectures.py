"""Architectures and scale: MLP vs CNN vs residual CNN on the same images, learning curves, depth vs width at
one parameter budget, and what skip connections do to the loss landscape."""

import streamlit as st

from ui.architectures_curves_views import view_learning_curves
from ui.architectures_depth_views import view_depth_width
from ui.architectures_skip_views import view_skip_landscape
from ui.architectures_views import comparison_ui, view_comparison
from ui.routing import require_router, stop_page

require_router("pages/architectures.py")

st.title("Architectures and scale")
st.caption("The same images, four ways of wiring a network: a multilayer perceptron, a plain CNN, a CNN with batch "
           "norm and a residual CNN. Every number below is measured on networks trained here.")

with st.sidebar:
    settings = comparison_ui()

st.header("1. Four architectures on the same split")
if view_comparison(settings) is None:
    stop_page()

st.header("2. Learning curves: accuracy against data")
st.caption("The same two architectures on nested training sets (each contains the smaller ones, class shares "
           "kept): where does the CNN's built-in assumption (local patterns, anywhere in the image) pay off?")
view_learning_curves(settings)

st.header("3. Depth vs width at one parameter budget")
st.caption("Shallow and wide to deep and narrow, each with about the same number of parameters: accuracy, and how "
           "well the gradient reaches the first layer.")
view_depth_width(settings)

st.header("4. Skip connections and the loss landscape (Li et al. 2018)")
st.caption("Li et al. found that deep plain networks have chaotic, non-convex loss surfaces while the same networks "
           "with skip connections stay smooth. Here both are measured at small scale.")
view_skip_landscape()
